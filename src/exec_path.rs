//! Finding process.args[0] the way execvp would, inside the container, before `create` returns:
//! a missing program is reported by `create` (and `run` exits 127), not discovered after start.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use nix::unistd::{access, AccessFlags};

use crate::error::{Error, Result};

const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

pub fn find(arg0: &str, env: &[String]) -> Result<PathBuf> {
    if arg0.contains('/') {
        return match check(Path::new(arg0)) {
            Candidate::Runnable => Ok(PathBuf::from(arg0)),
            Candidate::NotRunnable => Err(Error::ExecPermission(arg0.into())),
            Candidate::Missing => Err(Error::ExecNoSuchFile(arg0.into())),
        };
    }
    let mut denied = false;
    for candidate in candidates(arg0, env) {
        match check(&candidate) {
            Candidate::Runnable => return Ok(candidate),
            Candidate::NotRunnable => denied = true,
            Candidate::Missing => {}
        }
    }
    Err(if denied { Error::ExecPermission(arg0.into()) } else { Error::ExecNotFound(arg0.into()) })
}

/// The paths execvp tries for `arg0`, in order: itself when it names a path, else each
/// directory of the process's PATH.
pub fn candidates(arg0: &str, env: &[String]) -> Vec<PathBuf> {
    if arg0.contains('/') {
        return vec![PathBuf::from(arg0)];
    }
    let path = env.iter().rev().find_map(|kv| kv.strip_prefix("PATH=")).unwrap_or(DEFAULT_PATH);
    path.split(':').map(|dir| Path::new(if dir.is_empty() { "." } else { dir }).join(arg0)).collect()
}

enum Candidate {
    Runnable,
    NotRunnable,
    Missing,
}

fn check(path: &Path) -> Candidate {
    match std::fs::metadata(path) {
        Err(_) => Candidate::Missing,
        Ok(m) if !m.is_file() || m.permissions().mode() & 0o111 == 0 => Candidate::NotRunnable,
        Ok(_) if access(path, AccessFlags::X_OK).is_err() => Candidate::NotRunnable,
        Ok(_) => Candidate::Runnable,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_follows_path() {
        let env = vec!["PATH=/nonexistent:/bin".to_string()];
        assert_eq!(find("sh", &env).unwrap(), PathBuf::from("/bin/sh"));
        assert!(matches!(find("no-such-program-x", &env), Err(Error::ExecNotFound(_))));
        assert!(matches!(find("/no/such", &env), Err(Error::ExecNoSuchFile(_))));
        let tmp = tempfile::tempdir().unwrap();
        let plain = tmp.path().join("plain");
        std::fs::write(&plain, "not a program").unwrap();
        assert!(matches!(find(plain.to_str().unwrap(), &env), Err(Error::ExecPermission(_))));
        assert!(matches!(find("/etc", &env), Err(Error::ExecPermission(_))));
    }

    #[test]
    fn candidates_are_execvps() {
        let env = vec!["PATH=/a::/b".to_string()];
        let paths = |arg0| candidates(arg0, &env).into_iter().map(|p| p.display().to_string()).collect::<Vec<_>>();
        assert_eq!(paths("sh"), ["/a/sh", "./sh", "/b/sh"]);
        assert_eq!(paths("x/sh"), ["x/sh"]);
        assert_eq!(candidates("sh", &[]).len(), DEFAULT_PATH.split(':').count());
    }
}
