//! Where an image's files come from: an OCI layout directory, or a tar archive of one (as
//! `docker save` and `podman save --format oci-archive` write). Archives are indexed once and
//! read in place, never extracted to a temporary copy.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Component, Path, PathBuf};

use crate::error::{Error, Result};

pub enum Source {
    Dir(PathBuf),
    Archive { path: PathBuf, members: HashMap<String, (u64, u64)> },
}

impl Source {
    pub fn open(path: &Path) -> Result<Source> {
        let meta = std::fs::metadata(path).map_err(|e| Error::io("open image", path.display(), e))?;
        if meta.is_dir() {
            return Ok(Source::Dir(path.to_path_buf()));
        }
        let file = File::open(path).map_err(|e| Error::io("open image archive", path.display(), e))?;
        let mut archive = tar::Archive::new(file);
        let mut members = HashMap::new();
        // Seeking past each member reads only the headers, not the layers.
        let entries = archive.entries_with_seek().map_err(|e| Error::io("read image archive", path.display(), e))?;
        for entry in entries {
            let entry = entry.map_err(|e| Error::io("read image archive", path.display(), e))?;
            if entry.header().entry_type().is_file() {
                let name = normalize(&entry.path_bytes());
                members.insert(name, (entry.raw_file_position(), entry.size()));
            }
        }
        Ok(Source::Archive { path: path.to_path_buf(), members })
    }

    /// One file of the image, by its path inside the layout ("index.json", "blobs/sha256/…").
    pub fn open_member(&self, name: &str) -> Result<Box<dyn Read>> {
        let relative = Path::new(name);
        if relative.components().any(|c| !matches!(c, Component::Normal(_) | Component::CurDir)) {
            return Err(Error::Image { image: self.describe(), reason: format!("path {name:?} leaves the image") });
        }
        match self {
            Source::Dir(dir) => {
                let path = dir.join(relative);
                let file = File::open(&path).map_err(|e| Error::io("open image file", path.display(), e))?;
                Ok(Box::new(file))
            }
            Source::Archive { path, members } => {
                let Some(&(offset, size)) = members.get(&normalize(name.as_bytes())) else {
                    return Err(Error::Image {
                        image: self.describe(),
                        reason: format!("{name:?} is not in the archive"),
                    });
                };
                let mut file = File::open(path).map_err(|e| Error::io("open image archive", path.display(), e))?;
                file.seek(SeekFrom::Start(offset)).map_err(|e| Error::io("read image archive", path.display(), e))?;
                Ok(Box::new(file.take(size)))
            }
        }
    }

    /// The size of one file of the image, in bytes.
    pub fn member_size(&self, name: &str) -> Result<u64> {
        match self {
            Source::Dir(dir) => {
                let path = dir.join(name);
                std::fs::metadata(&path).map(|m| m.len()).map_err(|e| Error::io("open image file", path.display(), e))
            }
            Source::Archive { members, .. } => members.get(&normalize(name.as_bytes())).map(|m| m.1).ok_or_else(|| {
                Error::Image { image: self.describe(), reason: format!("{name:?} is not in the archive") }
            }),
        }
    }

    pub fn exists(&self, name: &str) -> bool {
        match self {
            Source::Dir(dir) => dir.join(name).is_file(),
            Source::Archive { members, .. } => members.contains_key(&normalize(name.as_bytes())),
        }
    }

    pub fn read_small(&self, name: &str) -> Result<Vec<u8>> {
        // Manifests and configs are kilobytes: refuse a huge one, and make room for a typical
        // one up front (read_to_end on an empty Vec probes with 32-byte reads).
        const LIMIT: u64 = 16 << 20;
        let mut bytes = Vec::with_capacity(8192);
        self.open_member(name)?
            .take(LIMIT + 1)
            .read_to_end(&mut bytes)
            .map_err(|e: io::Error| Error::io("read image file", name, e))?;
        if bytes.len() as u64 > LIMIT {
            return Err(Error::Image { image: self.describe(), reason: format!("{name:?} is larger than 16 MiB") });
        }
        Ok(bytes)
    }

    pub fn describe(&self) -> String {
        match self {
            Source::Dir(p) | Source::Archive { path: p, .. } => p.display().to_string(),
        }
    }
}

/// "./blobs/sha256/x" and "blobs/sha256/x" name the same member.
fn normalize(name: &[u8]) -> String {
    let text = String::from_utf8_lossy(name);
    text.split('/').filter(|c| !c.is_empty() && *c != ".").collect::<Vec<_>>().join("/")
}
