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

use std::collections::HashSet;
use std::path::{Path, PathBuf};

pub use cache::{CacheLock, CachedLayer, Store};
pub use config::{IMAGE_ANNOTATION, LAYERS_ANNOTATION, STOP_SIGNAL_ANNOTATION};
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

/// A container's config made from an image, and the hold against `gc` to keep until the
/// container's state names its layers.
pub struct Prepared {
    pub config: crate::spec::Bundle,
    pub hold: CacheLock,
}

pub struct RunRequest<'a> {
    pub id: &'a str,
    pub cmd: &'a [String],
    pub tty: bool,
}

/// Caches the image's layers and makes the container's config, in memory: no bundle is
/// written. The config's copy lives in the container's state directory, which `state` reports
/// as its bundle; its rootfs is `Store::mountpoint`, an empty directory every image container
/// mounts its overlay on inside its own mount namespace.
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
            return prepared(root, req.id, template.fill(req.id), hold);
        }
    }
    // Before any unpacking, which may take a while (with a template, creating the container
    // finds out).
    if crate::container::state_dir(root, req.id).exists() {
        return Err(Error::ContainerExists(req.id.into()));
    }
    let (raw, hold) = generate(&store, reference, key.as_ref(), req, &wanted, rootfs)?;
    prepared(root, req.id, raw, hold)
}

fn prepared(root: &Path, id: &str, raw: Vec<u8>, hold: CacheLock) -> Result<Prepared> {
    let config = crate::spec::Bundle::generated(crate::container::state_dir(root, id), raw)?;
    Ok(Prepared { config, hold })
}

/// The image resolved (or its remembered resolution recalled), its layers cached, and the
/// container's config generated; kept as a template for the next run of the same request.
/// Returns the config and the hold against gc taken before the layers were cached.
fn generate(
    store: &Store,
    reference: &Reference,
    key: Option<&resolved::Key>,
    req: &RunRequest,
    wanted: &template::Request,
    rootfs: &str,
) -> Result<(Vec<u8>, CacheLock)> {
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
            return Ok((template.fill(req.id), hold));
        }
        spec["hostname"] = serde_json::json!(req.id);
    }
    Ok((encode(&spec)?, hold))
}

fn write_bundle(bundle: &Path, spec: &serde_json::Value) -> Result<()> {
    let rootfs = bundle.join("rootfs");
    std::fs::create_dir_all(&rootfs).map_err(|e| Error::io("create bundle", rootfs.display(), e))?;
    let path = bundle.join("config.json");
    let text = serde_json::to_vec(spec).map_err(|e| Error::io("encode", path.display(), e.into()))?;
    std::fs::write(&path, text).map_err(|e| Error::io("write", path.display(), e))
}

/// The lower layers a config asks for, each required to be a layer of berth's cache.
pub fn cached_layers(root: &Path, annotation: &str) -> Result<Vec<PathBuf>> {
    let cache = Store::new(root).layers_dir();
    annotation
        .split(':')
        .map(|p| {
            let path = PathBuf::from(p);
            let inside = path.strip_prefix(&cache).ok().map(|rest| rest.components().collect::<Vec<_>>());
            match inside.as_deref() {
                Some([std::path::Component::Normal(hex), std::path::Component::Normal(rootfs)])
                    if rootfs.to_str() == Some("rootfs")
                        && Digest::parse(&format!("sha256:{}", hex.to_string_lossy())).is_some() =>
                {
                    Ok(path)
                }
                _ => Err(Error::InvalidConfig(format!(
                    "annotation {LAYERS_ANNOTATION}: {p:?} is not a layer of the image cache {}",
                    cache.display()
                ))),
            }
        })
        .collect()
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
        spec["annotations"] = serde_json::json!({ IMAGE_ANNOTATION: reference.text });
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

/// One cached layer and the containers whose rootfs it is part of.
pub struct LayerUsage {
    pub digest: Digest,
    pub layer: CachedLayer,
    pub containers: Vec<String>,
}

pub fn usage(root: &Path) -> Result<Vec<LayerUsage>> {
    let store = Store::new(root);
    let users = container_layers(root)?;
    Ok(store
        .layers()
        .into_iter()
        .map(|(digest, layer)| {
            let dir = store.layer_rootfs(&digest);
            let containers = users.iter().filter(|(_, l)| l.contains(&dir)).map(|(id, _)| id.clone()).collect();
            LayerUsage { digest, layer, containers }
        })
        .collect())
}

/// Removes every cached layer no container uses; returns the removed digests.
pub fn gc(root: &Path) -> Result<Vec<Digest>> {
    let store = Store::new(root);
    let _no_runs = store.exclude_runs()?;
    let users = container_layers(root)?;
    let mut removed = Vec::new();
    for (digest, _) in store.layers() {
        let dir = store.layer_rootfs(&digest);
        if !users.iter().any(|(_, layers)| layers.contains(&dir)) && store.remove(&digest)? {
            removed.push(digest);
        }
    }
    resolved::forget_all(store.dir());
    Ok(removed)
}

/// (container id, its cached lower layers) for every container under the root.
fn container_layers(root: &Path) -> Result<Vec<(String, HashSet<PathBuf>)>> {
    Ok(crate::container::list(root)?
        .into_iter()
        .filter_map(|c| {
            let layers = c.state.annotations.get(LAYERS_ANNOTATION)?;
            Some((c.state.id.clone(), layers.split(':').map(PathBuf::from).collect()))
        })
        .collect())
}
