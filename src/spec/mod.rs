//! Loading and validating config.json. Everything a bad bundle can get wrong is caught here,
//! before any state directory, cgroup or process exists, so a refused bundle leaves nothing behind.

mod default;
pub mod fields;
pub mod validate;

use std::path::{Path, PathBuf};

use oci_spec::runtime::{Process, Spec};
use serde_json::Value;

pub use default::default_spec;
pub use validate::validate;

use crate::error::{Error, Result};

/// A validated config and the absolute paths derived from the bundle.
pub struct Bundle {
    pub dir: PathBuf,
    pub spec: Spec,
    pub rootfs: PathBuf,
    /// config.json as read, for the copy `create` keeps (exec's defaults).
    pub raw: Vec<u8>,
    /// linux.seccomp compiled: a profile that cannot be is refused with the rest.
    pub seccomp: Option<crate::security::seccomp::Compiled>,
}

pub fn load(bundle: &Path) -> Result<Bundle> {
    let dir = std::path::absolute(bundle).map_err(|e| Error::io("resolve bundle", bundle.display(), e))?;
    let path = dir.join("config.json");
    let text = std::fs::read(&path).map_err(|source| Error::ReadConfig { path: path.clone(), source })?;
    Bundle::parse(dir, path, text)
}

impl Bundle {
    /// A config made in memory (`run --image`), checked exactly as a bundle's config.json is.
    /// `dir` is where its copy will live (the container's state directory): the bundle
    /// `state` reports.
    pub fn generated(dir: PathBuf, raw: Vec<u8>) -> Result<Bundle> {
        let path = dir.join("config.json");
        Bundle::parse(dir, path, raw)
    }

    fn parse(dir: PathBuf, path: PathBuf, raw: Vec<u8>) -> Result<Bundle> {
        let spec = parse_config(&raw, &path)?;
        let rootfs = validate(&spec, &dir)?;
        let profile = spec.linux().as_ref().and_then(|l| l.seccomp().as_ref());
        let seccomp = profile.map(crate::security::seccomp::compile).transpose()?;
        Ok(Bundle { dir, spec, rootfs, raw, seccomp })
    }
}

/// config.json to oci-spec types, refusing any property of the spec berth cannot honour
/// (fields.rs). The walk streams over the text before the typed parse; what it finds outside
/// the spec is settled once the version is known.
pub fn parse_config(raw: &[u8], path: &Path) -> Result<Spec> {
    let findings = fields::walk(raw, &fields::CONFIG, "")?;
    let mut spec: Spec = typed(raw, path, Some("process"))?;
    validate::check_version(spec.version())?;
    findings.settle(fields::Unknown::for_version(spec.version()))?;
    root_relative_destinations(&mut spec);
    Ok(spec)
}

/// config.md: a mount destination that is not absolute "MUST be interpreted as relative to
/// \"/\"" (runc mounts it so): made absolute once, so every check and mount sees one form.
fn root_relative_destinations(spec: &mut Spec) {
    let Some(mut mounts) = spec.mounts().clone() else { return };
    if mounts.iter().all(|m| m.destination().is_absolute()) {
        return;
    }
    for m in &mut mounts {
        if !m.destination().is_absolute() {
            let absolute = Path::new("/").join(m.destination());
            m.set_destination(absolute);
        }
    }
    spec.set_mounts(Some(mounts));
}

/// The copy of config.json `create` accepted, read again (exec's defaults, the seccomp
/// listener): it was checked then.
pub fn parse_saved(raw: &[u8], path: &Path) -> Result<Spec> {
    typed(raw, path, Some("process"))
}

/// A process as `exec --process` takes it, checked as the config's process is.
pub fn parse_process(raw: &[u8], path: &Path) -> Result<Process> {
    fields::walk(raw, &fields::PROCESS, "process")?.settle(fields::Unknown::Ignore)?;
    let process: Process = typed(raw, path, None)?;
    validate::check_process_settings(&process, "process")?;
    Ok(process)
}

/// oci-spec's parse of `raw`; where it fails, once more with the process (at `process_key`,
/// or the whole text) in the spellings oci-spec 0.10 reads (fields::normalize_process). The
/// first error is the one reported unless that rewrite changed something.
fn typed<T: serde::de::DeserializeOwned>(raw: &[u8], path: &Path, process_key: Option<&str>) -> Result<T> {
    let parse_error = |source| Error::ParseConfig { path: path.to_path_buf(), source };
    let first = match serde_json::from_slice::<T>(raw) {
        Ok(t) => return Ok(t),
        Err(e) => e,
    };
    let Ok(mut v) = serde_json::from_slice::<Value>(raw) else { return Err(parse_error(first)) };
    let process = match process_key {
        Some(key) => v.get_mut(key),
        None => Some(&mut v),
    };
    if !process.is_some_and(fields::normalize_process) {
        return Err(parse_error(first));
    }
    T::deserialize(&v).map_err(parse_error)
}
