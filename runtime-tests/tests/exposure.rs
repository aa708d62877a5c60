//! What a container granted the capabilities engines hand out (CAP_SYS_PTRACE with
//! CAP_DAC_OVERRIDE, as `docker run --cap-add SYS_PTRACE` gives; every capability, as
//! `--privileged` gives) can reach of the runtime through /proc: no runtime process it can see
//! may expose the host's runtime binary as a writable file (CVE-2019-5736), a host root or
//! working directory, or a host directory fd. The attack program (attack/runtime_exposure.c)
//! watches every process of the container's pid namespace while the tests drive berth.

use std::path::Path;
use std::process::Stdio;
use std::sync::Mutex;

use runtime_tests::*;
use serde_json::json;

/// One attack at a time: the tests look at every runtime process a container can see, and a
/// write attempt on the runtime binary only succeeds while no runtime process runs it.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

const PTRACE: [&str; 2] = ["CAP_SYS_PTRACE", "CAP_DAC_OVERRIDE"];

/// Every capability, in the kernel's numbering.
const ALL_CAPS: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// A file only the host has, named as the attack program finds it: relative to the host's `/`,
/// and as a name in the directory berth is started from (the bundle directory).
struct Marker {
    host_rel: String,
    name: &'static str,
}

fn marker(b: &Bundle) -> Marker {
    let path = b.dir.join("HOST-MARKER");
    std::fs::write(&path, "host").unwrap();
    Marker { host_rel: path.to_str().unwrap().trim_start_matches('/').to_string(), name: "HOST-MARKER" }
}

/// The attack's verdict: its findings, and how many runtime executables it opened.
struct Report {
    findings: Vec<String>,
    captured: u32,
    sealed: u32,
}

fn report(text: &str) -> Report {
    let mut r = Report { findings: Vec::new(), captured: 0, sealed: 0 };
    for line in text.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["captured", n, "sealed", m] => {
                r.captured = n.parse().unwrap();
                r.sealed = m.parse().unwrap();
            }
            [] => {}
            _ => r.findings.push(line.to_string()),
        }
    }
    r
}

/// The runtime binary under test must be byte-for-byte what it was.
fn binary_digest() -> Vec<u8> {
    std::fs::read(berth_bin()).unwrap()
}

/// A running container whose process is the attack program, scanning every process of its
/// pid namespace; `stop` ends it and checks its verdict.
struct Scanner {
    bundle: Bundle,
    out: std::path::PathBuf,
    binary_before: Vec<u8>,
    _one: std::sync::MutexGuard<'static, ()>,
}

impl Scanner {
    fn start(name: &str, caps: &[&str]) -> Scanner {
        let one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        let binary_before = binary_digest();
        let mut b = Bundle::new(name);
        b.add_caps(caps);
        b.install(&attacker(), "/bin/attack");
        let m = marker(&b);
        b.config["process"]["args"] = json!(["/bin/attack", "scan", "120", m.host_rel, m.name]);
        b.save();
        let out = b.dir.join("attack.out");
        let mut run = b.berth();
        run.args(["run", "--detach", "--bundle"]).arg(&b.dir).arg(&b.id);
        run.stdout(std::fs::File::create(&out).unwrap()).stderr(Stdio::null());
        assert!(run.status().unwrap().success());
        Scanner { bundle: b, out, binary_before, _one: one }
    }

    /// No finding, at least one runtime process seen (else the test proved nothing), every
    /// runtime executable it opened sealed, and the binary unchanged.
    fn stop(self) {
        let b = &self.bundle;
        let out = b.cmd(&["exec", &b.id, "touch", "/dev/shm/stop"]);
        assert!(out.status.success(), "{}", stderr(&out));
        b.wait_status("stopped");
        let r = report(&std::fs::read_to_string(&self.out).unwrap());
        assert!(r.findings.is_empty(), "the container reached the host through a runtime process: {:?}", r.findings);
        assert!(r.captured > 0, "the attack never saw a runtime process: the test proves nothing");
        assert_eq!(r.captured, r.sealed);
        assert_eq!(binary_digest(), self.binary_before, "the runtime binary changed");
    }
}

/// The attack program watching for runtime processes while `execs` `exec ID true` run beside
/// it from the bundle directory.
fn attack_exec_children(name: &str, caps: &[&str], execs: usize) {
    let scanner = Scanner::start(name, caps);
    let b = &scanner.bundle;
    for i in 0..execs {
        let out = b.berth().current_dir(&b.dir).args(["exec", &b.id, "true"]).output().unwrap();
        assert!(out.status.success(), "exec {i}: {}", stderr(&out));
    }
    scanner.stop();
}

/// CVE-2019-5736 through `exec`, and the exec children's root, cwd and fds.
#[test]
fn exec_children_expose_nothing_to_a_ptrace_capable_container() {
    attack_exec_children("expose-exec", &PTRACE, 200);
}

/// Every capability this host's bounding set has (a host without CAP_SYS_RESOURCE cannot hand
/// it out, to any runtime).
#[test]
fn exec_children_expose_nothing_to_a_privileged_container() {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let bounding = u64::from_str_radix(&status_field(&status, "CapBnd"), 16).unwrap();
    let caps: Vec<&str> =
        ALL_CAPS.iter().enumerate().filter(|(n, _)| bounding & 1 << n != 0).map(|(_, c)| *c).collect();
    attack_exec_children("expose-priv", &caps, 60);
}

/// A pod's containers share one pid namespace (Kubernetes' shareProcessNamespace): containers
/// created into the pid namespace of a ptrace-capable one must not show it a runtime process
/// with the host's root, cwd or a host directory fd while they are set up. berth's init forks
/// into a joined pid namespace only after pivot_root, where procfs takes `pidns=` (Linux 6.17).
#[test]
fn inits_joining_a_pid_namespace_expose_nothing_to_it() {
    if berth_only("runc 1.1.5's init shows a joined pid namespace the host's root while it sets up") {
        return;
    }
    if !procfs_takes_pidns() {
        return skip(
            "this kernel's procfs has no pidns= option (Linux 6.17): berth's init joins a pid namespace at its clone",
        );
    }
    let scanner = Scanner::start("expose-pod", &PTRACE);
    let pod = &scanner.bundle;
    let pid_namespace = format!("/proc/{}/ns/pid", pod.state()["pid"]);
    let mut member = Bundle::new("expose-member");
    for ns in member.config["linux"]["namespaces"].as_array_mut().unwrap() {
        if ns["type"] == "pid" {
            ns["path"] = json!(pid_namespace);
        }
    }
    member.sh("tr '\\0' ' ' </proc/1/cmdline");
    member.save();
    for i in 0..40 {
        // Started from the directory that holds the marker: a host cwd would show it.
        let out = member
            .berth()
            .current_dir(&pod.dir)
            .args(["run", "--bundle"])
            .arg(&member.dir)
            .arg(&member.id)
            .output()
            .unwrap();
        assert!(out.status.success(), "run {i}: {}", stderr(&out));
        // Its /proc is the pod's: pid 1 there is the attack program.
        assert!(stdout(&out).starts_with("/bin/attack scan"), "run {i}: /proc/1 is {:?}", stdout(&out));
    }
    scanner.stop();
}

/// Whether this kernel's procfs takes `pidns=` (Linux 6.17): a mount over /proc in a
/// throwaway mount namespace (unshare makes its mounts private) tells.
fn procfs_takes_pidns() -> bool {
    std::process::Command::new("unshare")
        .args(["-m", "mount", "-t", "proc", "-o", "pidns=/proc/self/ns/pid", "proc", "/proc"])
        .status()
        .is_ok_and(|s| s.success())
}

/// A created container's init is still the runtime until `start`: a process exec'd into it
/// (with CAP_SYS_PTRACE) looks at it, holds its executable, and tries to write it once the
/// runtime has gone.
#[test]
fn created_init_exposes_nothing_to_a_ptrace_capable_exec() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let before = binary_digest();
    let mut b = Bundle::new("expose-created");
    b.add_caps(&PTRACE);
    b.install(&attacker(), "/bin/attack");
    let m = marker(&b);
    b.sh("sleep 2");
    let out = b.create();
    assert!(out.status.success(), "{}", stderr(&out));
    let out_path = b.dir.join("attack.out");
    let mut exec = b.berth();
    exec.current_dir(&b.dir).args(["exec", "--detach", &b.id, "/bin/attack", "pid", "1", "2", &m.host_rel, m.name]);
    exec.stdout(std::fs::File::create(&out_path).unwrap()).stderr(Stdio::null());
    assert!(exec.status().unwrap().success());
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(b.cmd(&["start", &b.id]).status.success());
    b.wait_status("stopped");
    let text = std::fs::read_to_string(&out_path).unwrap();
    let r = report(&text);
    assert!(r.findings.is_empty(), "the container reached the host through its init: {:?}", r.findings);
    assert_eq!((r.captured, r.sealed), (1, 1), "{text}");
    assert_eq!(binary_digest(), before, "the runtime binary changed");
}

/// The same container without CAP_SYS_PTRACE cannot open its init's executable at all, and
/// an exec that would grant CAP_SYS_PTRACE before `start` is refused: that init was not made
/// from a sealed copy. berth only: runc seals every init, berth only those that need it.
#[test]
fn ptrace_exec_into_a_created_container_is_refused_unless_its_init_is_sealed() {
    if runtime_is_runc() {
        return skip("berth only: runc re-executes every init from a sealed copy");
    }
    let mut b = Bundle::new("expose-refused");
    b.sh("true");
    assert!(b.create().status.success());
    let out = b.cmd(&["exec", "--cap", "CAP_SYS_PTRACE", &b.id, "true"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("CAP_SYS_PTRACE"), "{}", stderr(&out));
    let out = b.cmd(&["exec", &b.id, "true"]);
    assert!(out.status.success(), "{}", stderr(&out));
}

/// `--preserve-fds N` passes the caller's fds 3..3+N, never one of the runtime's own: with
/// fewer fds passed, berth refuses (runc hands its own fd over instead).
#[test]
fn preserve_fds_beyond_what_the_caller_passed_is_refused() {
    if runtime_is_runc() {
        return skip("deliberate difference: runc passes its own fd in the missing slot");
    }
    let mut b = Bundle::new("preserve-missing");
    b.sh("ls -l /proc/self/fd/");
    b.save();
    let out = b.berth().args(["run", "--preserve-fds", "2", "--bundle"]).arg(&b.dir).arg(&b.id).output().unwrap();
    assert!(!out.status.success(), "accepted: {}", stdout(&out));
    assert!(stderr(&out).contains("--preserve-fds"), "{}", stderr(&out));
    b.assert_nothing_left();
}

/// With `--no-pivot` the host's mounts stay in the container's mount namespace, under its
/// root: a fully visible procfs among them lets a user namespace mount a fresh, unmasked
/// /proc. They are hidden first.
#[test]
fn no_pivot_leaves_no_host_procfs_to_remount() {
    let mut b = Bundle::new("nopivot-proc");
    // CAP_SETFCAP lets the container map its root into a user namespace (docker grants it).
    b.add_caps(&["CAP_SETFCAP"]);
    b.sh("unshare -Urmpf sh -c 'mount -t proc proc /tmp && echo MOUNTED'; echo done");
    b.save();
    let out = b.berth().args(["run", "--no-pivot", "--bundle"]).arg(&b.dir).arg(&b.id).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("done"), "{text}");
    assert!(!text.contains("MOUNTED"), "a fresh procfs was mounted from inside: {text}");
}

/// procfs and sysfs are mounted on ordinary directories only: a rootfs whose /proc or /sys
/// is a symlink is refused, and nothing is created where the link points.
#[test]
fn proc_or_sys_as_a_symlink_in_the_rootfs_is_refused() {
    for dir in ["proc", "sys"] {
        let b = Bundle::new("procsymlink");
        let rootfs = b.dir.join("rootfs");
        std::fs::remove_dir(rootfs.join(dir)).unwrap();
        std::os::unix::fs::symlink("/symlink", rootfs.join(dir)).unwrap();
        let out = b.create();
        assert!(!out.status.success(), "/{dir} as a symlink was accepted");
        assert!(!rootfs.join("symlink").exists(), "the link's target was created");
        b.assert_nothing_left();
    }
}

/// A root.path that climbs out of the bundle to the host's own `/` is refused.
#[test]
fn root_path_at_the_host_root_is_refused() {
    let mut b = Bundle::new("rootclimb");
    let depth = b.dir.components().count();
    b.config["root"]["path"] = json!("../".repeat(depth));
    b.sh("true");
    let out = b.create();
    assert!(!out.status.success(), "the host's / was accepted as a rootfs");
    b.assert_nothing_left();
    assert!(Path::new("/proc/self").exists());
}
