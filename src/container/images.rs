//! `images` and `gc`: the layer cache seen against the containers that use it. Here, above
//! both, because they need the cache (image/) and the container list; image/ knows nothing of
//! containers.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use crate::annotations;
use crate::error::Result;
use crate::image::{CachedLayer, Digest, Store};

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
    // No run sets up meanwhile: a layer it is about to name in its state stays.
    let _no_runs = store.exclude_runs()?;
    let users = container_layers(root)?;
    let mut removed = Vec::new();
    for (digest, _) in store.layers() {
        let dir = store.layer_rootfs(&digest);
        if !users.iter().any(|(_, layers)| layers.contains(&dir)) && store.remove(&digest)? {
            removed.push(digest);
        }
    }
    Ok(removed)
}

/// (container id, its cached lower layers) for every container under the root, as `create`
/// recorded them in its state.
fn container_layers(root: &Path) -> Result<Vec<(String, HashSet<PathBuf>)>> {
    Ok(super::list(root)?
        .into_iter()
        .filter_map(|c| {
            let layers = c.state.annotations.get(annotations::IMAGE_LAYERS)?;
            Some((c.state.id.clone(), layers.split(':').map(PathBuf::from).collect()))
        })
        .collect())
}
