//! config.json for a container of an image: `berth spec`'s defaults, then what the image
//! config asks for, then the command line, in the order `docker run` applies them.

use std::io::Read;
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;
use serde_json::{json, Value};

use super::manifest::ImageConfig;
use crate::error::{Error, Result};

/// Where the image's StopSignal goes (the OCI image spec's annotation).
pub const STOP_SIGNAL_ANNOTATION: &str = "org.opencontainers.image.stopSignal";

/// docker's default capability set: images are built expecting it (chown, setuid, ...).
const IMAGE_CAPS: [&str; 14] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

pub struct Request<'a> {
    pub id: &'a str,
    pub image: &'a str,
    /// Replaces the image's Cmd when not empty (Entrypoint stays), as `docker run` does.
    pub cmd: &'a [String],
    pub tty: bool,
    /// root.path: "rootfs" in a flat bundle, the shared overlay mount point for a run.
    pub rootfs: &'a str,
}

/// `layers`: the image's layer directories, top first, for the user lookup.
pub fn spec_for(config: &ImageConfig, req: &Request, layers: &[PathBuf]) -> Result<Value> {
    let mut spec = crate::spec::default_spec(false, 0, 0);
    let process = &mut spec["process"];
    process["args"] = json!(args(config, req)?);
    process["terminal"] = json!(req.tty);
    process["env"] = json!(env(config, req.tty));
    process["cwd"] = json!(cwd(config));
    let (uid, gid) = user(config.user.as_deref().unwrap_or(""), layers, req.image)?;
    process["user"] = json!({ "uid": uid, "gid": gid });
    for set in ["bounding", "effective", "permitted"] {
        process["capabilities"][set] = json!(IMAGE_CAPS);
    }
    spec["root"] = json!({ "path": req.rootfs, "readonly": false });
    spec["hostname"] = json!(req.id);
    if let Some(mounts) = spec["mounts"].as_array_mut() {
        for volume in config.volumes.iter().flat_map(|v| v.keys()) {
            // An anonymous volume: empty, writable, gone with the container.
            mounts.push(json!({
                "destination": volume, "type": "tmpfs", "source": "tmpfs",
                "options": ["nosuid", "nodev", "mode=755"]
            }));
        }
    }
    // The layers go to create as its options, not through the config.
    let mut annotations = json!({ crate::annotations::IMAGE: req.image });
    if let Some(signal) = &config.stop_signal {
        annotations[STOP_SIGNAL_ANNOTATION] = json!(signal);
    }
    spec["annotations"] = annotations;
    Ok(spec)
}

fn args(config: &ImageConfig, req: &Request) -> Result<Vec<String>> {
    let mut args = config.entrypoint.clone().unwrap_or_default();
    if req.cmd.is_empty() {
        args.extend(config.cmd.clone().unwrap_or_default());
    } else {
        args.extend(req.cmd.iter().cloned());
    }
    if args.is_empty() {
        return Err(Error::Image {
            image: req.image.into(),
            reason: "it has no Entrypoint or Cmd: give a command after --".into(),
        });
    }
    Ok(args)
}

/// The image's variables over the defaults, by name; PATH is always set.
fn env(config: &ImageConfig, tty: bool) -> Vec<String> {
    let mut env = vec!["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_string()];
    if tty {
        env.push("TERM=xterm".into());
    }
    for var in config.env.iter().flatten() {
        let name = var.split('=').next().unwrap_or_default();
        env.retain(|e| e.split('=').next() != Some(name));
        env.push(var.clone());
    }
    env
}

fn cwd(config: &ImageConfig) -> String {
    match config.working_dir.as_deref() {
        Some(dir) if !dir.is_empty() => Path::new("/").join(dir).display().to_string(),
        _ => "/".into(),
    }
}

/// "uid", "uid:gid", "name" or "name:group", names looked up in the image's own /etc/passwd and
/// /etc/group (from the topmost layer that has them, read without leaving the layer).
fn user(spec: &str, layers: &[PathBuf], image: &str) -> Result<(u32, u32)> {
    if spec.is_empty() {
        return Ok((0, 0));
    }
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    // `file` is "passwd" or "group": what is missing is a user or a group in it.
    let not_found = |file: &str, name: &str| Error::Image {
        image: image.into(),
        reason: format!("User {spec:?}: {name:?} is not in the image's /etc/{file}"),
    };
    let passwd = read_from_layers(layers, "etc/passwd");
    let (uid, primary_gid) = match user.parse::<u32>() {
        Ok(uid) => (uid, lookup(&passwd, |f| f[2] == user).and_then(|f| f[3].parse().ok()).unwrap_or(0)),
        Err(_) => {
            let fields = lookup(&passwd, |f| f[0] == user).ok_or_else(|| not_found("passwd", user))?;
            (fields[2].parse().unwrap_or(0), fields[3].parse().unwrap_or(0))
        }
    };
    let gid = match group {
        None => primary_gid,
        Some(g) => match g.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => {
                let groups = read_from_layers(layers, "etc/group");
                let fields = lookup(&groups, |f| f[0] == g).ok_or_else(|| not_found("group", g))?;
                fields[2].parse().unwrap_or(0)
            }
        },
    };
    Ok((uid, gid))
}

fn lookup(text: &str, matches: impl Fn(&[&str]) -> bool) -> Option<Vec<String>> {
    text.lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.len() >= 4 && matches(f))
        .map(|f| f.iter().map(|s| s.to_string()).collect())
}

fn read_from_layers(layers: &[PathBuf], rel: &str) -> String {
    for layer in layers {
        let Ok(root) = crate::rootfs::path::Root::open(layer) else { continue };
        if let Ok(fd) = root.resolve_with(Path::new(rel), OFlag::O_RDONLY) {
            let mut text = String::new();
            if std::fs::File::from(fd).take(1 << 20).read_to_string(&mut text).is_ok() {
                return text;
            }
        }
    }
    String::new()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(json: &str) -> ImageConfig {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn command_line_replaces_cmd_not_entrypoint() {
        let c = config(r#"{"Entrypoint":["/bin/sh","-c"],"Cmd":["echo hi"]}"#);
        let req = |cmd: &'static [String]| Request { id: "c", image: "i", cmd, tty: false, rootfs: "rootfs" };
        assert_eq!(args(&c, &req(&[])).unwrap(), ["/bin/sh", "-c", "echo hi"]);
        let cmd = vec!["echo bye".to_string()];
        let cmd: &'static [String] = Box::leak(cmd.into_boxed_slice());
        assert_eq!(args(&c, &req(cmd)).unwrap(), ["/bin/sh", "-c", "echo bye"]);
        assert!(args(&config("{}"), &req(&[])).is_err());
    }

    #[test]
    fn image_env_overrides_by_name() {
        let c = config(r#"{"Env":["PATH=/opt/bin","A=1"]}"#);
        assert_eq!(env(&c, false), ["PATH=/opt/bin", "A=1"]);
    }

    #[test]
    fn users_resolve_through_the_image_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("etc")).unwrap();
        std::fs::write(dir.path().join("etc/passwd"), "root:x:0:0::/root:/bin/sh\napp:x:1000:1001::/:/bin/sh\n")
            .unwrap();
        std::fs::write(dir.path().join("etc/group"), "root:x:0:\nstaff:x:50:\n").unwrap();
        let layers = [dir.path().to_path_buf()];
        assert_eq!(user("app", &layers, "i").unwrap(), (1000, 1001));
        assert_eq!(user("app:staff", &layers, "i").unwrap(), (1000, 50));
        assert_eq!(user("1000", &layers, "i").unwrap(), (1000, 1001));
        assert_eq!(user("7:8", &layers, "i").unwrap(), (7, 8));
        assert!(user("nobody", &layers, "i").is_err());
    }
}
