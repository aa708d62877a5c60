//! berth run by an unprivileged user: a test user made here (with subordinate id ranges),
//! a bundle from `berth spec --rootless`, and the same isolation minus cgroups. One test
//! function, so the user is created and removed once.

use std::os::unix::fs::{chown, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use runtime_tests::*;
use serde_json::json;

struct TestUser {
    name: String,
    uid: u32,
    subuid: u32,
}

impl TestUser {
    fn create() -> TestUser {
        let name = format!("berthrt{}", std::process::id() % 100_000);
        let _ = Command::new("userdel").arg(&name).output();
        let ok =
            Command::new("useradd").args(["--no-create-home", "--shell", "/usr/sbin/nologin", &name]).status().unwrap();
        assert!(ok.success(), "useradd");
        let ok = Command::new("usermod")
            .args(["--add-subuids", "600000-665535", "--add-subgids", "600000-665535", &name])
            .status()
            .unwrap();
        assert!(ok.success(), "usermod --add-subuids");
        let id = Command::new("id").args(["-u", &name]).output().unwrap();
        let uid = String::from_utf8_lossy(&id.stdout).trim().parse().unwrap();
        TestUser { name, uid, subuid: 600000 }
    }

    /// Runs berth as this user, with its own runtime directory.
    fn berth(&self, bin: &Path, xdg: &Path, args: &[&str]) -> Output {
        Command::new("runuser")
            .args(["-u", &self.name, "--", "env", &format!("XDG_RUNTIME_DIR={}", xdg.display())])
            .arg(bin)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }
}

impl Drop for TestUser {
    fn drop(&mut self) {
        // userdel also drops the user's /etc/subuid and /etc/subgid ranges.
        let _ = Command::new("userdel").arg(&self.name).output();
    }
}

fn give(path: &Path, user: &TestUser, mode: u32) {
    chown(path, Some(user.uid), Some(user.uid)).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn an_unprivileged_user_runs_a_rootless_bundle() {
    require_root();
    let user = TestUser::create();
    let b = Bundle::new("rootless");
    // The user's copy of berth (the checkout may sit where it cannot reach), its bundle
    // directory (the rootfs stays root's), and its runtime directory.
    let bin = b.dir.join("berth");
    std::fs::copy(berth_bin(), &bin).unwrap();
    give(&b.dir, &user, 0o755);
    let xdg = b.dir.join("xdg");
    std::fs::create_dir(&xdg).unwrap();
    give(&xdg, &user, 0o700);
    std::fs::remove_file(b.dir.join("config.json")).unwrap();
    let out = user.berth(&bin, &xdg, &["spec", "--rootless", "--bundle", b.dir.to_str().unwrap()]);
    assert!(out.status.success(), "spec --rootless: {}", stderr(&out));
    let config_path = b.dir.join("config.json");
    let mut config: serde_json::Value = serde_json::from_slice(&std::fs::read(&config_path).unwrap()).unwrap();
    config["process"]["terminal"] = json!(false);
    let write = |config: &serde_json::Value| std::fs::write(&config_path, config.to_string()).unwrap();

    // Isolation, checked from inside.
    config["process"]["args"] = json!(["sh", "-c",
        "id -u; hostname; echo $$; cat /proc/self/uid_map; for n in pid net ipc uts mnt user; do readlink /proc/self/ns/$n; done; \
         ls /proc | grep -c '^[0-9]'; grep CapEff /proc/self/status"]);
    write(&config);
    let out = user.berth(&bin, &xdg, &["run", "--bundle", b.dir.to_str().unwrap(), "rl1"]);
    assert!(out.status.success(), "rootless run: {}", stderr(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(&lines[..3], ["0", config["hostname"].as_str().unwrap(), "1"], "{text}");
    assert_eq!(lines[3].split_whitespace().collect::<Vec<_>>(), ["0", &user.uid.to_string(), "1"]);
    // Every namespace the config asks for is the container's own. berth's template keeps a
    // network namespace (loopback only); runc's leaves the container on the host's network.
    let asked: Vec<String> = config["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["type"].as_str().unwrap().to_string())
        .collect();
    if runtime_is_runc() {
        skip("a network namespace in spec --rootless: berth only (runc's template has none)");
    } else {
        assert!(asked.iter().any(|n| n == "network"), "spec --rootless asks for no network namespace");
    }
    for (i, (n, kind)) in
        [("pid", "pid"), ("net", "network"), ("ipc", "ipc"), ("uts", "uts"), ("mnt", "mount"), ("user", "user")]
            .iter()
            .enumerate()
    {
        if asked.iter().any(|a| a == kind) {
            let host = std::fs::read_link(format!("/proc/self/ns/{n}")).unwrap();
            assert_ne!(lines[4 + i], host.to_str().unwrap(), "{n} is the host's");
        }
    }
    // sh, ls and grep: nothing of the host.
    assert_eq!(lines[10], "3", "the container sees host processes: {text}");
    assert_eq!(lines[11], "CapEff:\t0000000020000420");

    // From the host: the process is the unprivileged user, and has no cgroup of its own.
    config["process"]["args"] = json!(["sleep", "300"]);
    write(&config);
    let mut detached = Command::new("runuser");
    detached.args(["-u", &user.name, "--", "env", &format!("XDG_RUNTIME_DIR={}", xdg.display())]).arg(&bin).args([
        "run",
        "--detach",
        "--bundle",
        b.dir.to_str().unwrap(),
        "rl2",
    ]);
    let out = b.detached(detached);
    assert!(out.status.success(), "{}", stderr(&out));
    let state: serde_json::Value = serde_json::from_slice(&user.berth(&bin, &xdg, &["state", "rl2"]).stdout).unwrap();
    let pid = state["pid"].as_i64().unwrap();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    assert_eq!(status_field(&status, "Uid").split('\t').next().unwrap(), user.uid.to_string());
    // No cgroup was delegated: the container stays in the caller's (this test's) pids cgroup.
    let pids_cgroup = |text: &str| text.lines().find(|l| l.contains(":pids:")).map(String::from);
    let mine = pids_cgroup(&std::fs::read_to_string("/proc/self/cgroup").unwrap());
    assert_eq!(pids_cgroup(&std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap()), mine);
    assert!(user.berth(&bin, &xdg, &["delete", "--force", "rl2"]).status.success());

    // Ranges from /etc/subuid go through newuidmap.
    let ranges = json!([{"containerID": 0, "hostID": user.uid, "size": 1}, {"containerID": 1, "hostID": user.subuid, "size": 65536}]);
    config["linux"]["uidMappings"] = ranges.clone();
    config["linux"]["gidMappings"] = ranges;
    config["process"]["args"] = json!(["sh", "-c", "cat /proc/self/uid_map"]);
    write(&config);
    let out = user.berth(&bin, &xdg, &["run", "--bundle", b.dir.to_str().unwrap(), "rl3"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let maps: Vec<Vec<String>> =
        stdout(&out).lines().map(|l| l.split_whitespace().map(String::from).collect()).collect();
    assert_eq!(maps[1], ["1", &user.subuid.to_string(), "65536"]);

    // A range the user does not own is refused, naming it, and nothing is left.
    config["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 900000, "size": 10}]);
    write(&config);
    let out = user.berth(&bin, &xdg, &["run", "--bundle", b.dir.to_str().unwrap(), "rl4"]);
    assert!(!out.status.success());
    if !runtime_is_runc() {
        assert!(stderr(&out).contains("0 900000 10"), "{}", stderr(&out));
    }
    // Each runtime's default state root for an unprivileged user: $XDG_RUNTIME_DIR/<name>.
    let root = xdg.join(if runtime_is_runc() { "runc" } else { "berth" });
    let left: Vec<PathBuf> = std::fs::read_dir(root).unwrap().map(|e| e.unwrap().path()).collect();
    assert!(left.is_empty(), "state left behind: {left:?}");
}
