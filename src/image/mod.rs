//! OCI images run directly: an image layout or `docker save` archive is read, each layer is
//! verified and unpacked once into the layer cache, and a container's rootfs is an overlay of
//! the cached layers with its own writable layer on top (rootfs/overlay.rs). `unpack` instead
//! flattens the layers into an ordinary bundle any runtime can use.

mod cache;
mod config;
mod digest;
mod manifest;
mod resolved;
mod source;
mod template;
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
    /// What `parse` found at the whole text, kept so the run does not look again.
    pub found: Option<std::fs::Metadata>,
}

impl Reference {
    /// A path that exists as written wins over splitting off a tag, so "dir:with:colons" works.
    pub fn parse(text: &str) -> Reference {
        let found = std::fs::metadata(text).ok();
        let whole = Reference { path: PathBuf::from(text), tag: None, text: text.to_string(), found };
        if whole.found.is_some() {
            return whole;
        }
        match text.rsplit_once(':') {
            Some((path, tag)) if !tag.contains('/') && !path.is_empty() => {
                Reference { path: PathBuf::from(path), tag: Some(tag.to_string()), text: text.to_string(), found: None }
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
    let key = resolved::Key::of_reference(store.dir(), reference);
    let mountpoint = store.mountpoint();
    let Some(rootfs) = mountpoint.to_str() else {
        return Err(Error::InvalidConfig(format!("runtime root {root:?} is not UTF-8, as config.json must be")));
    };
    let wanted = template::Request::new(&reference.text, req.cmd, req.tty, rootfs);
    if let Some(template) = key.as_ref().and_then(|k| template::recall(k, &wanted)) {
        // gc waits for this hold; a layer it removed before is found missing here.
        let hold = store.hold_against_gc()?;
        if template.layers.iter().all(|d| store.is_cached(d)) {
            store.make_mountpoint()?;
            let layers = template.layers.iter().rev().map(|d| store.layer_rootfs(d)).collect();
            return prepared(req, template.fill(req.id), layers, hold);
        }
    }
    // Before any unpacking, which may take a while (with a template, creating the container
    // finds out).
    if req.state_dir.exists() {
        return Err(Error::ContainerExists(req.id.into()));
    }
    let (raw, layers, hold) = generate(&store, reference, key.as_ref(), req, &wanted, rootfs)?;
    prepared(req, raw, layers, hold)
}

fn prepared(req: &RunRequest, raw: Vec<u8>, layers: Vec<PathBuf>, hold: CacheLock) -> Result<Prepared> {
    let config = crate::spec::Bundle::generated(req.state_dir.to_path_buf(), raw)?;
    Ok(Prepared { config, layers, hold })
}

/// The image resolved (or its remembered resolution recalled), its layers cached, and the
/// container's config generated; kept as a template for the next run of the same request.
/// Returns the config, the layer directories (top first) and the hold against gc taken before
/// the layers were cached.
fn generate(
    store: &Store,
    reference: &Reference,
    key: Option<&resolved::Key>,
    req: &RunRequest,
    wanted: &template::Request,
    rootfs: &str,
) -> Result<(Vec<u8>, Vec<PathBuf>, CacheLock)> {
    let mut source = None;
    let image = match key.and_then(resolved::recall) {
        Some(image) => image,
        None => {
            let image =
                manifest::read(source.insert(source::Source::open(&reference.path)?), reference.tag.as_deref())?;
            if let Some(key) = key {
                resolved::remember(key, &image);
            }
            image
        }
    };
    let hold = store.hold_against_gc()?;
    for layer in image.layers.iter().filter(|l| !store.is_cached(&l.diff_id)) {
        let source = match source {
            Some(ref s) => s,
            None => source.insert(source::Source::open(&reference.path)?),
        };
        store.ensure(source, layer)?;
    }
    store.make_mountpoint()?;
    let lower: Vec<PathBuf> = image.layers.iter().rev().map(|l| store.layer_rootfs(&l.diff_id)).collect();
    let request = config::Request { id: req.id, image: &reference.text, cmd: req.cmd, tty: req.tty, rootfs };
    let mut spec = config::spec_for(&image.config, &request, &lower)?;
    let encode = |spec: &serde_json::Value| {
        serde_json::to_vec(spec).map_err(|e| Error::io("encode config for", req.id, e.into()))
    };
    if let Some(key) = key {
        spec["hostname"] = serde_json::json!(template::HOSTNAME_HOLE);
        let layers = image.layers.iter().map(|l| l.diff_id.clone()).collect();
        if let Some(template) = template::Template::make(encode(&spec)?, layers) {
            template::keep(key, wanted, &template);
            return Ok((template.fill(req.id), lower, hold));
        }
        spec["hostname"] = serde_json::json!(req.id);
    }
    Ok((encode(&spec)?, lower, hold))
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

/// `gc`: every remembered resolution and template goes; the next run of each image reads it
/// again.
pub fn forget_resolved(store: &Store) {
    resolved::forget_all(store.dir());
}
