//! Seccomp inside real containers: podman's default profile, argument conditions, exec'd
//! processes, the loading point with and without no_new_privileges, NOTIFY, bad profiles.

use std::io::IoSliceMut;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixListener;

use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
use runtime_tests::*;
use serde_json::json;

const DEFAULT_CAPS: [&str; 3] = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"];

/// The container may change its hostname (CAP_SYS_ADMIN in its own UTS namespace), but the
/// profile, resolved for the default capabilities, forbids sethostname: a refusal can only
/// come from the filter.
fn with_podman_profile(b: &mut Bundle) {
    let caps = json!(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_SYS_ADMIN"]);
    b.config["process"]["capabilities"] = json!({"bounding": caps, "effective": caps, "permitted": caps});
    b.config["linux"]["seccomp"] = podman_seccomp(&DEFAULT_CAPS);
}

const PROBE: &str = "grep '^Seccomp:' /proc/self/status; hostname changed 2>&1 || true; echo allowed-ok; linux32 true && echo personality-8-ok";

#[test]
fn podmans_default_profile_holds_in_the_container() {
    let mut b = Bundle::new("seccomp");
    with_podman_profile(&mut b);
    b.sh(PROBE);
    let out = b.run_ok();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "Seccomp:\t2");
    assert!(lines[1].contains("Operation not permitted"), "sethostname was not denied: {out}");
    assert_eq!(&lines[2..], ["allowed-ok", "personality-8-ok"]);

    // The same bundle without the filter: the hostname change goes through.
    let mut control = Bundle::new("noseccomp");
    with_podman_profile(&mut control);
    control.config["linux"].as_object_mut().unwrap().remove("seccomp");
    control.sh(PROBE);
    let out = control.run_ok();
    assert!(out.starts_with("Seccomp:\t0\nallowed-ok"), "{out}");
}

#[test]
fn argument_conditions_and_errno() {
    let mut b = Bundle::new("secargs");
    b.config["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["kill"], "action": "SCMP_ACT_ERRNO", "errnoRet": 95,
                      "args": [{"index": 1, "value": 10, "op": "SCMP_CMP_EQ"}]}]
    });
    b.sh("kill -0 $$ && echo signal-0-ok; kill -USR1 $$ 2>&1; echo done");
    let out = b.run_ok();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "signal-0-ok");
    assert!(lines[1].to_lowercase().contains("not supported"), "SIGUSR1 was not refused with EOPNOTSUPP: {out}");
    assert_eq!(lines[2], "done");
}

/// As runc: conditions of one entry that compare the same argument are alternatives (libseccomp
/// cannot AND them), and a syscall newer than every one the profile names gets ENOSYS, not the
/// default action, so programs fall back to older calls.
#[test]
fn same_argument_conditions_are_alternatives_and_unknown_syscalls_get_enosys() {
    let mut b = Bundle::new("secor");
    b.config["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["process_vm_readv"], "action": "SCMP_ACT_ERRNO", "errnoRet": 22,
                      "args": [{"index": 0, "value": 100, "op": "SCMP_CMP_EQ"},
                               {"index": 0, "value": 9001, "op": "SCMP_CMP_EQ"}]}]
    });
    b.install(&raw_syscall(), "/raw_syscall");
    // 310 is process_vm_readv on x86_64 (with nothing to copy it returns 0 when allowed).
    b.sh("/raw_syscall 310 100; /raw_syscall 310 9001; /raw_syscall 310 1");
    assert_eq!(b.run_ok(), "-22\n-22\n0\n");

    let mut b = Bundle::new("secenosys");
    with_podman_profile(&mut b);
    b.install(&raw_syscall(), "/raw_syscall");
    // 1000 is no syscall at all; the profile's default is EPERM.
    b.sh("/raw_syscall 1000");
    assert_eq!(b.run_ok(), "-38\n");
}

#[test]
fn exec_gets_the_containers_filter() {
    let mut b = Bundle::new("secexec");
    with_podman_profile(&mut b);
    b.sh("sleep 300");
    assert!(b.run_detached(&[]).status.success());
    let out = b.cmd(&["exec", &b.id, "sh", "-c", PROBE]);
    let text = stdout(&out);
    assert!(text.starts_with("Seccomp:\t2\n"), "{text}{}", stderr(&out));
    assert!(text.contains("Operation not permitted"), "{text}");
}

#[test]
fn filter_loads_with_and_without_no_new_privileges_for_an_unprivileged_user() {
    for nnp in [false, true] {
        let mut b = Bundle::new("secnnp");
        b.config["linux"]["seccomp"] = podman_seccomp(&[]);
        b.config["process"]["user"] = json!({"uid": 1000, "gid": 1000});
        b.config["process"]["capabilities"] = json!({});
        b.config["process"]["noNewPrivileges"] = json!(nnp);
        b.sh("grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status");
        let out = b.run_ok();
        assert_eq!(out, format!("NoNewPrivs:\t{}\nSeccomp:\t2\n", u8::from(nnp)), "nnp={nnp}");
    }
}

#[test]
fn malformed_profiles_fail_create_and_leave_nothing() {
    let cases = [
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO",
                "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]}),
            "index 6",
        ),
        (json!({"defaultAction": "SCMP_ACT_BOGUS"}), "SCMP_ACT_BOGUS"),
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO",
                "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_BOGUS"}]}]}),
            "SCMP_CMP_BOGUS",
        ),
    ];
    for (profile, needle) in cases {
        let mut b = Bundle::new("secbad");
        b.config["linux"]["seccomp"] = profile;
        let out = b.create();
        assert!(!out.status.success(), "{needle}: accepted");
        if !runtime_is_runc() {
            assert!(stderr(&out).contains(needle), "{needle}: {}", stderr(&out));
        }
        assert_eq!(stderr(&out).trim().lines().count(), 1, "{}", stderr(&out));
        b.assert_nothing_left();
    }
}

/// struct seccomp_notif (80 bytes) and struct seccomp_notif_resp (24 bytes).
#[repr(C)]
#[derive(Default)]
struct Notif {
    id: u64,
    pid: u32,
    flags: u32,
    nr: i32,
    arch: u32,
    ip: u64,
    args: [u64; 6],
}

#[repr(C)]
struct NotifResp {
    id: u64,
    val: i64,
    error: i32,
    flags: u32,
}

const SECCOMP_IOCTL_NOTIF_RECV: u64 = 0xc050_2100;
const SECCOMP_IOCTL_NOTIF_SEND: u64 = 0xc018_2101;

#[test]
fn notify_delivers_the_listener_which_answers_the_call() {
    let mut b = Bundle::new("secnotify");
    let sock = b.dir.join("listener.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    b.config["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "listenerPath": sock,
        "listenerMetadata": "test-metadata",
        "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]
    });
    b.sh("mkdir /tmp/x 2>&1; echo done");
    let id = b.id.clone();
    let agent = std::thread::spawn(move || {
        let (conn, _) = listener.accept().unwrap();
        let mut buf = [0u8; 8192];
        let mut iov = [IoSliceMut::new(&mut buf)];
        let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
        let msg = recvmsg::<()>(conn.as_raw_fd(), &mut iov, Some(&mut space), MsgFlags::empty()).unwrap();
        let mut fd = None;
        for c in msg.cmsgs().unwrap() {
            if let ControlMessageOwned::ScmRights(f) = c {
                // SAFETY: SCM_RIGHTS installed this fd in our table; we are its only owner.
                fd = Some(unsafe { OwnedFd::from_raw_fd(f[0]) });
            }
        }
        let n = msg.bytes;
        let state: serde_json::Value = serde_json::from_slice(&buf[..n]).unwrap();
        assert_eq!(state["fds"], json!(["seccompFd"]));
        assert_eq!(state["metadata"], "test-metadata");
        assert_eq!(state["state"]["id"], id.as_str());
        let fd = fd.expect("no listener fd");
        let mut req = Notif::default();
        // SAFETY: NOTIF_RECV fills the zeroed 80-byte struct `req`, which lives across the call.
        let r = unsafe { libc::ioctl(fd.as_raw_fd(), SECCOMP_IOCTL_NOTIF_RECV as _, &mut req as *mut Notif) };
        assert_eq!(r, 0, "NOTIF_RECV: {}", std::io::Error::last_os_error());
        assert_eq!(req.nr, 83, "not mkdir");
        let resp = NotifResp { id: req.id, val: 0, error: -libc::EXDEV, flags: 0 };
        // SAFETY: NOTIF_SEND reads the 24-byte `resp`, which lives across the call.
        let r = unsafe { libc::ioctl(fd.as_raw_fd(), SECCOMP_IOCTL_NOTIF_SEND as _, &resp as *const NotifResp) };
        assert_eq!(r, 0, "NOTIF_SEND: {}", std::io::Error::last_os_error());
    });
    let out = b.run_ok();
    agent.join().unwrap();
    assert!(out.contains("Invalid cross-device link"), "the listener's answer did not arrive: {out}");
    assert!(out.ends_with("done\n"));
}

/// A NOTIFY rule on a call the runtime needs to hand the listener over would wait for an agent
/// that cannot answer yet; runc refuses `write` and a NOTIFY default with the same words.
#[test]
fn notify_on_what_hands_over_the_listener_is_refused() {
    let cases = [
        (json!({"defaultAction": "SCMP_ACT_NOTIFY"}), "SCMP_ACT_NOTIFY cannot be used as default action"),
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["write"], "action": "SCMP_ACT_NOTIFY"}]}),
            "SCMP_ACT_NOTIFY cannot be used for the write syscall",
        ),
    ];
    for (mut profile, needle) in cases {
        let mut b = Bundle::new("secnotifybad");
        profile["listenerPath"] = json!(b.dir.join("agent.sock"));
        b.config["linux"]["seccomp"] = profile;
        b.sh("true");
        let out = b.create();
        assert!(!out.status.success(), "{needle}: accepted");
        assert!(stderr(&out).contains(needle), "{needle}: {}", stderr(&out));
        b.assert_nothing_left();
    }
}

/// Nothing berth does after loading the filter may be something the profile denies: profiles
/// without close_range or getcwd (older engines', runtime-tools') must work, with and without
/// no_new_privileges.
///
/// runtime.md: "The runtime MUST run the user-specified program, as specified by `process`";
/// runc 1.1.5 calls getcwd after loading the filter and fails.
#[test]
fn a_profile_denying_what_the_runtime_used_to_call_late_still_runs() {
    if runtime_is_runc() {
        return skip("deliberate difference: runc 1.1.5 calls getcwd under the container's filter and fails");
    }
    for nnp in [false, true] {
        let mut b = Bundle::new("seclate");
        b.config["linux"]["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["close_range", "getcwd"], "action": "SCMP_ACT_ERRNO"}]
        });
        b.config["process"]["noNewPrivileges"] = json!(nnp);
        b.sh("echo ran");
        assert_eq!(b.run_ok(), "ran\n", "nnp={nnp}");
    }
}

/// A NOTIFY rule on a call berth used to make between loading the filter and execve (getcwd)
/// made `create` wait for ever on an agent that had no listener yet. The agent here answers
/// every notification with EXDEV; the run must finish, and only the container's own getcwd
/// reaches it.
///
/// runc 1.1.5 makes that getcwd under the filter, and fails with the agent's answer.
#[test]
fn notify_on_getcwd_does_not_hang_create() {
    if runtime_is_runc() {
        return skip("deliberate difference: runc 1.1.5 calls getcwd under the container's filter, so the agent's answer fails it");
    }
    for nnp in [true, false] {
        let mut b = Bundle::new("secnotifycwd");
        let sock = b.dir.join("listener.sock");
        let listener = UnixListener::bind(&sock).unwrap();
        b.config["linux"]["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "listenerPath": sock,
            "syscalls": [{"names": ["getcwd"], "action": "SCMP_ACT_NOTIFY"}]
        });
        b.config["process"]["noNewPrivileges"] = json!(nnp);
        b.sh("pwd 2>&1; echo done");
        let agent = std::thread::spawn(move || {
            let (conn, _) = listener.accept().unwrap();
            let mut buf = [0u8; 8192];
            let mut iov = [IoSliceMut::new(&mut buf)];
            let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
            let msg = recvmsg::<()>(conn.as_raw_fd(), &mut iov, Some(&mut space), MsgFlags::empty()).unwrap();
            let mut fd = None;
            for c in msg.cmsgs().unwrap() {
                if let ControlMessageOwned::ScmRights(f) = c {
                    // SAFETY: SCM_RIGHTS installed this fd in our table; we are its only owner.
                    fd = Some(unsafe { OwnedFd::from_raw_fd(f[0]) });
                }
            }
            let fd = fd.expect("no listener fd");
            let mut answered = 0;
            loop {
                let mut req = Notif::default();
                // SAFETY: NOTIF_RECV fills the zeroed 80-byte struct `req`, which lives across the call.
                let r = unsafe { libc::ioctl(fd.as_raw_fd(), SECCOMP_IOCTL_NOTIF_RECV as _, &mut req as *mut Notif) };
                if r != 0 {
                    return answered;
                }
                let resp = NotifResp { id: req.id, val: 0, error: -libc::EXDEV, flags: 0 };
                // SAFETY: NOTIF_SEND reads the 24-byte `resp`, which lives across the call.
                unsafe { libc::ioctl(fd.as_raw_fd(), SECCOMP_IOCTL_NOTIF_SEND as _, &resp as *const NotifResp) };
                answered += 1;
            }
        });
        b.save();
        let out = std::process::Command::new("timeout")
            .arg("20")
            .arg(berth_bin())
            .arg("--root")
            .arg(&b.root)
            .args(["run", "--bundle"])
            .arg(&b.dir)
            .arg(&b.id)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        assert_ne!(out.status.code(), Some(124), "run hung (nnp={nnp})");
        assert!(out.status.success(), "nnp={nnp}: {}", stderr(&out));
        assert!(stdout(&out).ends_with("done\n"), "{}", stdout(&out));
        assert!(agent.join().unwrap() >= 1, "the container's own getcwd never reached the agent");
    }
}

/// Engines list every architecture their profile knows; one no process here can use (ARM,
/// PPC64LE on x86_64) is accepted, as runc accepts it, and the filter still holds. A big-endian
/// one (s390x, ppc64, mips) berth accepts too; runc 1.1.5 refuses it (libseccomp cannot put it
/// in one filter with x86_64: EDOM).
#[test]
fn foreign_architectures_in_a_profile_are_accepted() {
    let mut lists = vec![vec![
        "SCMP_ARCH_X86_64",
        "SCMP_ARCH_X86",
        "SCMP_ARCH_X32",
        "SCMP_ARCH_ARM",
        "SCMP_ARCH_AARCH64",
        "SCMP_ARCH_PPC64LE",
    ]];
    if runtime_is_runc() {
        skip("big-endian architectures (s390x) in a profile: deliberate difference, runc 1.1.5 refuses them (EDOM)");
    } else {
        lists.push(vec!["SCMP_ARCH_X86_64", "SCMP_ARCH_S390X", "SCMP_ARCH_PPC64"]);
    }
    for architectures in lists {
        let mut b = Bundle::new("secarch");
        b.config["linux"]["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": architectures,
            "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 18}]
        });
        b.sh("mkdir /tmp/x 2>&1; echo done");
        let out = b.run_ok();
        assert!(out.contains("Invalid cross-device link"), "{architectures:?}: the filter did not hold: {out}");
    }
}

#[test]
fn filter_flags_are_applied() {
    if berth_only("seccomp flags (runc 1.1.5 refuses them: \"seccomp flags are not yet supported by runc\")") {
        return;
    }
    let mut b = Bundle::new("secflags");
    b.config["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "flags": ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"],
        "syscalls": [{"names": ["swapon"], "action": "SCMP_ACT_LOG"}]
    });
    b.sh("grep '^Seccomp:' /proc/self/status");
    assert_eq!(b.run_ok(), "Seccomp:\t2\n");
}
