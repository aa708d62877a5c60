//! What an image reference resolved to (its config and layers), remembered so that a cached
//! run reads one small file instead of indexing the archive and reading and verifying its
//! manifest and config again.
//!
//! An entry is keyed by the identity of the file that names everything else in the image (the
//! archive itself, or a layout's index.json or manifest.json): its path, device, inode, size,
//! mtime and ctime, and the tag asked for. Any write to that file changes its ctime, and a
//! layout's blobs are named by digest, so a changed image misses and is read afresh. A file
//! changed within the last two seconds is not remembered: a filesystem with coarse timestamps
//! could see it change again within the same tick (git's "racy index" rule).

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use super::digest::Digest;
use super::manifest::{Image, ImageConfig, LayerRef};

const DIR: &str = "resolved";
const RACY: Duration = Duration::from_secs(2);

/// Where an image's resolution is remembered, and what the entry must say to be trusted.
pub struct Key {
    file: PathBuf,
    identity: String,
    racy: bool,
}

#[derive(Serialize, Deserialize)]
struct Entry {
    identity: String,
    config: ImageConfig,
    layers: Vec<Layer>,
}

#[derive(Serialize, Deserialize)]
struct Layer {
    blob: String,
    digest: Option<String>,
    #[serde(default)]
    size: Option<u64>,
    diff_id: String,
}

impl Key {
    /// None when the image cannot be looked at: reading it will report why.
    pub fn of(images_dir: &Path, image: &Path, tag: Option<&str>) -> Option<Key> {
        Key::known(images_dir, image, tag, std::fs::metadata(image).ok()?)
    }

    /// `of` with the metadata `Reference::parse` already read, when it read it.
    pub fn of_reference(images_dir: &Path, reference: &super::Reference) -> Option<Key> {
        match &reference.found {
            Some(m) => Key::known(images_dir, &reference.path, reference.tag.as_deref(), m.clone()),
            None => Key::of(images_dir, &reference.path, reference.tag.as_deref()),
        }
    }

    /// `m`: the image's metadata.
    fn known(images_dir: &Path, image: &Path, tag: Option<&str>, mut m: std::fs::Metadata) -> Option<Key> {
        let mut naming = std::path::absolute(image).ok()?;
        if m.is_dir() {
            (naming, m) = ["index.json", "manifest.json"]
                .iter()
                .map(|n| naming.join(n))
                .find_map(|p| std::fs::metadata(&p).ok().filter(|m| m.is_file()).map(|m| (p, m)))?;
        }
        let identity = format!(
            "{}\n{}\n{}:{}:{}:{}.{}:{}.{}",
            naming.display(),
            tag.unwrap_or(""),
            m.dev(),
            m.ino(),
            m.size(),
            m.mtime(),
            m.mtime_nsec(),
            m.ctime(),
            m.ctime_nsec()
        );
        let changed = SystemTime::UNIX_EPOCH + Duration::new(m.ctime().max(0) as u64, m.ctime_nsec() as u32);
        let racy = SystemTime::now().duration_since(changed).map_or(true, |age| age < RACY);
        // The entry repeats its identity, so the name needs no cryptographic hash (and a
        // cached run needs no sha256 code at all).
        let name = format!("{:016x}.json", fnv1a(identity.as_bytes()));
        Some(Key { file: images_dir.join(DIR).join(name), identity, racy })
    }

    /// What an entry must repeat to be trusted.
    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// Another file kept for this image (template.rs), beside its entry.
    pub fn sibling(&self, name: &str) -> PathBuf {
        let stem = self.file.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        self.file.with_file_name(format!("{stem}.{name}"))
    }

    /// Best effort: writes `bytes` aside and renames them to `path`, so a concurrent reader
    /// sees all or nothing; nothing when the image file is too young to be trusted.
    pub fn store_beside(&self, path: &Path, bytes: &[u8]) {
        let Some(dir) = path.parent().filter(|_| !self.racy) else { return };
        let written = std::fs::create_dir_all(dir).and_then(|()| crate::atomic_file::write(path, bytes, false));
        if let Err(e) = written {
            crate::logging::debug(&format!("not remembering {}: {e}", path.display()));
        }
    }

    #[cfg(test)]
    pub fn settled(mut self) -> Key {
        self.racy = false;
        self
    }
}

/// FNV-1a, 64 bits: stable across builds, unlike std's hasher.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| (hash ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3))
}

/// The remembered resolution, if there is one for exactly this key.
pub fn recall(key: &Key) -> Option<Image> {
    let bytes = std::fs::read(&key.file).ok()?;
    let entry: Entry = serde_json::from_slice(&bytes).ok()?;
    if entry.identity != key.identity {
        return None;
    }
    let layers = entry
        .layers
        .into_iter()
        .map(|l| {
            let digest = match l.digest {
                Some(d) => Some(Digest::parse(&d)?),
                None => None,
            };
            Some(LayerRef { blob: l.blob, digest, size: l.size, diff_id: Digest::parse(&l.diff_id)? })
        })
        .collect::<Option<Vec<_>>>()?;
    Some(Image { config: entry.config, layers })
}

/// Best effort: a resolution not remembered is only read again next time.
pub fn remember(key: &Key, image: &Image) {
    let layers = image
        .layers
        .iter()
        .map(|l| Layer {
            blob: l.blob.clone(),
            digest: l.digest.as_ref().map(Digest::to_string),
            size: l.size,
            diff_id: l.diff_id.to_string(),
        })
        .collect();
    let entry = Entry { identity: key.identity.clone(), config: image.config.clone(), layers };
    let Ok(json) = serde_json::to_vec(&entry) else { return };
    key.store_beside(&key.file, &json);
}

/// `gc`: every remembered resolution goes; the next run of each image reads it again.
pub fn forget_all(images_dir: &Path) {
    let _ = std::fs::remove_dir_all(images_dir.join(DIR));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image() -> Image {
        let d = |c: char| Digest::parse(&format!("sha256:{}", c.to_string().repeat(64))).unwrap();
        Image {
            config: ImageConfig { cmd: Some(vec!["sh".into()]), ..Default::default() },
            layers: vec![
                LayerRef { blob: "blobs/sha256/a".into(), digest: Some(d('a')), size: Some(3), diff_id: d('b') },
                LayerRef { blob: "x/layer.tar".into(), digest: None, size: None, diff_id: d('c') },
            ],
        }
    }

    /// A scratch directory with an "archive" holding `content`, and where @images would be.
    fn scratch(content: &str) -> (tempfile::TempDir, PathBuf, PathBuf) {
        let tmp = tempfile::tempdir().unwrap();
        let archive = tmp.path().join("image.tar");
        std::fs::write(&archive, content).unwrap();
        let images = tmp.path().join("@images");
        (tmp, archive, images)
    }

    fn aged_key(images: &Path, file: &Path) -> Key {
        Key::of(images, file, Some("v1")).unwrap().settled()
    }

    #[test]
    fn remembered_until_the_image_file_changes() {
        let (_tmp, archive, images) = scratch("one");
        let key = aged_key(&images, &archive);
        assert!(recall(&key).is_none());
        remember(&key, &image());
        let back = recall(&key).unwrap();
        assert_eq!(back.layers.len(), 2);
        assert_eq!(back.layers[0].digest, image().layers[0].digest);
        assert_eq!(back.layers[1].diff_id, image().layers[1].diff_id);
        assert_eq!(back.config.cmd, Some(vec!["sh".to_string()]));
        // Another tag is another entry.
        assert!(recall(&Key::of(&images, &archive, Some("v2")).unwrap()).is_none());
        std::fs::write(&archive, "two").unwrap();
        assert!(recall(&Key::of(&images, &archive, Some("v1")).unwrap()).is_none());
        forget_all(&images);
        assert!(!images.join(DIR).exists());
    }

    #[test]
    fn fnv1a_matches_its_reference_values() {
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
    }

    #[test]
    fn a_just_written_image_is_not_remembered() {
        let (_tmp, archive, images) = scratch("new");
        let key = Key::of(&images, &archive, None).unwrap();
        remember(&key, &image());
        assert!(recall(&key).is_none());
    }
}
