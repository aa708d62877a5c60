//! Each escape class the peers were bitten by, attempted for real and refused.

use std::os::unix::fs::symlink;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use runtime_tests::*;
use serde_json::json;

fn digest(path: &std::path::Path) -> Vec<u8> {
    std::fs::read(path).unwrap()
}

/// CVE-2019-5736: the container reached the runtime's binary through /proc/<init>/exe and
/// rewrote it. berth's init is berth itself until execve, so it must stay out of reach.
#[test]
fn host_binary_is_out_of_reach_through_the_init() {
    let mut b = Bundle::new("cve5736");
    b.sh("sleep 300");
    assert!(b.create().status.success());
    let before = digest(&berth_bin());
    let attack = "ls -l /proc/1/exe 2>&1; cat /proc/1/exe > /dev/null 2>&1 && echo exe-readable; \
                  (echo x >> /proc/1/exe) 2>/dev/null && echo exe-writable; \
                  (exec 3</proc/1/exe) 2>/dev/null && echo exe-openable; echo end";
    let out = b.cmd(&["exec", &b.id, "sh", "-c", attack]);
    let text = stdout(&out);
    assert!(!text.contains("exe-writable"), "{text}");
    assert!(text.ends_with("end\n"), "{text}{}", stderr(&out));
    if runtime_is_runc() {
        // runc's init runs from a sealed read-only copy of runc, which the container may read.
        skip("/proc/1/exe unreadable: berth only (runc's init is a sealed copy the container may read, not write)");
    } else {
        assert!(text.contains("Permission denied"), "{text}{}", stderr(&out));
        for bad in ["exe-readable", "exe-openable"] {
            assert!(!text.contains(bad), "{bad}: {text}");
        }
    }
    assert!(b.cmd(&["start", &b.id]).status.success());
    assert_eq!(digest(&berth_bin()), before, "the berth binary changed");
}

/// CVE-2024-21626: a runtime fd leaked into the init let process.cwd (or exec --cwd) be
/// /proc/self/fd/N, a directory outside the rootfs. No runtime fd reaches the container any
/// more (exposure.rs); a directory the caller passes on with --preserve-fds still may, and a
/// cwd through it must be refused.
#[test]
fn cwd_can_never_point_outside_the_rootfs() {
    for fd in 3..=12 {
        let mut b = Bundle::new("cve21626");
        b.config["process"]["cwd"] = json!(format!("/proc/self/fd/{fd}"));
        b.sh("pwd; ls");
        let out = b.run();
        assert!(!out.status.success(), "cwd /proc/self/fd/{fd} was accepted: {}", stdout(&out));
        b.assert_nothing_left();
    }
    let mut b = Bundle::new("cve21626passed");
    b.config["process"]["cwd"] = json!("/proc/self/fd/3");
    b.sh("pwd; ls");
    b.save();
    let out =
        with_host_dir_as_fd3(&b, b.berth().args(["run", "--preserve-fds", "1", "--bundle"]).arg(&b.dir).arg(&b.id));
    assert!(!out.status.success(), "a cwd through a passed host directory was accepted: {}", stdout(&out));
    if !runtime_is_runc() {
        assert!(stderr(&out).contains("escapes the root filesystem"), "{}", stderr(&out));
    }
    b.assert_nothing_left();
    let mut b = Bundle::new("cve21626exec");
    b.sh("sleep 300");
    assert!(b.run_detached(&[]).status.success());
    for fd in 3..=8 {
        let out = b.cmd(&["exec", "--cwd", &format!("/proc/self/fd/{fd}"), &b.id, "pwd"]);
        assert!(!out.status.success(), "exec --cwd /proc/self/fd/{fd} was accepted: {}", stdout(&out));
    }
    let out = with_host_dir_as_fd3(
        &b,
        b.berth().args(["exec", "--preserve-fds", "1", "--cwd", "/proc/self/fd/3", &b.id, "pwd"]),
    );
    assert!(!out.status.success(), "exec --cwd through a passed host directory was accepted: {}", stdout(&out));
}

/// Runs `cmd` with the bundle directory (a host directory) open as its fd 3.
fn with_host_dir_as_fd3(b: &Bundle, cmd: &mut std::process::Command) -> std::process::Output {
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;
    let dir = std::fs::File::open(&b.dir).unwrap();
    let raw = dir.as_raw_fd();
    // SAFETY: dup2 and fcntl are async-signal-safe; they run in the forked child before exec.
    // fcntl clears close-on-exec also when the directory already was fd 3.
    unsafe {
        cmd.pre_exec(move || {
            if libc::dup2(raw, 3) < 0 || libc::fcntl(3, libc::F_SETFD, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.output().unwrap()
}

/// CVE-2021-30465: a mount destination that races between a directory and a symlink to the
/// host must still land inside the rootfs.
#[test]
fn mount_destination_racing_into_a_symlink_stays_inside() {
    let mut b = Bundle::new("cve30465");
    let outside = b.dir.join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    b.config["mounts"]
        .as_array_mut()
        .unwrap()
        .push(json!({"destination": "/race/mnt", "type": "tmpfs", "source": "tmpfs"}));
    b.sh("true");
    b.save();
    let race = b.dir.join("rootfs/race");
    let stop = Arc::new(AtomicBool::new(false));
    let flipper = {
        let (race, outside, stop) = (race.clone(), outside.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let _ = std::fs::remove_dir_all(&race);
                let _ = std::fs::remove_file(&race);
                let _ = std::fs::create_dir_all(race.join("mnt"));
                let _ = std::fs::remove_dir_all(&race);
                let _ = symlink(&outside, &race);
                std::thread::yield_now();
            }
        })
    };
    for _ in 0..30 {
        let _ = b.berth().args(["run", "--bundle"]).arg(&b.dir).arg(&b.id).output().unwrap();
        let _ = b.cmd(&["delete", "--force", &b.id]);
        assert!(!outside.join("mnt").exists(), "a mount destination was created outside the rootfs");
    }
    stop.store(true, Ordering::Relaxed);
    flipper.join().unwrap();
    assert!(!outside.join("mnt").exists());
}

/// Mounts over /proc entries (CVE-2019-16884 and CVE-2019-19921 went through them) are refused,
/// bar the few files lxcfs emulates. runc 1.1.5 checks bind mounts only; berth any type.
#[test]
fn proc_entries_cannot_be_overmounted_by_a_bundle() {
    for dest in ["/proc/sys", "/proc/self", "/proc/kcore"] {
        for kind in ["bind", "tmpfs"] {
            if kind == "tmpfs" && runtime_is_runc() {
                skip(&format!("tmpfs on {dest}: deliberate difference, runc 1.1.5 checks only bind mounts over /proc"));
                continue;
            }
            let mut b = Bundle::new("procmount");
            let mount = if kind == "bind" {
                // A file over a file, a directory over a directory: only the place is wrong.
                let source = b.dir.join(if dest == "/proc/kcore" { "rootfs/etc/group" } else { "rootfs/tmp" });
                json!({"destination": dest, "type": "bind", "source": source, "options": ["bind"]})
            } else {
                json!({"destination": dest, "type": "tmpfs", "source": "tmpfs"})
            };
            b.config["mounts"].as_array_mut().unwrap().push(mount);
            let out = b.create();
            assert!(!out.status.success(), "{kind} on {dest} accepted");
            // berth: "under /proc", runc: "inside /proc"
            assert!(stderr(&out).contains("/proc"), "{}", stderr(&out));
            if !runtime_is_runc() {
                assert!(stderr(&out).contains("under /proc"), "{}", stderr(&out));
            }
            b.assert_nothing_left();
        }
    }
    let mut ok = Bundle::new("procmeminfo");
    let fake = ok.dir.join("meminfo");
    std::fs::write(&fake, "MemTotal: 1 kB\n").unwrap();
    ok.config["mounts"]
        .as_array_mut()
        .unwrap()
        .push(json!({"destination": "/proc/meminfo", "type": "bind", "source": fake, "options": ["bind", "ro"]}));
    ok.sh("cat /proc/meminfo");
    assert_eq!(ok.run_ok(), "MemTotal: 1 kB\n");
}

/// The container gets a session keyring of its own (so it cannot read the host's keys),
/// unless --no-new-keyring.
#[test]
fn session_keyring_per_container() {
    let mut b = Bundle::new("keyring");
    b.config["linux"]["maskedPaths"] = json!([]);
    b.sh("cat /proc/keys");
    assert!(b.run_ok().contains(&format!("keyring   _ses.{}:", b.id)));
    b.save();
    // A fresh id: the first container's keyring lingers until the kernel collects it.
    let second = format!("{}-nokeyring", b.id);
    let out = b.berth().args(["run", "--no-new-keyring", "--bundle"]).arg(&b.dir).arg(&second).output().unwrap();
    assert!(out.status.success());
    assert!(!stdout(&out).contains(&format!("_ses.{second}")));
}
