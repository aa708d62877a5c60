//! The harness for runtime tests: each test gets a bundle of its own (a busybox rootfs, a
//! config.json from `berth spec`), a state root of its own, and a container id of its own, and
//! drives the real berth binary. Dropping the bundle force-deletes the container and removes
//! every file the test made.
//!
//! The binary is $BERTH_BIN, which may be another runtime (runc as the oracle). With
//! $BERTH_TEST_SYSTEMD_CGROUP=1 every command gets the global `--systemd-cgroup` and every
//! bundle a cgroupsPath in systemd's `slice:prefix:name` form, as engines on systemd hosts do.

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use serde_json::{json, Value};

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// The berth binary under test: $BERTH_BIN, else the workspace's release build, else debug.
pub fn berth_bin() -> PathBuf {
    if let Ok(p) = std::env::var("BERTH_BIN") {
        return PathBuf::from(p);
    }
    let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target");
    for profile in ["release", "debug"] {
        let p = target.join(profile).join("berth");
        if p.exists() {
            return p;
        }
    }
    panic!("no berth binary: build it first or set BERTH_BIN");
}

/// Whether the runtime under test is runc (scripts/test runs the suite on runc too, as the
/// oracle for behaviour the two share).
pub fn runtime_is_runc() -> bool {
    berth_bin().file_name().is_some_and(|n| n.to_string_lossy().starts_with("runc"))
}

/// The runc binary the real-configs comparison runs beside berth: $RUNC_BIN, else /usr/sbin/runc.
pub fn runc_bin() -> PathBuf {
    std::env::var_os("RUNC_BIN").map(PathBuf::from).unwrap_or_else(|| "/usr/sbin/runc".into())
}

/// Records that a test (or one case of it, named in the reason) does not apply to this
/// runtime, saying why: a berth-only feature or a deliberate difference (README, "Differences
/// from runc"). The caller returns, or goes on without that case. The reason is printed, and
/// appended to $RUNTIME_TESTS_SKIPPED when set, so the suite's summary lists every skip.
pub fn skip(reason: &str) {
    let test = std::thread::current().name().unwrap_or("?").to_string();
    eprintln!("skipped {test}: {reason}");
    if let Ok(log) = std::env::var("RUNTIME_TESTS_SKIPPED") {
        use std::io::Write;
        if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(log) {
            let _ = writeln!(f, "{test}: {reason}");
        }
    }
}

/// For a test of something runc 1.1.5 does not have: on runc, records the skip ("berth only:
/// WHAT") and returns true, so the test returns.
pub fn berth_only(what: &str) -> bool {
    if runtime_is_runc() {
        skip(&format!("berth only: {what}"));
        return true;
    }
    false
}

fn busybox() -> PathBuf {
    for p in ["/bin/busybox", "/usr/bin/busybox"] {
        if Path::new(p).exists() {
            return p.into();
        }
    }
    panic!("busybox is missing: run scripts/setup (Debian package busybox-static)");
}

/// Whether the runtime under test is berth (runc and others answer `--version` with their name).
pub fn runtime_is_berth() -> bool {
    static IS_BERTH: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *IS_BERTH.get_or_init(|| {
        let out = Command::new(berth_bin()).arg("--version").output().expect("run the runtime's --version");
        String::from_utf8_lossy(&out.stdout).starts_with("berth ")
    })
}

/// $BERTH_TEST_SYSTEMD_CGROUP: drive the runtime's systemd cgroup driver.
pub fn systemd_cgroup() -> bool {
    std::env::var("BERTH_TEST_SYSTEMD_CGROUP").is_ok_and(|v| !v.is_empty() && v != "0")
}

/// Whether the host has only the unified hierarchy (cgroup v2), as booted systemd hosts do.
pub fn pure_v2() -> bool {
    Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}

/// Where the cgroup2 hierarchy is mounted: /sys/fs/cgroup on a pure v2 host, /sys/fs/cgroup/unified
/// on a hybrid one (None without one).
pub fn cgroup2_mount() -> Option<PathBuf> {
    ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.join("cgroup.procs").exists() && p.join("cgroup.controllers").exists())
}

/// A container's cgroup relative to a hierarchy's root, from its `linux.cgroupsPath` as the
/// runtime reads it: absolute as it is; systemd's `slice:prefix:name` as the unit the systemd
/// driver makes (`<prefix>-<name>.scope` in the slice, `a-b.slice` nested in `a.slice`); none at
/// all as berth's default, `/berth/<id>`.
pub fn cgroup_path(cgroups_path: Option<&str>, id: &str) -> PathBuf {
    let wanted = cgroups_path.filter(|p| !p.is_empty()).unwrap_or("");
    if wanted.is_empty() {
        return Path::new("berth").join(id);
    }
    if let Some(path) = wanted.strip_prefix('/') {
        return PathBuf::from(path);
    }
    let parts: Vec<&str> = wanted.split(':').collect();
    assert!(
        parts.len() == 3,
        "cgroupsPath {wanted:?} is relative: runtimes resolve those differently, give an absolute one"
    );
    let (slice, prefix, name) = (parts[0], parts[1], parts[2]);
    let mut path = PathBuf::new();
    let slice = if slice.is_empty() { "system.slice" } else { slice };
    if slice != "-.slice" {
        let stem = slice.strip_suffix(".slice").expect("a slice name ends in .slice");
        let mut so_far = String::new();
        for part in stem.split('-') {
            so_far = if so_far.is_empty() { part.to_string() } else { format!("{so_far}-{part}") };
            path.push(format!("{so_far}.slice"));
        }
    }
    if name.ends_with(".slice") {
        path.push(name);
    } else if prefix.is_empty() {
        path.push(format!("{name}.scope"));
    } else {
        path.push(format!("{prefix}-{name}.scope"));
    }
    path
}

pub fn require_root() {
    assert!(nix_is_root(), "runtime tests run as root: they create namespaces, mounts and cgroups");
}

fn nix_is_root() -> bool {
    // SAFETY: getuid has no arguments and cannot fail.
    unsafe { libc::getuid() == 0 }
}

/// A busybox root filesystem: /bin with every applet, and the directories mounts expect.
pub fn make_rootfs(dir: &Path) {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::copy(busybox(), bin.join("busybox")).unwrap();
    let list = Command::new(busybox()).arg("--list").output().unwrap();
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        if applet != "busybox" {
            let _ = symlink("busybox", bin.join(applet));
        }
    }
    for d in ["proc", "sys", "dev", "etc", "tmp", "root"] {
        std::fs::create_dir_all(dir.join(d)).unwrap();
    }
    std::fs::write(dir.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
    std::fs::write(dir.join("etc/group"), "root:x:0:\n").unwrap();
}

/// Every test container's cgroup is /sys/fs/cgroup/<controller>/berth-rt-<id> (scripts/test
/// checks that none is left).
pub const CGROUP_PREFIX: &str = "berth-rt-";

pub struct Bundle {
    pub dir: PathBuf,
    pub root: PathBuf,
    pub id: String,
    pub config: Value,
}

impl Bundle {
    pub fn new(name: &str) -> Bundle {
        require_root();
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let id = format!("{name}-{}-{n}", std::process::id());
        let dir = std::env::temp_dir().join(format!("berth-rt-{id}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        make_rootfs(&dir.join("rootfs"));
        let out = Command::new(berth_bin()).args(["spec", "--bundle"]).arg(&dir).output().unwrap();
        assert!(out.status.success(), "berth spec: {}", String::from_utf8_lossy(&out.stderr));
        let mut config: Value = serde_json::from_slice(&std::fs::read(dir.join("config.json")).unwrap()).unwrap();
        config["process"]["terminal"] = json!(false);
        if systemd_cgroup() {
            config["linux"]["cgroupsPath"] = json!(format!("system.slice:berth-rt:{id}"));
        } else {
            // A cgroup path both runtimes honour (their defaults differ: berth's is /berth/<id>,
            // runc's /<id>), one level deep so that nothing shared is left to remove.
            config["linux"]["cgroupsPath"] = json!(format!("/{CGROUP_PREFIX}{id}"));
        }
        let root = dir.join("state");
        Bundle { dir, root, id, config }
    }

    /// process.args = sh -c SCRIPT
    pub fn sh(&mut self, script: &str) -> &mut Self {
        self.config["process"]["args"] = json!(["sh", "-c", script]);
        self
    }

    pub fn save(&self) {
        std::fs::write(self.dir.join("config.json"), serde_json::to_vec_pretty(&self.config).unwrap()).unwrap();
    }

    pub fn berth(&self) -> Command {
        let mut cmd = Command::new(berth_bin());
        if systemd_cgroup() {
            cmd.arg("--systemd-cgroup");
        }
        cmd.arg("--root").arg(&self.root);
        cmd.stdin(Stdio::null());
        cmd
    }

    /// berth --root R ARGS...
    pub fn cmd(&self, args: &[&str]) -> Output {
        self.berth().args(args).output().unwrap()
    }

    /// Saves the config and runs the container in the foreground.
    pub fn run(&self) -> Output {
        self.save();
        self.berth().arg("run").arg("--bundle").arg(&self.dir).arg(&self.id).output().unwrap()
    }

    /// Runs and insists on exit 0; returns stdout.
    pub fn run_ok(&self) -> String {
        let out = self.run();
        assert!(out.status.success(), "berth run failed ({:?}): {}{}", out.status, stdout(&out), stderr(&out));
        stdout(&out)
    }

    pub fn create(&self) -> Output {
        self.save();
        let mut cmd = self.berth();
        cmd.arg("create").arg("--bundle").arg(&self.dir).arg(&self.id);
        self.detached(cmd)
    }

    /// Runs a command that leaves the container running. The container inherits its stdio, so
    /// they are files here: waiting for pipes to close would wait for the container's end.
    pub fn detached(&self, mut cmd: Command) -> Output {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let (out_path, err_path) = (self.dir.join(format!("out.{n}")), self.dir.join(format!("err.{n}")));
        cmd.stdout(std::fs::File::create(&out_path).unwrap());
        cmd.stderr(std::fs::File::create(&err_path).unwrap());
        let status = cmd.status().unwrap();
        Output { status, stdout: std::fs::read(&out_path).unwrap(), stderr: std::fs::read(&err_path).unwrap() }
    }

    /// `run --detach` with extra args before the id.
    pub fn run_detached(&self, extra: &[&str]) -> Output {
        self.save();
        let mut cmd = self.berth();
        cmd.args(["run", "--detach", "--bundle"]).arg(&self.dir).args(extra).arg(&self.id);
        self.detached(cmd)
    }

    pub fn state(&self) -> Value {
        let out = self.cmd(&["state", &self.id]);
        assert!(out.status.success(), "berth state: {}", stderr(&out));
        serde_json::from_slice(&out.stdout).unwrap()
    }

    pub fn status(&self) -> String {
        self.state()["status"].as_str().unwrap().to_string()
    }

    /// Polls until the container reports `want` (a killed init may linger as a zombie until its
    /// reaper collects it; berth must already call that stopped).
    pub fn wait_status(&self, want: &str) {
        for _ in 0..500 {
            if self.status() == want {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        panic!("container {} never became {want}: {}", self.id, self.status());
    }

    /// The container's cgroup directory that holds `controller` (a v1 name: memory, cpu,
    /// pids, freezer, ...): that controller's hierarchy on v1 and hybrid hosts, the one unified
    /// directory on a pure v2 host.
    pub fn cgroup_dir(&self, controller: &str) -> PathBuf {
        let path = cgroup_path(self.config["linux"]["cgroupsPath"].as_str(), &self.id);
        let mount = Path::new("/sys/fs/cgroup");
        if pure_v2() {
            mount.join(path)
        } else {
            mount.join(controller).join(path)
        }
    }

    /// Asserts that nothing of this container is left: state directory, cgroup.
    pub fn assert_nothing_left(&self) {
        assert!(!self.root.join(&self.id).exists(), "state directory left behind");
        for c in ["pids", "memory", "cpu", "freezer"] {
            assert!(!self.cgroup_dir(c).exists(), "cgroup {c} left behind");
        }
    }
}

impl Drop for Bundle {
    fn drop(&mut self) {
        let _ = self.cmd(&["delete", "--force", &self.id]);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Bundle {
    /// Adds capabilities to the bounding, effective and permitted sets of process.capabilities.
    pub fn add_caps(&mut self, caps: &[&str]) -> &mut Self {
        for set in ["bounding", "effective", "permitted"] {
            let list = &mut self.config["process"]["capabilities"][set];
            if !list.is_array() {
                *list = json!([]);
            }
            let list = list.as_array_mut().unwrap();
            for cap in caps {
                if !list.iter().any(|c| c == cap) {
                    list.push(json!(cap));
                }
            }
        }
        self
    }

    /// Copies a host file into the rootfs at `dest` (absolute inside the container).
    pub fn install(&self, host: &Path, dest: &str) {
        let target = self.dir.join("rootfs").join(dest.trim_start_matches('/'));
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::copy(host, &target).unwrap();
    }
}

/// runtime-tests/attack/runtime_exposure.c, built once per test binary with the system C
/// compiler as a static program, so it runs in a busybox rootfs.
pub fn attacker() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT.get_or_init(|| build_static("attack/runtime_exposure.c", "runtime_exposure")).clone()
}

/// runtime-tests/probe/process_attrs.c, built as `attacker()` is: prints the calling
/// process's scheduling attributes, I/O priority and personality.
pub fn probe() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT.get_or_init(|| build_static("probe/process_attrs.c", "process_attrs")).clone()
}

/// runtime-tests/probe/raw_syscall.c: `raw_syscall NR [ARG...]` prints the call's result.
pub fn raw_syscall() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT.get_or_init(|| build_static("probe/raw_syscall.c", "raw_syscall")).clone()
}

fn build_static(source: &str, name: &str) -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = here.join("../target/runtime-tests").join(name);
    let tmp = out.with_extension(format!("{}.tmp", std::process::id()));
    std::fs::create_dir_all(out.parent().unwrap()).unwrap();
    let cc = Command::new("cc")
        .args(["-static", "-O2", "-o"])
        .arg(&tmp)
        .arg(here.join(source))
        .output()
        .expect("cc (gcc) is needed to build the test programs");
    assert!(cc.status.success(), "cc {source}: {}", String::from_utf8_lossy(&cc.stderr));
    std::fs::rename(&tmp, &out).unwrap();
    out
}

/// Waits up to two seconds for a detached container to make `path`.
pub fn wait_for_file(path: &Path) {
    for _ in 0..200 {
        if path.exists() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Removes a namespace type from the config (e.g. to run without a pid namespace).
pub fn drop_namespace(config: &mut Value, kind: &str) {
    let list = config["linux"]["namespaces"].as_array_mut().unwrap();
    list.retain(|n| n["type"] != kind);
}

/// A capability set as /proc/<pid>/status prints it.
pub fn cap_mask(numbers: &[u32]) -> String {
    format!("{:016x}", numbers.iter().fold(0u64, |m, n| m | 1 << n))
}

/// The value of `Key:` in /proc/self/status-style text.
pub fn status_field(text: &str, key: &str) -> String {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}:")))
        .map(|v| v.trim().to_string())
        .unwrap_or_else(|| panic!("no {key} in {text}"))
}

/// Podman's default seccomp profile (containers-common) resolved the way the engine does it
/// for a container with `caps` on amd64, as the linux.seccomp section of config.json.
pub fn podman_seccomp(caps: &[&str]) -> Value {
    let text = std::fs::read_to_string("/usr/share/containers/seccomp.json")
        .expect("podman's profile is missing: run scripts/setup (golang-github-containers-common)");
    let v: Value = serde_json::from_str(&text).unwrap();
    let list = |e: &Value, key: &str| -> Vec<String> {
        e[key].as_array().map(|a| a.iter().filter_map(|c| c.as_str().map(String::from)).collect()).unwrap_or_default()
    };
    let applies = |s: &&Value| {
        let (inc, exc) = (&s["includes"], &s["excludes"]);
        list(inc, "caps").iter().all(|c| caps.contains(&c.as_str()))
            && (list(inc, "arches").is_empty() || list(inc, "arches").iter().any(|a| a == "amd64"))
            && !list(exc, "caps").iter().any(|c| caps.contains(&c.as_str()))
            && !list(exc, "arches").iter().any(|a| a == "amd64")
    };
    let syscalls: Vec<Value> = v["syscalls"]
        .as_array()
        .unwrap()
        .iter()
        .filter(applies)
        .map(|s| {
            let mut s = s.clone();
            let o = s.as_object_mut().unwrap();
            o.remove("includes");
            o.remove("excludes");
            o.remove("comment");
            s
        })
        .collect();
    json!({
        "defaultAction": v["defaultAction"],
        "defaultErrnoRet": v["defaultErrnoRet"],
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": syscalls,
    })
}
