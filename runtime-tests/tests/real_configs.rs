//! Real configs: every config.json and exec process.json in runtime-tests/configs — what runc,
//! crun, containerd (ctr and CRI), podman and docker wrote on a machine like this one (their
//! README says how) — runs under runc and under berth, and the two must agree on the exit
//! status and on what the process sees: uid/gids, the five capability sets, no_new_privs and
//! the seccomp mode, hostname and domainname, cwd, umask, environment, rlimits, oom_score_adj,
//! which namespaces it shares with the host (or with the namespaces it was told to join), its
//! cgroup, its mounts (/proc/self/mountinfo without ids, devices and source paths), /dev, and
//! the cgroup limits the host sees. Each config runs with its rootfs as a plain directory and
//! as a mount point (a bind mount of itself, as engines mount an image's layers).
//!
//! Only host-specific fields are rewritten (`adapt`): root.path; bind sources under the capture
//! machine's engine state dirs (files and directories made here, a shared mount where the
//! config asks for bidirectional propagation); namespace paths (a namespace holder made here);
//! cgroupsPath; docker's libnetwork prestart hook (a hook that reads its state and succeeds);
//! and process.args, replaced by the probe. A user namespace config gets its rootfs owned by
//! the mapped root, as engines hand it over. An exec process file runs as `exec --detach
//! --process` in its engine's exec base container (`exec_base`).
//!
//! Both runtimes' processes are children of this test process (a child subreaper), so their
//! exit status is read with waitpid; the limits are read while the container is created.

use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
use runtime_tests::*;
use serde_json::{json, Value};

const CONFIGS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/configs");

/// Configs runc itself cannot run on this host, and why. berth must refuse them as well; on a
/// host where runc runs one, the two are compared as any other.
const RUNC_FAILS_HERE: &[(&str, &str)] = &[
    ("docker-privileged.json", "docker adds capabilities this host's bounding set lacks (CAP_SYS_RESOURCE)"),
    ("podman-default-hostlimits.json", "RLIMIT_NOFILE 1048576 is above the hard limit, without CAP_SYS_RESOURCE"),
    ("crun-spec-rootless.json", "a user namespace without uid/gid mappings (crun adds them itself; runc refuses)"),
];

/// The container each exec process file was captured in.
fn exec_base(process_file: &str) -> &'static str {
    match process_file {
        f if f.starts_with("ctr-exec-") => "ctr-exec-base.json",
        "cri-exec-bidir-process.json" => "cri-container-bidirectional.json",
        f if f.starts_with("cri-exec") => "cri-container-default.json",
        f if f.starts_with("podman-exec-") => "podman-exec-base.json",
        f if f.starts_with("docker-exec-") => "docker-exec-base.json",
        f => panic!("{f}: no exec base container known for this process file"),
    }
}

/// What the process reports about itself. It runs as the container's process (`sh -c`), and
/// reads its own /proc/$$ with shell builtins where a child's view could differ (capabilities
/// are recomputed at execve).
const PROBE: &str = r#"show() { while IFS= read -r l || [ -n "$l" ]; do echo "$l"; done < "$1"; }
echo "== pid"; [ $$ = 1 ] && echo 1 || echo "not 1"
echo "== status"; while IFS= read -r l; do case "$l" in Uid:*|Gid:*|Groups:*|Cap*|NoNewPrivs:*|Seccomp:*) echo "$l";; esac; done < /proc/$$/status
echo "== uts"; show /proc/sys/kernel/hostname; show /proc/sys/kernel/domainname
echo "== cwd"; pwd
echo "== umask"; umask
echo "== env"; tr '\0' '\n' < /proc/$$/environ | sort
echo "== limits"; show /proc/$$/limits
echo "== oom_score_adj"; show /proc/$$/oom_score_adj
echo "== ns"; for n in cgroup ipc mnt net pid time user uts; do echo "$n $(readlink /proc/$$/ns/$n)"; done
echo "== cgroup"; show /proc/$$/cgroup
echo "== mountinfo"; show /proc/$$/mountinfo
echo "== dev"; stat -c '%N %F %a %u:%g %t:%T' /dev/* /dev/pts/* /dev/mqueue/* /dev/shm/* 2>&1
echo "== end""#;

static COUNTER: AtomicU32 = AtomicU32::new(0);

struct Runtime {
    name: &'static str,
    bin: PathBuf,
}

fn runtimes() -> [Runtime; 2] {
    [Runtime { name: "runc", bin: runc_bin() }, Runtime { name: "berth", bin: berth_bin() }]
}

/// Turns this test process into the reaper of the containers' orphaned processes, so that
/// their exit status can be collected.
fn become_subreaper() {
    // SAFETY: PR_SET_CHILD_SUBREAPER takes an integer flag and touches no memory.
    let r = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    assert_eq!(r, 0, "PR_SET_CHILD_SUBREAPER: {}", std::io::Error::last_os_error());
}

/// Waits up to 30 s for `pid` (a child of ours by now) and returns its wait status as text.
fn wait_exit(pid: i32) -> Option<String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut status = 0;
        // SAFETY: waitpid writes one int, which `status` is.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG | libc::__WALL) };
        if r == pid {
            return Some(if libc::WIFEXITED(status) {
                format!("exit {}", libc::WEXITSTATUS(status))
            } else {
                format!("signal {}", libc::WTERMSIG(status))
            });
        }
        if r < 0 {
            return Some(format!("not our child: {}", std::io::Error::last_os_error()));
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Processes in namespaces of their own, for configs that join namespaces by path: a pid
/// namespace's init with ipc, uts and network namespaces (CRI's pause container, podman's
/// netns). Killed by pid when dropped.
struct Holder {
    unshare: Child,
    pid: i32,
}

impl Holder {
    fn new() -> Holder {
        let mut unshare = Command::new("unshare")
            .args(["--ipc", "--uts", "--net", "--pid", "--fork", "--kill-child", "--", "sleep", "600"])
            .stdin(Stdio::null())
            .spawn()
            .expect("unshare (util-linux)");
        let children = format!("/proc/{0}/task/{0}/children", unshare.id());
        let mine = std::fs::read_link("/proc/self/ns/pid").unwrap();
        for _ in 0..500 {
            let pid = std::fs::read_to_string(&children).unwrap_or_default().trim().parse::<i32>().ok();
            if let Some(pid) = pid {
                if std::fs::read_link(format!("/proc/{pid}/ns/pid")).is_ok_and(|ns| ns != mine) {
                    return Holder { unshare, pid };
                }
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = unshare.kill();
        let _ = unshare.wait();
        panic!("the namespace holder did not start");
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        // unshare first: killed while it waits for its child, it has nothing left to report.
        let _ = self.unshare.kill();
        let _ = self.unshare.wait();
        // SAFETY: kill has no memory arguments; the pid is the holder's own (ours to reap now,
        // so it cannot have been reused).
        unsafe {
            libc::kill(self.pid, libc::SIGKILL);
        }
        let _ = wait_exit(self.pid);
    }
}

const NS_FILES: [(&str, &str); 8] = [
    ("cgroup", "cgroup"),
    ("ipc", "ipc"),
    ("mount", "mnt"),
    ("network", "net"),
    ("pid", "pid"),
    ("time", "time"),
    ("user", "user"),
    ("uts", "uts"),
];

/// One container of one config under one runtime: its bundle directory (rootfs, config.json,
/// the files its mounts need), state root and mounts, all removed when dropped.
struct World<'a> {
    runtime: &'a Runtime,
    dir: PathBuf,
    id: String,
    cgroups_path: Option<String>,
    mounts: Vec<PathBuf>,
    /// The exec base's init, ours to reap once `delete --force` has killed it.
    init: std::cell::Cell<Option<i32>>,
}

impl<'a> World<'a> {
    fn new(runtime: &'a Runtime, scratch: &Scratch) -> World<'a> {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let id = format!("cfg-{}-{}-{n}", runtime.name, std::process::id());
        let dir = scratch.0.join(&id);
        std::fs::create_dir_all(dir.join("files")).unwrap();
        make_rootfs(&dir.join("rootfs"));
        World { runtime, dir, id, cgroups_path: None, mounts: Vec::new(), init: Default::default() }
    }

    fn cmd(&self) -> Command {
        let mut cmd = Command::new(&self.runtime.bin);
        cmd.arg("--root").arg(self.dir.join("state"));
        cmd.stdin(Stdio::null());
        cmd
    }

    fn files(&self) -> WorldFiles {
        WorldFiles { dir: self.dir.clone() }
    }

    fn bind_onto_itself(&mut self, path: &Path, shared: bool) {
        let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: both strings are NUL-terminated paths that outlive the calls.
        unsafe {
            assert_eq!(
                libc::mount(c.as_ptr(), c.as_ptr(), std::ptr::null(), libc::MS_BIND, std::ptr::null()),
                0,
                "bind {path:?}: {}",
                std::io::Error::last_os_error()
            );
            self.mounts.push(path.to_path_buf());
            if shared {
                assert_eq!(
                    libc::mount(std::ptr::null(), c.as_ptr(), std::ptr::null(), libc::MS_SHARED, std::ptr::null()),
                    0
                );
            }
        }
    }

    /// Rewrites the host-specific fields of `config` for this machine (module doc).
    fn adapt(&mut self, config: &mut Value, holder: Option<&Holder>, rootfs_mounted: bool, probe: bool) {
        let rootfs = self.dir.join("rootfs");
        if config["root"]["path"].as_str().is_some_and(|p| p.starts_with('/')) {
            config["root"]["path"] = json!(rootfs);
        } else {
            config["root"]["path"] = json!("rootfs");
        }
        let hostname = config["hostname"].as_str().unwrap_or("box").to_string();
        let mut shared_sources = Vec::new();
        for (i, m) in config["mounts"].as_array_mut().unwrap().iter_mut().enumerate() {
            // docker's init is tini, built static: Debian's tini-static where docker.io is not
            // installed (scripts/setup installs tini).
            if m["source"] == "/usr/bin/docker-init" && !Path::new("/usr/bin/docker-init").exists() {
                m["source"] = json!("/usr/bin/tini-static");
            }
            let Some(source) = m["source"].as_str() else { continue };
            let options: Vec<&str> =
                m["options"].as_array().map(|o| o.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
            let bind = m["type"] == "bind" || options.iter().any(|o| *o == "bind" || *o == "rbind");
            let captured = source.starts_with("/var/lib/capture") || source.starts_with("/run/capcap");
            // A host path this machine has (/etc/hosts, /usr/bin/docker-init) is used as it is.
            let replace = bind && source.starts_with('/') && (captured || !Path::new(source).exists());
            if !replace {
                continue;
            }
            let dest = m["destination"].as_str().unwrap().to_string();
            let made = self.dir.join("files").join(format!("{i}{}", dest.replace('/', "_")));
            let file_content = match dest.as_str() {
                "/etc/hosts" => Some("127.0.0.1\tlocalhost\n".to_string()),
                "/etc/hostname" => Some(format!("{hostname}\n")),
                "/etc/resolv.conf" => Some("nameserver 127.0.0.1\n".to_string()),
                "/run/.containerenv" | "/dev/termination-log" => Some(String::new()),
                _ => None,
            };
            match file_content {
                Some(text) => std::fs::write(&made, text).unwrap(),
                None => {
                    std::fs::create_dir_all(&made).unwrap();
                    std::fs::write(made.join("f"), "from the host\n").unwrap();
                    if options.iter().any(|o| o.ends_with("shared")) {
                        shared_sources.push(made.clone());
                    }
                }
            }
            m["source"] = json!(made);
        }
        for s in shared_sources {
            self.bind_onto_itself(&s, true);
        }
        if config["linux"]["cgroupsPath"].is_string() {
            let path = format!("/{CGROUP_PREFIX}{}", self.id);
            config["linux"]["cgroupsPath"] = json!(path);
            self.cgroups_path = Some(path);
        }
        for ns in config["linux"]["namespaces"].as_array_mut().unwrap() {
            if ns["path"].as_str().is_some_and(|p| !p.is_empty()) {
                let holder = holder.expect("a config joins a namespace, but no holder");
                let file = NS_FILES.iter().find(|(t, _)| ns["type"] == *t).unwrap().1;
                ns["path"] = json!(format!("/proc/{}/ns/{file}", holder.pid));
            }
        }
        // docker's libnetwork-setkey (/proc/<dockerd>/exe): a hook that reads the state it is
        // given and succeeds.
        if let Some(hooks) = config["hooks"].as_object_mut() {
            for list in hooks.values_mut() {
                for hook in list.as_array_mut().unwrap() {
                    if hook["path"].as_str().is_some_and(|p| p.starts_with("/proc/")) {
                        *hook = json!({"path": "/bin/sh", "args": ["sh", "-c", "cat > /dev/null"]});
                    }
                }
            }
        }
        // An image handed to a user namespace is owned by its root (engines chown or idmap it).
        if let (Some(uid), Some(gid)) =
            (mapped_root(&config["linux"]["uidMappings"]), mapped_root(&config["linux"]["gidMappings"]))
        {
            chown_tree(&rootfs, uid, gid);
        }
        if probe {
            set_probe(&mut config["process"]);
        }
        if rootfs_mounted {
            self.bind_onto_itself(&rootfs, false);
        }
        std::fs::write(self.dir.join("config.json"), serde_json::to_vec_pretty(config).unwrap()).unwrap();
    }

    /// `create` (with a console socket for a terminal), the limits the host sees, `start`, and
    /// the process's exit status and output.
    fn run_config(&self, config: &Value) -> Seen {
        let terminal = config["process"]["terminal"] == true;
        let mut cmd = self.cmd();
        cmd.arg("create").arg("--bundle").arg(&self.dir).arg("--pid-file").arg(self.dir.join("init.pid"));
        let console = terminal.then(|| Console::new(&self.dir, &mut cmd));
        cmd.arg(&self.id);
        let files = self.files();
        let creating = std::thread::spawn(move || files.run_to_files(cmd, "create"));
        let master = console.and_then(|c| c.receive(|| creating.is_finished()));
        let (created, out_file, err_file) = creating.join().unwrap();
        if !created.status.success() {
            return Seen::failed("create", &created);
        }
        let pid: i32 = std::fs::read_to_string(self.dir.join("init.pid")).unwrap().trim().parse().unwrap();
        let limits = cgroup_limits(pid);
        if terminal && master.is_none() {
            return Seen::failed("create (no pty over the console socket)", &created);
        }
        let reader = master.map(|m| std::thread::spawn(move || read_all(m)));
        let started = self.cmd().args(["start", &self.id]).output().unwrap();
        if !started.status.success() {
            return Seen::failed("start", &started);
        }
        let exit = wait_exit(pid).unwrap_or_else(|| "still running after 30 s".into());
        let (stdout, stderr) = match reader {
            Some(r) => (r.join().unwrap(), String::new()),
            None => (std::fs::read_to_string(out_file).unwrap(), std::fs::read_to_string(err_file).unwrap()),
        };
        Seen { exit, stdout, stderr, limits }
    }

    /// Runs a base container (its own process, detached), then the process file in it with
    /// `exec --detach --process`.
    fn exec_process(&self, process: &Value) -> (Seen, Option<i32>) {
        let mut cmd = self.cmd();
        cmd.arg("run")
            .arg("--detach")
            .arg("--bundle")
            .arg(&self.dir)
            .arg("--pid-file")
            .arg(self.dir.join("init.pid"))
            .arg(&self.id);
        let (base, _, _) = self.files().run_to_files(cmd, "base");
        if !base.status.success() {
            return (Seen::failed("run --detach (the exec base)", &base), None);
        }
        let init: i32 = std::fs::read_to_string(self.dir.join("init.pid")).unwrap().trim().parse().unwrap();
        self.init.set(Some(init));
        let file = self.dir.join("process.json");
        std::fs::write(&file, process.to_string()).unwrap();
        let mut cmd = self.cmd();
        cmd.args(["exec", "--detach", "--pid-file"]).arg(self.dir.join("exec.pid")).arg("--process").arg(&file);
        let console = (process["terminal"] == true).then(|| Console::new(&self.dir, &mut cmd));
        cmd.arg(&self.id);
        let files = self.files();
        let execing = std::thread::spawn(move || files.run_to_files(cmd, "exec"));
        let master = console.and_then(|c| c.receive(|| execing.is_finished()));
        let (execed, out_file, err_file) = execing.join().unwrap();
        if !execed.status.success() {
            return (Seen::failed("exec", &execed), Some(init));
        }
        if process["terminal"] == true && master.is_none() {
            return (Seen::failed("exec (no pty over the console socket)", &execed), Some(init));
        }
        let pid: i32 = std::fs::read_to_string(self.dir.join("exec.pid")).unwrap().trim().parse().unwrap();
        let stdout = master.map(read_all);
        let exit = wait_exit(pid).unwrap_or_else(|| "still running after 30 s".into());
        let (stdout, stderr) = match stdout {
            Some(s) => (s, String::new()),
            None => (std::fs::read_to_string(out_file).unwrap(), std::fs::read_to_string(err_file).unwrap()),
        };
        (Seen { exit, stdout, stderr, limits: String::new() }, Some(init))
    }
}

impl Drop for World<'_> {
    fn drop(&mut self) {
        let _ = self.cmd().args(["delete", "--force", &self.id]).output();
        if let Some(pid) = self.init.get() {
            let _ = wait_exit(pid);
        }
        for m in self.mounts.iter().rev() {
            let c = std::ffi::CString::new(m.as_os_str().as_encoded_bytes()).unwrap();
            // SAFETY: a NUL-terminated path that outlives the call.
            unsafe {
                libc::umount2(c.as_ptr(), libc::MNT_DETACH);
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A tmpfs of its own for a test's bundles: the root filesystem here is slow to create and
/// remove thousands of small files on (measured: 16 times slower), and one unmount clears it.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Scratch {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("berth-rt-cfg-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let c = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: NUL-terminated strings that outlive the call.
        let r = unsafe {
            libc::mount(c"tmpfs".as_ptr(), c.as_ptr(), c"tmpfs".as_ptr(), 0, c"mode=755,size=512m".as_ptr().cast())
        };
        assert_eq!(r, 0, "tmpfs on {dir:?}: {}", std::io::Error::last_os_error());
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let c = std::ffi::CString::new(self.0.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a NUL-terminated path that outlives the call.
        unsafe {
            libc::umount2(c.as_ptr(), libc::MNT_DETACH);
        }
        let _ = std::fs::remove_dir(&self.0);
    }
}

/// The part of a World a helper thread needs to run a command to files.
struct WorldFiles {
    dir: PathBuf,
}

impl WorldFiles {
    fn run_to_files(&self, mut cmd: Command, tag: &str) -> (Output, PathBuf, PathBuf) {
        let out = self.dir.join(format!("{tag}.out"));
        let err = self.dir.join(format!("{tag}.err"));
        cmd.stdout(std::fs::File::create(&out).unwrap()).stderr(std::fs::File::create(&err).unwrap());
        let status = cmd.status().unwrap();
        let output = Output { status, stdout: std::fs::read(&out).unwrap(), stderr: std::fs::read(&err).unwrap() };
        (output, out, err)
    }
}

/// A console socket: one connection, one message with the pty's name and its master.
struct Console {
    listener: UnixListener,
}

impl Console {
    fn new(dir: &Path, cmd: &mut Command) -> Console {
        let path = dir.join(format!("console-{}.sock", COUNTER.fetch_add(1, Ordering::SeqCst)));
        let listener = UnixListener::bind(&path).unwrap();
        cmd.arg("--console-socket").arg(&path);
        Console { listener }
    }

    /// The pty master, or None when `gave_up` says the runtime finished without connecting
    /// (or after 30 s).
    fn receive(self, gave_up: impl Fn() -> bool) -> Option<OwnedFd> {
        self.listener.set_nonblocking(true).unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        let conn = loop {
            match self.listener.accept() {
                Ok((conn, _)) => break conn,
                Err(_) if gave_up() || Instant::now() > deadline => return None,
                Err(_) => std::thread::sleep(Duration::from_millis(5)),
            }
        };
        conn.set_nonblocking(false).unwrap();
        let mut buf = [0u8; 4096];
        let mut iov = [std::io::IoSliceMut::new(&mut buf)];
        let mut space = nix::cmsg_space!([std::os::fd::RawFd; 2]);
        let msg = recvmsg::<()>(conn.as_raw_fd(), &mut iov, Some(&mut space), MsgFlags::empty()).unwrap();
        let mut fds = Vec::new();
        for c in msg.cmsgs().unwrap() {
            if let ControlMessageOwned::ScmRights(f) = c {
                fds.extend(f);
            }
        }
        // SAFETY: SCM_RIGHTS installed these fds in our table; we are their only owner.
        let mut fds: Vec<OwnedFd> = fds.into_iter().map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }).collect();
        // A runtime that fails may connect and close without sending anything.
        assert!(fds.len() <= 1, "more than one fd over the console socket");
        fds.pop()
    }
}

/// Everything the pty's master reads until the last slave closes (or 30 s pass).
fn read_all(master: OwnedFd) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut file = std::fs::File::from(master);
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        let mut pfd = libc::pollfd { fd: file.as_raw_fd(), events: libc::POLLIN, revents: 0 };
        // SAFETY: poll reads and writes the one pollfd it is given.
        if unsafe { libc::poll(&mut pfd, 1, 100) } <= 0 {
            continue;
        }
        match file.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn mapped_root(mappings: &Value) -> Option<u32> {
    mappings.as_array()?.iter().find(|m| m["containerID"] == 0).and_then(|m| m["hostID"].as_u64()).map(|h| h as u32)
}

fn chown_tree(dir: &Path, uid: u32, gid: u32) {
    std::os::unix::fs::lchown(dir, Some(uid), Some(gid)).unwrap();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        std::os::unix::fs::lchown(&p, Some(uid), Some(gid)).unwrap();
        if std::fs::symlink_metadata(&p).unwrap().is_dir() {
            chown_tree(&p, uid, gid);
        }
    }
}

/// process.args = the probe, behind an init the config runs its process under (docker --init).
fn set_probe(process: &mut Value) {
    let args = process["args"].as_array().cloned().unwrap_or_default();
    let mut new = Vec::new();
    if let Some(dash) = args.iter().position(|a| a == "--") {
        if args[0].as_str().is_some_and(|a| a.ends_with("docker-init") || a.ends_with("tini")) {
            new.extend_from_slice(&args[..=dash]);
        }
    }
    new.extend([json!("sh"), json!("-c"), json!(PROBE)]);
    process["args"] = json!(new);
}

/// The limits the host sees in the cgroups of `pid`, one "controller file value" line each.
fn cgroup_limits(pid: i32) -> String {
    let cgroups = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
    let path_of = |controller: &str| {
        cgroups.lines().find_map(|l| {
            let mut parts = l.splitn(3, ':');
            let (_, ctrls, path) = (parts.next()?, parts.next()?, parts.next()?);
            ctrls.split(',').any(|c| c == controller).then(|| path.to_string())
        })
    };
    let files: [(&str, &[&str]); 6] = [
        (
            "memory",
            &[
                "memory.limit_in_bytes",
                "memory.memsw.limit_in_bytes",
                "memory.soft_limit_in_bytes",
                "memory.swappiness",
                "memory.oom_control",
            ],
        ),
        ("pids", &["pids.max"]),
        ("cpu", &["cpu.shares", "cpu.cfs_quota_us", "cpu.cfs_period_us", "cpu.rt_runtime_us"]),
        ("cpuset", &["cpuset.cpus", "cpuset.mems"]),
        ("blkio", &["blkio.weight", "blkio.bfq.weight"]),
        ("devices", &["devices.list"]),
    ];
    let mut out = String::new();
    for (controller, names) in files {
        let Some(path) = path_of(controller) else {
            out.push_str(&format!("{controller}: no cgroup\n"));
            continue;
        };
        for name in names {
            let file = Path::new("/sys/fs/cgroup").join(controller).join(path.trim_start_matches('/')).join(name);
            let Ok(text) = std::fs::read_to_string(&file) else { continue };
            let mut lines: Vec<&str> = text.lines().filter(|l| !l.starts_with("under_oom")).collect();
            // An allow list is a set: the order rules were written in does not change it.
            if *name == "devices.list" {
                lines.sort();
            }
            for l in lines {
                out.push_str(&format!("{name} {l}\n"));
            }
        }
    }
    out
}

/// What one runtime's run of a config showed.
struct Seen {
    exit: String,
    stdout: String,
    stderr: String,
    limits: String,
}

impl Seen {
    fn failed(step: &str, out: &Output) -> Seen {
        Seen {
            exit: format!("{step} failed ({})", out.status),
            stdout: String::new(),
            stderr: stderr(out).trim().to_string(),
            limits: String::new(),
        }
    }

    fn ran(&self) -> bool {
        !self.exit.contains("failed")
    }
}

/// The probe's output in a form that does not depend on ids, paths or the runtime's name: the
/// namespaces as whose they are, mountinfo as "mount point, options, propagation - fstype,
/// super options", the container's cgroup (its cgroupsPath, or the runtime's default path,
/// which ends in the container's id) as <container cgroup>.
fn normalize(text: &str, ns_owners: &[(String, &str)], cgroups_path: Option<&str>, id: &str) -> String {
    let mut section = "";
    let mut out = String::new();
    for line in text.replace("\r\n", "\n").lines() {
        if let Some(name) = line.strip_prefix("== ") {
            section = if name.starts_with("end") { "end" } else { name };
            out.push_str(line);
            out.push('\n');
            continue;
        }
        let line = match section {
            "ns" => {
                let (kind, link) = line.split_once(' ').unwrap_or((line, ""));
                let whose = ns_owners
                    .iter()
                    .find(|(l, _)| l == link)
                    .map(|(_, who)| *who)
                    .unwrap_or(if link.is_empty() { "none" } else { "its own" });
                format!("{kind} {whose}")
            }
            "mountinfo" => {
                let (left, right) = line.split_once(" - ").unwrap_or((line, ""));
                let left: Vec<&str> = left.split(' ').collect();
                let tags: Vec<&str> = left.iter().skip(6).map(|t| t.split(':').next().unwrap()).collect();
                let right: Vec<&str> = right.split(' ').collect();
                format!(
                    "{} {} [{}] - {} {}",
                    left.get(4).unwrap_or(&"?"),
                    left.get(5).unwrap_or(&"?"),
                    tags.join(" "),
                    right.first().unwrap_or(&"?"),
                    right.get(2).unwrap_or(&"?")
                )
            }
            "cgroup" => {
                let mut parts: Vec<&str> = line.splitn(3, ':').collect();
                let own = parts.get(2).is_some_and(|p| Some(*p) == cgroups_path || p.ends_with(&format!("/{id}")));
                if own {
                    parts[2] = "<container cgroup>";
                }
                parts.join(":")
            }
            _ => line.to_string(),
        };
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// What berth shows on purpose where runc 1.1.5 shows something else (README, "Differences
/// from runc"), as an edit of runc's normalized probe output; returns the edited text and the
/// differences it applied.
///
/// - A cgroup mount's "ro" holds for its tmpfs at /sys/fs/cgroup too (runc leaves that rw).
/// - On a hybrid host the container's own cgroup2 directory is bound at /sys/fs/cgroup/unified
///   beside the v1 hierarchies, as the host has it (runc 1.1.5 leaves it out).
/// - rootfsPropagation shared/rshared makes the root (and, recursively, what is mounted on it)
///   shared (runc 1.1.5 ignores it: opencontainers/runc#1755).
fn expected_of_berth(config: &Value, runc: &str) -> (String, Vec<&'static str>) {
    let cgroup_mount = config["mounts"]
        .as_array()
        .and_then(|m| m.iter().find(|m| m["type"] == "cgroup" && m["destination"] == "/sys/fs/cgroup"));
    let cgroup_ro = cgroup_mount.and_then(|m| m["options"].as_array()).is_some_and(|o| o.iter().any(|o| o == "ro"));
    let hybrid = Path::new("/sys/fs/cgroup/unified/cgroup.procs").exists();
    let shared_root = matches!(config["linux"]["rootfsPropagation"].as_str(), Some("shared" | "rshared"));
    let mount_point = |l: &str| l.split(' ').next().unwrap_or("").to_string();
    let mut applied = Vec::new();
    let mut lines: Vec<String> = runc.lines().map(String::from).collect();
    let Some(begin) = lines.iter().position(|l| l == "== mountinfo") else {
        return (runc.to_string(), applied);
    };
    let end =
        begin + 1 + lines[begin + 1..].iter().position(|l| l.starts_with("== ")).unwrap_or(lines.len() - begin - 1);
    if shared_root {
        for line in &mut lines[begin + 1..end] {
            if line.contains(" [] - ") {
                *line = line.replacen(" [] - ", " [shared] - ", 1);
                applied.push("rootfsPropagation shared");
            }
        }
    }
    // The config's cgroup mount is the last tmpfs at /sys/fs/cgroup (an rbind of the host's
    // /sys brings the host's own before it), followed by its hierarchies.
    let tmpfs =
        (begin + 1..end).rev().find(|&i| mount_point(&lines[i]) == "/sys/fs/cgroup" && lines[i].contains(" - tmpfs "));
    if let (Some(_), Some(t)) = (cgroup_mount, tmpfs) {
        if cgroup_ro && lines[t].contains(" - tmpfs rw") {
            lines[t] = lines[t].replacen("/sys/fs/cgroup rw,", "/sys/fs/cgroup ro,", 1).replacen(
                " - tmpfs rw",
                " - tmpfs ro",
                1,
            );
            applied.push("the cgroup mount's ro holds for its tmpfs");
        }
        let mut last = t;
        while last + 1 < end && mount_point(&lines[last + 1]).starts_with("/sys/fs/cgroup/") {
            last += 1;
        }
        let has_unified = (t..=last).any(|i| mount_point(&lines[i]) == "/sys/fs/cgroup/unified");
        if hybrid && last > t && !has_unified {
            let options = lines[last].split(' ').nth(1).unwrap_or("").to_string();
            let tags = lines[last].split_once('[').and_then(|(_, r)| r.split_once(']')).map(|(t, _)| t.to_string());
            let line = format!("/sys/fs/cgroup/unified {options} [{}] - cgroup2 rw", tags.unwrap_or_default());
            lines.insert(last + 1, line);
            applied.push("cgroup2 at /sys/fs/cgroup/unified");
        }
    }
    // In a user namespace the IPC namespace, and with it the /dev/mqueue filesystem, is made
    // by the container's root in berth (owned 0:0); runc makes it after setting its uid but
    // not yet its gid (0:65534).
    for line in &mut lines {
        if line.contains("/dev/mqueue") && line.contains(" directory ") && line.contains(" 0:65534 ") {
            *line = line.replacen(" 0:65534 ", " 0:0 ", 1);
            applied.push("/dev/mqueue belongs to the user namespace's root");
        }
    }
    applied.dedup();
    (lines.join("\n") + "\n", applied)
}

/// Whose namespaces these are: the host's (this test's), the holder's, or the exec base's init.
fn ns_owners(holder: Option<&Holder>, init: Option<i32>) -> Vec<(String, &'static str)> {
    let mut owners = Vec::new();
    let mut add = |pid: String, who: &'static str| {
        for (_, file) in NS_FILES {
            if let Ok(link) = std::fs::read_link(format!("/proc/{pid}/ns/{file}")) {
                owners.push((link.display().to_string(), who));
            }
        }
    };
    if let Some(pid) = init {
        add(pid.to_string(), "the container's");
    }
    if let Some(h) = holder {
        add(h.pid.to_string(), "the holder's");
    }
    add("self".into(), "the host's");
    owners
}

/// A line-level account of how two texts differ.
fn diff(a: &str, b: &str) -> String {
    let (la, lb): (Vec<&str>, Vec<&str>) = (a.lines().collect(), b.lines().collect());
    let only_a: Vec<&str> = la.iter().copied().filter(|l| !lb.contains(l)).collect();
    let only_b: Vec<&str> = lb.iter().copied().filter(|l| !la.contains(l)).collect();
    if only_a.is_empty() && only_b.is_empty() {
        return format!("same lines, in another order:\nrunc:\n{a}\nberth:\n{b}");
    }
    let mut s = String::new();
    for l in only_a {
        s.push_str(&format!("  runc:  {l}\n"));
    }
    for l in only_b {
        s.push_str(&format!("  berth: {l}\n"));
    }
    s
}

/// Runs `file` (a config, or an exec process file in its base) under runc and under berth,
/// with the rootfs as a plain directory and as a mount point, and returns every difference.
fn compare(file: &str) -> Vec<String> {
    require_root();
    become_subreaper();
    let text = std::fs::read_to_string(Path::new(CONFIGS).join(file)).unwrap();
    let original: Value = serde_json::from_str(&text).unwrap();
    let is_process = original.get("ociVersion").is_none();
    let base_file = if is_process { exec_base(file) } else { file };
    let base: Value = if is_process {
        serde_json::from_str(&std::fs::read_to_string(Path::new(CONFIGS).join(base_file)).unwrap()).unwrap()
    } else {
        original.clone()
    };
    let joins = base["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .any(|n| n["path"].as_str().is_some_and(|p| !p.is_empty()));
    let holder = joins.then(Holder::new);
    let scratch = Scratch::new();
    let expected_failure = RUNC_FAILS_HERE.iter().find(|(f, _)| *f == base_file).map(|(_, why)| *why);
    let runtimes = runtimes();
    let mut differences = Vec::new();
    for rootfs_mounted in [false, true] {
        let mode = if rootfs_mounted { "rootfs a mount point" } else { "rootfs a plain directory" };
        let mut seen = Vec::new();
        let mut worlds = Vec::new();
        for rt in &runtimes {
            let mut world = World::new(rt, &scratch);
            let mut config = base.clone();
            world.adapt(&mut config, holder.as_ref(), rootfs_mounted, !is_process);
            let (result, init) = if is_process {
                let mut process = original.clone();
                set_probe(&mut process);
                world.exec_process(&process)
            } else {
                (world.run_config(&config), None)
            };
            let owners = ns_owners(holder.as_ref(), init);
            let stdout = normalize(&result.stdout, &owners, world.cgroups_path.as_deref(), &world.id);
            seen.push(Seen { stdout, ..result });
            worlds.push(world);
        }
        drop(worlds);
        let (runc, berth) = (&seen[0], &seen[1]);
        eprintln!("{file} ({mode}): runc {}, berth {}", runc.exit, berth.exit);
        match expected_failure {
            Some(why) if !runc.ran() => {
                eprintln!("  runc cannot run it here ({why}): {}", runc.stderr);
                if berth.ran() {
                    differences.push(format!("{file} ({mode}): runc refuses it ({}), berth ran it: {}", runc.stderr, berth.exit));
                } else {
                    eprintln!("  berth refuses it too: {}", berth.stderr);
                }
                continue;
            }
            None => assert!(
                runc.ran(),
                "{file} ({mode}): runc itself failed on it here: {}\n(if that is this host's doing, list it in RUNC_FAILS_HERE)",
                runc.stderr
            ),
            _ => {}
        }
        if !berth.ran() {
            differences.push(format!(
                "{file} ({mode}): runc ran it ({}), berth failed: {} {}",
                runc.exit, berth.exit, berth.stderr
            ));
            continue;
        }
        if std::env::var_os("REAL_CONFIGS_SHOW").is_some() {
            eprintln!(
                "--- runc ({mode}):\n{}{}\n--- berth ({mode}):\n{}{}",
                runc.stdout, runc.stderr, berth.stdout, berth.stderr
            );
        }
        let (expected, applied) = expected_of_berth(&base, &runc.stdout);
        if !applied.is_empty() {
            eprintln!("  deliberate differences expected: {}", applied.join("; "));
        }
        for (what, a, b) in [
            ("exit status", &runc.exit, &berth.exit),
            ("probe output", &expected, &berth.stdout),
            ("stderr", &runc.stderr, &berth.stderr),
            ("cgroup limits", &runc.limits, &berth.limits),
        ] {
            if a != b {
                differences.push(format!("{file} ({mode}): {what} differs:\n{}", diff(a, b)));
            }
        }
        assert!(
            runc.stdout.contains("== end"),
            "{file} ({mode}): the probe did not finish under runc:\n{}{}",
            runc.stdout,
            runc.stderr
        );
    }
    differences
}

fn check(file: &str) {
    if runtime_is_runc() {
        return skip("compares berth with runc: with runc as the runtime under test it would compare runc with itself");
    }
    let differences = compare(file);
    assert!(differences.is_empty(), "berth differs from runc:\n{}", differences.join("\n"));
}

macro_rules! real_configs {
    ($($name:ident => $file:literal),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                check($file);
            }
        )*

        /// Every file in configs/ has its test above.
        #[test]
        fn every_captured_config_is_compared() {
            let listed = [$($file),*];
            for e in std::fs::read_dir(CONFIGS).unwrap() {
                let name = e.unwrap().file_name().into_string().unwrap();
                if name.ends_with(".json") {
                    assert!(listed.contains(&name.as_str()), "{name} has no test in real_configs.rs");
                }
            }
        }
    };
}

real_configs! {
    cri_container_bidirectional => "cri-container-bidirectional.json",
    cri_container_default => "cri-container-default.json",
    cri_container_privileged => "cri-container-privileged.json",
    cri_exec_bidir_process => "cri-exec-bidir-process.json",
    cri_exec_process => "cri-exec-process.json",
    cri_execsync_process => "cri-execsync-process.json",
    cri_sandbox_privileged => "cri-sandbox-privileged.json",
    cri_sandbox => "cri-sandbox.json",
    crun_spec_rootless => "crun-spec-rootless.json",
    crun_spec => "crun-spec.json",
    ctr_cap_add => "ctr-cap-add.json",
    ctr_cpus => "ctr-cpus.json",
    ctr_env_cwd => "ctr-env-cwd.json",
    ctr_exec_base => "ctr-exec-base.json",
    ctr_exec_process => "ctr-exec-process.json",
    ctr_exec_tty_process => "ctr-exec-tty-process.json",
    ctr_exec_user_cwd_process => "ctr-exec-user-cwd-process.json",
    ctr_memory_limit => "ctr-memory-limit.json",
    ctr_mount_bind => "ctr-mount-bind.json",
    ctr_net_host => "ctr-net-host.json",
    ctr_plain => "ctr-plain.json",
    ctr_privileged => "ctr-privileged.json",
    ctr_read_only => "ctr-read-only.json",
    ctr_seccomp => "ctr-seccomp.json",
    ctr_tty => "ctr-tty.json",
    ctr_uidmap => "ctr-uidmap.json",
    docker_default => "docker-default.json",
    docker_exec_base => "docker-exec-base.json",
    docker_exec_it_process => "docker-exec-it-process.json",
    docker_exec_process => "docker-exec-process.json",
    docker_exec_user_process => "docker-exec-user-process.json",
    docker_init => "docker-init.json",
    docker_memory => "docker-memory.json",
    docker_network_none => "docker-network-none.json",
    docker_privileged => "docker-privileged.json",
    docker_tmpfs => "docker-tmpfs.json",
    docker_user_read_only => "docker-user-read-only.json",
    docker_volume => "docker-volume.json",
    podman_cap_drop_all => "podman-cap-drop-all.json",
    podman_default_hostlimits => "podman-default-hostlimits.json",
    podman_default => "podman-default.json",
    podman_exec_base => "podman-exec-base.json",
    podman_exec_it_process => "podman-exec-it-process.json",
    podman_exec_privileged_process => "podman-exec-privileged-process.json",
    podman_exec_process => "podman-exec-process.json",
    podman_exec_user_process => "podman-exec-user-process.json",
    podman_it => "podman-it.json",
    podman_memory => "podman-memory.json",
    podman_pids_limit => "podman-pids-limit.json",
    podman_privileged => "podman-privileged.json",
    podman_read_only => "podman-read-only.json",
    podman_seccomp_unconfined => "podman-seccomp-unconfined.json",
    podman_uidmap => "podman-uidmap.json",
    podman_user => "podman-user.json",
    podman_volume => "podman-volume.json",
    runc_spec_rootless => "runc-spec-rootless.json",
    runc_spec => "runc-spec.json",
}
