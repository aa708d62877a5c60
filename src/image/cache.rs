//! The layer cache: each layer unpacked once, under `<root>/@images/layers/sha256/<diff_id>`,
//! and shared read-only by every container that runs an image holding it. A layer is unpacked
//! into a scratch directory while its digest is checked, and renamed into place only when the
//! whole stream matched; a lock per digest makes concurrent runs of one image wait for the
//! first unpack instead of repeating it. Every run holds the cache's `gc.lock` shared from
//! before it looks at a layer until its container's state names the layers, and `gc` takes it
//! exclusively, so gc never removes a layer a container is being set up on.

use std::fs::{self, File};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

use super::digest::{Digest, HashingReader};
use super::manifest::LayerRef;
use super::source::Source;
use super::unpack::{unpack, Unpacked, Whiteouts};
use crate::error::{Error, Result};

/// '@' cannot appear in a container id, so the cache never collides with a container.
pub const IMAGES_DIR: &str = "@images";
const RECORD: &str = "layer.json";

pub struct Store {
    dir: PathBuf,
}

/// A layer in the cache, as `layer.json` records it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CachedLayer {
    pub diff_id: String,
    pub blob: Option<String>,
    pub entries: u64,
    pub bytes: u64,
    pub unpacked: String,
}

/// A held lock: a run's shared hold on the cache against `gc`.
pub type CacheLock = Flock<File>;

impl Store {
    /// The cache under `root`. Its directories are made when first written to, so a cached
    /// run costs no mkdir calls.
    pub fn new(root: &Path) -> Store {
        Store { dir: root.join(IMAGES_DIR) }
    }

    pub fn layer_dir(&self, diff_id: &Digest) -> PathBuf {
        self.layers_dir().join(diff_id.hex())
    }

    /// A layer's layer.json: written last, removed first, so it says the layer is whole.
    fn record(&self, diff_id: &Digest) -> PathBuf {
        self.layer_dir(diff_id).join(RECORD)
    }

    /// The directory an overlay uses as this layer.
    pub fn layer_rootfs(&self, diff_id: &Digest) -> PathBuf {
        self.layer_dir(diff_id).join("rootfs")
    }

    pub fn layers_dir(&self) -> PathBuf {
        self.dir.join("layers/sha256")
    }

    /// The empty directory image containers mount their overlay on, each in its own mount
    /// namespace (a slave of the host's, so the host never sees those mounts): one for all of
    /// them, where a directory per container would cost an mkdir and an rmdir each.
    pub fn mountpoint(&self) -> PathBuf {
        self.dir.join("rootfs")
    }

    /// `mountpoint`, made if it is not there.
    pub fn make_mountpoint(&self) -> Result<PathBuf> {
        let dir = self.mountpoint();
        match fs::create_dir(&dir) {
            Ok(()) => Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => make_dir(&dir).map(|()| dir),
            Err(e) => Err(Error::io("create", dir.display(), e)),
        }
    }

    fn lock(&self, name: &str, arg: FlockArg) -> Result<std::result::Result<CacheLock, File>> {
        let path = self.dir.join("locks").join(name);
        let open = || File::options().create(true).truncate(false).write(true).open(&path);
        let file = match open() {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => make_dir(&self.dir.join("locks"))
                .and_then(|()| open().map_err(|e| Error::io("open lock", path.display(), e))),
            other => other.map_err(|e| Error::io("open lock", path.display(), e)),
        }?;
        match Flock::lock(file, arg) {
            Ok(lock) => Ok(Ok(lock)),
            Err((file, nix::errno::Errno::EWOULDBLOCK)) => Ok(Err(file)),
            Err((_, e)) => Err(Error::sys("lock layer", path.display(), e)),
        }
    }

    /// Held by a run until its container's state names its layers: `gc` waits for it.
    pub fn hold_against_gc(&self) -> Result<CacheLock> {
        self.lock("gc.lock", FlockArg::LockShared)?.map_err(|_| self.busy("gc.lock"))
    }

    /// A layer is renamed into place whole and never changed, and gc cannot remove it while
    /// the caller holds `hold_against_gc`: one that is there needs no lock.
    pub fn is_cached(&self, diff_id: &Digest) -> bool {
        self.record(diff_id).exists()
    }

    /// The layer unpacked and verified; the first of concurrent callers unpacks it, the others
    /// wait on its lock and find it done. The caller holds `hold_against_gc`.
    pub fn ensure(&self, source: &Source, layer: &LayerRef) -> Result<()> {
        let hex = layer.diff_id.hex();
        let _lock = self.lock(hex, FlockArg::LockExclusive)?.map_err(|_| self.busy(hex))?;
        if !self.is_cached(&layer.diff_id) {
            self.unpack_into_cache(source, layer)?;
        }
        Ok(())
    }

    fn busy(&self, lock: &str) -> Error {
        Error::Layer { layer: lock.to_string(), reason: "its lock could not be taken".into() }
    }

    fn unpack_into_cache(&self, source: &Source, layer: &LayerRef) -> Result<()> {
        make_dir(&self.dir.join("tmp"))?;
        make_dir(&self.layers_dir())?;
        let scratch = self.dir.join("tmp").join(format!("{}.{}", layer.diff_id.hex(), std::process::id()));
        let _ = fs::remove_dir_all(&scratch);
        let result = self.unpack_verified(source, layer, &scratch).and_then(|record| {
            let meta = scratch.join(RECORD);
            let json = serde_json::to_vec_pretty(&record).map_err(|e| Error::io("encode", meta.display(), e.into()))?;
            fs::write(&meta, json).map_err(|e| Error::io("write", meta.display(), e))?;
            let target = self.layer_dir(&layer.diff_id);
            fs::rename(&scratch, &target).map_err(|e| Error::io("move layer into the cache", target.display(), e))?;
            crate::logging::debug(&format!(
                "unpacked layer {} ({} entries, {} bytes)",
                layer.diff_id, record.entries, record.bytes
            ));
            Ok(())
        });
        if result.is_err() {
            let _ = fs::remove_dir_all(&scratch);
        }
        result
    }

    fn unpack_verified(&self, source: &Source, layer: &LayerRef, scratch: &Path) -> Result<CachedLayer> {
        let rootfs = scratch.join("rootfs");
        fs::create_dir_all(&rootfs).map_err(|e| Error::io("create", rootfs.display(), e))?;
        let stats = unpack_layer(source, layer, &rootfs, Whiteouts::Overlay)?;
        Ok(CachedLayer {
            diff_id: layer.diff_id.to_string(),
            blob: layer.digest.as_ref().map(|d| d.to_string()),
            entries: stats.entries,
            bytes: stats.bytes,
            unpacked: crate::time::now_rfc3339(),
        })
    }

    pub fn layers(&self) -> Vec<(Digest, CachedLayer)> {
        let mut out = Vec::new();
        for entry in fs::read_dir(self.layers_dir()).into_iter().flatten().flatten() {
            let Some(digest) = Digest::parse(&format!("sha256:{}", entry.file_name().to_string_lossy())) else {
                continue;
            };
            if let Ok(bytes) = fs::read(entry.path().join(RECORD)) {
                if let Ok(record) = serde_json::from_slice::<CachedLayer>(&bytes) {
                    out.push((digest, record));
                }
            }
        }
        out.sort_by(|a, b| a.1.unpacked.cmp(&b.1.unpacked));
        out
    }

    /// For `gc`: no run is between looking at a layer and recording its container.
    pub fn exclude_runs(&self) -> Result<CacheLock> {
        self.lock("gc.lock", FlockArg::LockExclusive)?.map_err(|_| self.busy("gc.lock"))
    }

    /// Removes the layer (the caller holds `exclude_runs`) unless it is being unpacked.
    pub fn remove(&self, diff_id: &Digest) -> Result<bool> {
        let Ok(_lock) = self.lock(diff_id.hex(), FlockArg::LockExclusiveNonblock)? else {
            return Ok(false);
        };
        let dir = self.layer_dir(diff_id);
        // Unlinking layer.json first makes a half-removed layer count as absent.
        let _ = fs::remove_file(self.record(diff_id));
        fs::remove_dir_all(&dir).map_err(|e| Error::io("remove layer", dir.display(), e))?;
        let _ = fs::remove_file(self.dir.join("locks").join(diff_id.hex()));
        Ok(true)
    }
}

fn make_dir(path: &Path) -> Result<()> {
    fs::create_dir_all(path).map_err(|e| Error::io("create image cache directory", path.display(), e))
}

/// Unpacks one layer of `source` into `into`, and checks what was read against the layer's
/// uncompressed digest and, when the manifest names one, its blob digest.
pub fn unpack_layer(source: &Source, layer: &LayerRef, into: &Path, whiteouts: Whiteouts) -> Result<Unpacked> {
    let name = layer.diff_id.to_string();
    let stored = source.member_size(&layer.blob)?;
    if let Some(declared) = layer.size.filter(|d| *d != stored) {
        return Err(Error::Layer {
            layer: name,
            reason: format!("its blob is {stored} bytes, but the manifest declares {declared}"),
        });
    }
    let (stats, blob_digest, diff_id) =
        unpack_stream(source.open_member(&layer.blob)?, stored, into, whiteouts, &name)?;
    check(&name, "uncompressed content", &layer.diff_id, &diff_id)?;
    if let Some(expected) = &layer.digest {
        check(&name, "blob", expected, &blob_digest)?;
    }
    Ok(stats)
}

fn check(layer: &str, what: &str, expected: &Digest, actual: &Digest) -> Result<()> {
    if expected == actual {
        return Ok(());
    }
    Err(Error::Layer { layer: layer.into(), reason: format!("corrupt: its {what} hashes to {actual}, not {expected}") })
}

/// A compressed layer may unpack to this many times its size, and to this many bytes whatever
/// its size. Real layers stay far below (text and binaries compress 2-5 times, a layer of
/// zeros a few hundred); a decompression bomb is refused once it passes the bound, before it
/// fills the cache (gzip reaches 1000:1, zstd far more).
const MAX_EXPANSION: u64 = 100;
const MIN_BOUND: u64 = 256 << 20;

/// Unpacks a (possibly gzip- or zstd-compressed) layer blob of `stored` bytes, hashing both
/// the blob as stored and the tar inside it. Returns (what was unpacked, blob digest,
/// uncompressed digest).
fn unpack_stream(
    blob: Box<dyn Read>,
    stored: u64,
    into: &Path,
    whiteouts: Whiteouts,
    name: &str,
) -> Result<(Unpacked, Digest, Digest)> {
    let broken = |e: std::io::Error| Error::Layer { layer: name.into(), reason: format!("read: {e}") };
    let bound = stored.saturating_mul(MAX_EXPANSION).max(MIN_BOUND);
    let bomb = || Error::Layer {
        layer: name.into(),
        reason: format!(
            "it unpacks to more than {bound} bytes from {stored} compressed: refused as a decompression bomb"
        ),
    };
    let mut stored = HashingReader::new(blob);
    let (stats, diff_id) = {
        let mut buffered = BufReader::with_capacity(128 * 1024, &mut stored);
        let magic = buffered.fill_buf().map_err(broken)?.get(..4).map(|m| m.to_vec()).unwrap_or_default();
        let tar: Box<dyn Read + '_> = if magic.starts_with(&[0x1f, 0x8b]) {
            Box::new(flate2::bufread::MultiGzDecoder::new(buffered))
        } else if magic == [0x28, 0xb5, 0x2f, 0xfd] {
            Box::new(ZstdFrames { input: Some(buffered), frame: None })
        } else {
            Box::new(buffered)
        };
        let mut uncompressed = HashingReader::new(Bounded { inner: tar, left: bound, exceeded: false });
        let unpacked = unpack(&mut uncompressed, into, whiteouts, name);
        if uncompressed.get_ref().exceeded {
            return Err(bomb());
        }
        let stats = unpacked?;
        let digest = uncompressed.finish().map_err(broken)?;
        (stats, digest)
    };
    let blob_digest = stored.finish().map_err(broken)?;
    Ok((stats, blob_digest, diff_id))
}

/// Reads at most `left` bytes; one more is an error (and `exceeded`), not an end of stream.
struct Bounded<R: Read> {
    inner: R,
    left: u64,
    exceeded: bool,
}

impl<R: Read> Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n as u64 > self.left {
            self.exceeded = true;
            return Err(std::io::Error::other("decompression bound exceeded"));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// zstd streams may hold several frames (zstd:chunked writes one per file); ruzstd decodes
/// one frame at a time.
struct ZstdFrames<R: BufRead> {
    input: Option<R>,
    frame: Option<ruzstd::decoding::StreamingDecoder<R, ruzstd::decoding::FrameDecoder>>,
}

impl<R: BufRead> Read for ZstdFrames<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            if let Some(frame) = self.frame.as_mut() {
                let n = frame.read(buf)?;
                if n > 0 || buf.is_empty() {
                    return Ok(n);
                }
                self.input = self.frame.take().map(|f| f.into_inner());
            }
            let Some(mut input) = self.input.take() else { return Ok(0) };
            if input.fill_buf()?.is_empty() {
                return Ok(0);
            }
            let decoder = ruzstd::decoding::StreamingDecoder::new(input)
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, format!("zstd: {e}")))?;
            self.frame = Some(decoder);
        }
    }
}
