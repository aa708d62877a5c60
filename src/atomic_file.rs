//! Files replaced whole: written under a temporary name in the same directory and renamed over
//! the real one, so a reader sees the old file or the new one, never half of either.
//!
//! The temporary name is unique to the writer (`.NAME.berth-<pid>-<n>`): a name derived from
//! the target alone (`p.30` and `p.29` both made `p.berth-tmp`) lets two writers in one
//! directory rename each other's file, and a pid file could end up holding another
//! container's pid. The pid tells live writers apart, the counter one writer's files, and
//! O_EXCL a leftover of a dead writer whose pid came back (the next number is tried).

use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// The temporary name for `target`'s `n`th attempt by this process.
fn temp_name(target: &Path, n: u32) -> PathBuf {
    let mut name = OsString::from(".");
    name.push(target.file_name().unwrap_or_default());
    name.push(format!(".berth-{}-{n}", std::process::id()));
    target.with_file_name(name)
}

/// Replaces `target` with `data`. `durable`: the directory is fsynced after the rename, so
/// the new name survives a crash of the machine. The file's data is not synced on its own:
/// ext4 (data=ordered) writes a file renamed over another before the rename commits, and on
/// a tmpfs (/run, where state lives) nothing of it costs anything. On a disk the directory's
/// fsync is a journal commit, milliseconds: only what must outlive the machine asks for it.
pub fn write(target: &Path, data: &[u8], durable: bool) -> std::io::Result<()> {
    let (tmp, mut file) = loop {
        let tmp = temp_name(target, COUNTER.fetch_add(1, Ordering::Relaxed));
        match OpenOptions::new().write(true).create_new(true).mode(0o644).custom_flags(libc::O_CLOEXEC).open(&tmp) {
            Ok(file) => break (tmp, file),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    };
    let written = file.write_all(data);
    drop(file);
    if let Err(e) = written.and_then(|()| std::fs::rename(&tmp, target)) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    if durable {
        sync_dir(target.parent().unwrap_or(Path::new(".")))?;
    }
    Ok(())
}

/// Makes the directory's entries (a rename, a new file) durable.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    let dir = if dir.as_os_str().is_empty() { Path::new(".") } else { dir };
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_the_writers_own() {
        let a = temp_name(Path::new("/d/p.29"), 1);
        let b = temp_name(Path::new("/d/p.30"), 1);
        assert_ne!(a, b);
        assert_eq!(a.parent(), Some(Path::new("/d")));
        assert!(a.file_name().unwrap().to_string_lossy().starts_with(".p.29.berth-"));
        assert_ne!(temp_name(Path::new("/d/p"), 1), temp_name(Path::new("/d/p"), 2));
    }

    #[test]
    fn replaces_and_leaves_no_temporary() {
        let tmp = tempfile::tempdir().unwrap();
        let target = tmp.path().join("pid");
        write(&target, b"1", true).unwrap();
        write(&target, b"22", false).unwrap();
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "22");
        assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 1);
    }

    #[test]
    fn parallel_writers_in_one_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let threads: Vec<_> = (0..16)
            .map(|i| {
                let target = tmp.path().join(format!("p.{i}"));
                std::thread::spawn(move || {
                    for _ in 0..50 {
                        write(&target, i.to_string().as_bytes(), false).unwrap();
                    }
                })
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        for i in 0..16 {
            assert_eq!(std::fs::read_to_string(tmp.path().join(format!("p.{i}"))).unwrap(), i.to_string());
        }
    }
}
