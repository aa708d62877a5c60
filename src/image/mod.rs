//! OCI images run directly: an image layout or `docker save` archive is read, each layer is
//! verified and unpacked once into the layer cache, and a container's rootfs is an overlay of
//! the cached layers with its own writable layer on top (rootfs/overlay.rs). `unpack` instead
//! flattens the layers into an ordinary bundle any runtime can use.

mod cache;
mod config;
mod digest;
mod manifest;
mod source;
mod unpack;

use std::path::{Path, PathBuf};

pub use cache::{CacheLock, CachedLayer, Store};
pub use config::STOP_SIGNAL_ANNOTATION;
pub use digest::{hex, Digest};

use crate::error::{Error, Result};

/// `DIR[:TAG]` or `ARCHIVE[:TAG]`.
pub struct Reference {
    pub path: PathBuf,
    pub tag: Option<String>,
    pub text: String,
}

impl Reference {
    /// A path that exists as written wins over splitting off a tag, so "dir:with:colons" works.
    pub fn parse(text: &str) -> Reference {
        let whole = Reference { path: PathBuf::from(text), tag: None, text: text.to_string() };
        if whole.path.exists() {
            return whole;
        }
        match text.rsplit_once(':') {
            Some((path, tag)) if !tag.contains('/') && !path.is_empty() => {
                Reference { path: PathBuf::from(path), tag: Some(tag.to_string()), text: text.to_string() }
            }
            _ => whole,
        }
    }
}

/// A container's config made from an image, its cached layer directories (top first: the
/// overlay's lower layers), and the hold against `gc` to keep until the container's state
/// names those layers.
pub struct Prepared {
    pub config: crate::spec::Bundle,
    pub layers: Vec<PathBuf>,
    pub hold: CacheLock,
}

pub struct RunRequest<'a> {
    pub id: &'a str,
    /// The container's state directory: the generated config's bundle. Its existing means the
    /// id is taken.
    pub state_dir: &'a Path,
    pub cmd: &'a [String],
    pub tty: bool,
}

/// Caches the image's layers and makes the container's config, in memory: no bundle is
/// written. The config's copy lives in the container's state directory, which `state` reports
/// as its bundle; its rootfs is `Store::mountpoint`, an empty directory every image container
/// mounts its overlay on inside its own mount namespace. `root`: the runtime root the layer
/// cache is under.
pub fn prepare_run(root: &Path, reference: &Reference, req: &RunRequest) -> Result<Prepared> {
    if !nix::unistd::geteuid().is_root() {
        return Err(Error::Image {
            image: reference.text.clone(),
            reason: "running images needs root (the layer cache holds overlay whiteouts)".into(),
        });
    }
    let store = Store::new(root);
    let mountpoint = store.mountpoint();
    let Some(rootfs) = mountpoint.to_str() else {
        return Err(Error::InvalidConfig(format!("runtime root {root:?} is not UTF-8, as config.json must be")));
    };
    // Before any unpacking, which may take a while.
    if req.state_dir.exists() {
        return Err(Error::ContainerExists(req.id.into()));
    }
    let source = source::Source::open(&reference.path)?;
    let image = manifest::read(&source, reference.tag.as_deref())?;
    // gc waits for this hold; a layer it removed before is found missing here.
    let hold = store.hold_against_gc()?;
    for layer in image.layers.iter().filter(|l| !store.is_cached(&l.diff_id)) {
        store.ensure(&source, layer)?;
    }
    store.make_mountpoint()?;
    let layers: Vec<PathBuf> = image.layers.iter().rev().map(|l| store.layer_rootfs(&l.diff_id)).collect();
    let request = config::Request { id: req.id, image: &reference.text, cmd: req.cmd, tty: req.tty, rootfs };
    let spec = config::spec_for(&image.config, &request, &layers)?;
    let raw = serde_json::to_vec(&spec).map_err(|e| Error::io("encode config for", req.id, e.into()))?;
    let config = crate::spec::Bundle::generated(req.state_dir.to_path_buf(), raw)?;
    Ok(Prepared { config, layers, hold })
}

fn write_bundle(bundle: &Path, spec: &serde_json::Value) -> Result<()> {
    let rootfs = bundle.join("rootfs");
    std::fs::create_dir_all(&rootfs).map_err(|e| Error::io("create bundle", rootfs.display(), e))?;
    let path = bundle.join("config.json");
    let text = serde_json::to_vec(spec).map_err(|e| Error::io("encode", path.display(), e.into()))?;
    std::fs::write(&path, text).map_err(|e| Error::io("write", path.display(), e))
}

/// `berth unpack`: the image flattened into BUNDLE/rootfs (whiteouts applied) with a
/// config.json for it.
pub fn unpack_bundle(reference: &Reference, bundle: &Path, cmd: &[String]) -> Result<()> {
    let source = source::Source::open(&reference.path)?;
    let image = manifest::read(&source, reference.tag.as_deref())?;
    let rootfs = bundle.join("rootfs");
    if rootfs.exists() && rootfs.read_dir().map(|mut d| d.next().is_some()).unwrap_or(true) {
        return Err(Error::Image {
            image: reference.text.clone(),
            reason: format!("{} is not empty", rootfs.display()),
        });
    }
    let created = !bundle.exists();
    let result = unpack_layers(&source, &image, &rootfs).and_then(|()| {
        let id = bundle.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "berth".into());
        let request = config::Request { id: &id, image: &reference.text, cmd, tty: false, rootfs: "rootfs" };
        let mut spec = config::spec_for(&image.config, &request, std::slice::from_ref(&rootfs))?;
        // A flat bundle runs anywhere: no overlay, no cache.
        spec["annotations"] = serde_json::json!({ crate::annotations::IMAGE: reference.text });
        write_bundle(bundle, &spec)
    });
    if result.is_err() {
        let _ = std::fs::remove_dir_all(if created { bundle } else { &rootfs });
    }
    result
}

fn unpack_layers(source: &source::Source, image: &manifest::Image, rootfs: &Path) -> Result<()> {
    std::fs::create_dir_all(rootfs).map_err(|e| Error::io("create", rootfs.display(), e))?;
    for layer in &image.layers {
        cache::unpack_layer(source, layer, rootfs, unpack::Whiteouts::Apply)?;
    }
    Ok(())
}
