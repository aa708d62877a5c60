//! Finding an image's config and layers: an OCI layout (index.json → manifest → config) or a
//! `docker save` archive (manifest.json). Each manifest and config read is checked against the
//! digest it was named by; layers are checked while they are unpacked.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::digest::Digest;
use super::source::Source;
use crate::error::{Error, Result};

/// What the image asks of a container (the `config` object of an image config).
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImageConfig {
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    pub env: Option<Vec<String>>,
    pub working_dir: Option<String>,
    pub user: Option<String>,
    pub volumes: Option<BTreeMap<String, Value>>,
    pub stop_signal: Option<String>,
}

pub struct LayerRef {
    /// The blob's path inside the layout or archive.
    pub blob: String,
    /// The digest of the blob as stored (compressed), when the manifest names one.
    pub digest: Option<Digest>,
    /// The blob's size as the manifest declares it (OCI descriptors do, `docker save` not).
    pub size: Option<u64>,
    /// The digest of the uncompressed tar: the layer's identity in the cache.
    pub diff_id: Digest,
}

pub struct Image {
    pub config: ImageConfig,
    /// Bottom layer first, as manifests list them.
    pub layers: Vec<LayerRef>,
}

#[derive(Deserialize)]
struct Descriptor {
    #[serde(rename = "mediaType", default)]
    media_type: String,
    digest: String,
    #[serde(default)]
    size: Option<u64>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
    #[serde(default)]
    platform: Option<Platform>,
}

#[derive(Deserialize)]
struct Platform {
    architecture: String,
    os: String,
}

#[derive(Deserialize)]
struct Index {
    manifests: Vec<Descriptor>,
}

#[derive(Deserialize)]
struct Manifest {
    config: Descriptor,
    layers: Vec<Descriptor>,
}

#[derive(Deserialize)]
struct ConfigBlob {
    #[serde(default)]
    config: ImageConfig,
    rootfs: RootFs,
}

#[derive(Deserialize)]
struct RootFs {
    diff_ids: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

pub fn read(source: &Source, tag: Option<&str>) -> Result<Image> {
    if source.exists("index.json") {
        read_oci(source, tag)
    } else if source.exists("manifest.json") {
        read_docker(source, tag)
    } else {
        Err(bad(source, "neither an OCI layout (index.json) nor a `docker save` archive (manifest.json)"))
    }
}

fn bad(source: &Source, reason: impl Into<String>) -> Error {
    Error::Image { image: source.describe(), reason: reason.into() }
}

fn parse<T: serde::de::DeserializeOwned>(source: &Source, name: &str, bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| bad(source, format!("{name}: {e}")))
}

fn digest_of(source: &Source, text: &str) -> Result<Digest> {
    Digest::parse(text).ok_or_else(|| bad(source, format!("digest {text:?} is not sha256:<64 hex digits>")))
}

fn blob_path(d: &Digest) -> String {
    format!("blobs/sha256/{}", d.hex())
}

/// A blob read whole and checked against the digest that named it.
fn verified_blob(source: &Source, digest: &Digest) -> Result<Vec<u8>> {
    let bytes = source.read_small(&blob_path(digest))?;
    let actual = Digest::of(&bytes);
    if &actual != digest {
        return Err(bad(source, format!("blob {digest} is corrupt: its content hashes to {actual}")));
    }
    Ok(bytes)
}

fn read_oci(source: &Source, tag: Option<&str>) -> Result<Image> {
    let index: Index = parse(source, "index.json", &source.read_small("index.json")?)?;
    let mut chosen = choose_by_tag(source, &index.manifests, tag)?;
    let mut bytes = verified_blob(source, &digest_of(source, &chosen.digest)?)?;
    // A multi-platform image: an index inside the index.
    let nested: Index;
    if chosen.media_type.contains("index") || chosen.media_type.contains("manifest.list") {
        nested = parse(source, "image index", &bytes)?;
        chosen = choose_platform(source, &nested.manifests)?;
        bytes = verified_blob(source, &digest_of(source, &chosen.digest)?)?;
    }
    let manifest: Manifest = parse(source, "manifest", &bytes)?;
    let config_digest = digest_of(source, &manifest.config.digest)?;
    let config: ConfigBlob = parse(source, "image config", &verified_blob(source, &config_digest)?)?;
    let blobs = manifest
        .layers
        .iter()
        .map(|layer| digest_of(source, &layer.digest).map(|d| (blob_path(&d), Some(d), layer.size)))
        .collect::<Result<Vec<_>>>()?;
    image(source, config, blobs)
}

fn choose_by_tag<'a>(source: &Source, manifests: &'a [Descriptor], tag: Option<&str>) -> Result<&'a Descriptor> {
    let names = |d: &Descriptor| -> Vec<String> {
        ["org.opencontainers.image.ref.name", "io.containerd.image.name"]
            .iter()
            .filter_map(|k| d.annotations.get(*k).cloned())
            .collect()
    };
    let found = match tag {
        Some(tag) => manifests.iter().find(|d| names(d).iter().any(|n| tag_matches(n, tag))),
        None if manifests.len() == 1 => manifests.first(),
        None => manifests.iter().find(|d| names(d).iter().any(|n| tag_matches(n, "latest"))),
    };
    found.ok_or_else(|| {
        let all: Vec<String> = manifests.iter().flat_map(names).collect();
        bad(source, format!("no image tagged {:?} (it has: {})", tag.unwrap_or("latest"), all.join(", ")))
    })
}

fn choose_platform<'a>(source: &Source, manifests: &'a [Descriptor]) -> Result<&'a Descriptor> {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    manifests
        .iter()
        .find(|d| d.platform.as_ref().is_some_and(|p| p.os == "linux" && p.architecture == arch))
        .ok_or_else(|| bad(source, format!("no linux/{arch} image in the index")))
}

/// "latest" matches "latest", "busybox:latest" and "localhost/busybox:latest".
fn tag_matches(name: &str, tag: &str) -> bool {
    name == tag || name.rsplit_once(':').is_some_and(|(_, t)| t == tag && !t.contains('/'))
}

fn read_docker(source: &Source, tag: Option<&str>) -> Result<Image> {
    let entries: Vec<DockerEntry> = parse(source, "manifest.json", &source.read_small("manifest.json")?)?;
    let entry = match tag {
        Some(tag) => entries.iter().find(|e| e.repo_tags.iter().flatten().any(|n| tag_matches(n, tag))),
        None if entries.len() == 1 => entries.first(),
        None => None,
    }
    .ok_or_else(|| {
        let all: Vec<String> = entries.iter().flat_map(|e| e.repo_tags.clone().unwrap_or_default()).collect();
        bad(source, format!("no image tagged {:?} (it has: {})", tag.unwrap_or(""), all.join(", ")))
    })?;
    let config_bytes = source.read_small(&entry.config)?;
    // docker names the config by its digest ("<hex>.json" or "blobs/sha256/<hex>").
    if let Some(expected) = digest_in_name(&entry.config) {
        let actual = Digest::of(&config_bytes);
        if actual != expected {
            return Err(bad(source, format!("config {:?} is corrupt: its content hashes to {actual}", entry.config)));
        }
    }
    let config: ConfigBlob = parse(source, "image config", &config_bytes)?;
    let blobs = entry
        .layers
        .iter()
        .map(|blob| (blob.clone(), if blob.starts_with("blobs/sha256/") { digest_in_name(blob) } else { None }, None))
        .collect();
    image(source, config, blobs)
}

/// The image from its config and its layer blobs (path, digest and size when known), bottom
/// first; the config's diff_ids pair with the blobs one for one.
fn image(source: &Source, config: ConfigBlob, blobs: Vec<(String, Option<Digest>, Option<u64>)>) -> Result<Image> {
    if config.rootfs.diff_ids.len() != blobs.len() {
        return Err(bad(source, "the manifest and the config disagree on the number of layers"));
    }
    let layers = blobs
        .into_iter()
        .zip(&config.rootfs.diff_ids)
        .map(|((blob, digest, size), diff_id)| {
            Ok(LayerRef { blob, digest, size, diff_id: digest_of(source, diff_id)? })
        })
        .collect::<Result<_>>()?;
    Ok(Image { config: config.config, layers })
}

fn digest_in_name(name: &str) -> Option<Digest> {
    let file = name.rsplit('/').next()?;
    Digest::parse(&format!("sha256:{}", file.strip_suffix(".json").unwrap_or(file)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_match_by_their_last_part() {
        assert!(tag_matches("latest", "latest"));
        assert!(tag_matches("localhost/busybox:latest", "latest"));
        assert!(tag_matches("localhost:5000/busybox", "localhost:5000/busybox"));
        assert!(!tag_matches("localhost:5000/busybox", "5000/busybox"));
        assert!(!tag_matches("busybox:v1", "latest"));
    }
}
