//! Loading and validating config.json. Everything a bad bundle can get wrong is caught here,
//! before any state directory, cgroup or process exists, so a refused bundle leaves nothing behind.

mod default;
mod validate;

use std::path::{Path, PathBuf};

use oci_spec::runtime::Spec;

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
        let spec: Spec = serde_json::from_slice(&raw).map_err(|source| Error::ParseConfig { path, source })?;
        let rootfs = validate(&spec, &dir)?;
        Ok(Bundle { dir, spec, rootfs, raw })
    }
}
