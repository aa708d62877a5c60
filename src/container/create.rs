//! `create` (design.md steps 1, 2 and 4): claim the id, make the cgroup and the exec FIFO,
//! spawn the init, record the state. Any failure undoes all of it.

use std::path::{Path, PathBuf};

use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
use nix::unistd::Pid;
use std::os::fd::OwnedFd;

use super::dir::ContainerDir;
use super::state::{Creator, State, Status};
use crate::error::{Error, Result, SysContext};
use crate::hooks::{self, HookPoint};
use crate::process::{self, sealed_exe, start_gate, InitConfig};
use crate::procfs::ProcStat;
use crate::rootfs::overlay;
use crate::{annotations, cgroups, spec, tty};

pub const CONFIG_COPY: &str = "config.json";

/// Where a terminal's pty master goes.
#[derive(Default, Clone)]
pub enum Console {
    /// No terminal may be allocated (`create` without --console-socket).
    #[default]
    Detached,
    /// The engine's socket (--console-socket).
    Socket(PathBuf),
    /// Back to this berth process, which relays the caller's terminal (foreground `run`).
    Relay,
}

#[derive(Default)]
pub struct CreateOptions {
    pub bundle: PathBuf,
    /// A config made in memory (`run --image`), used instead of `bundle`'s config.json.
    pub generated: Option<spec::Bundle>,
    pub pid_file: Option<PathBuf>,
    pub console: Console,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    pub preserve_fds: u32,
    /// Run on an overlay: the bundle's rootfs read-only below, a container layer on top.
    pub rootfs_overlay: bool,
    /// An image's cached layer directories, top first (`run --image`): the rootfs is an
    /// overlay of them with a container layer on top, and `state` names them
    /// (annotations::IMAGE_LAYERS) so that `gc` keeps them while the container exists.
    pub image_layers: Option<Vec<PathBuf>>,
    /// --pidfd-socket: where a pidfd of the init goes once it is set up.
    pub pidfd_socket: Option<PathBuf>,
    /// --systemd-cgroup: the cgroup is a transient systemd unit (cgroups::systemd).
    pub systemd_cgroup: bool,
}

/// A created container, and with `Console::Relay` the socket its pty master arrives on.
pub struct Created {
    pub state: State,
    pub console: Option<OwnedFd>,
}

pub fn create(root: &Path, id: &str, opts: &CreateOptions) -> Result<Created> {
    super::dir::validate_id(id)?;
    let loaded;
    let bundle = match &opts.generated {
        Some(generated) => generated,
        None => {
            loaded = spec::load(&opts.bundle)?;
            &loaded
        }
    };
    if opts.no_pivot {
        spec::validate::check_no_pivot(&bundle.spec)?;
    }
    let process = bundle.spec.process().as_ref();
    // Before anything exists: a container that can see its init with CAP_SYS_PTRACE gets an
    // init that runs from a sealed copy of berth (see sealed_exe), so berth starts over as one.
    if process.is_some_and(|p| sealed_exe::exposed(&bundle.spec, &[p])) {
        sealed_exe::ensure()?;
    }
    for cap in process
        .and_then(|p| p.capabilities().as_ref())
        .map(crate::security::capabilities::unraisable_ambient)
        .unwrap_or_default()
    {
        crate::logging::debug(&format!("ambient capability {cap} is not also permitted and inheritable: not raised"));
    }
    let terminal = process.and_then(|p| p.terminal()).unwrap_or(false);
    let (ours, theirs) = console_channel(terminal, &opts.console)?;
    // Connected before anything exists: a socket nobody listens on fails here.
    let pidfd_socket = opts.pidfd_socket.as_deref().map(crate::pidfd_socket::connect_to).transpose()?;
    let mut made = Made::default();
    // Where the container's cgroups will be (the cgroupsPath and the driver agree, the unit's
    // name is valid), before anything is made there or anywhere.
    match opts.systemd_cgroup {
        true => {
            let (unit, dirs) = plan_unit(&bundle.spec, id)?;
            made.cgroups = dirs;
            made.unit = Some(unit);
        }
        false => plan_cgroups(&bundle.spec, id, &mut made.cgroups)?,
    }
    made.overlay = container_layer(&bundle.spec, &bundle.rootfs, &super::dir::state_dir(root, id), opts);
    if let Some(layers) = &made.overlay {
        layers.check_paths()?;
    }
    let dir = ContainerDir::claim(root, id)?;
    let sockets = Sockets { console: theirs.as_ref(), pidfd: pidfd_socket.as_ref() };
    match create_in(&dir, id, bundle, opts, &sockets, &mut made) {
        Ok(state) => Ok(Created { state, console: ours }),
        Err(e) => {
            leave_scope(&mut made);
            if let Some(scope) = &made.scope {
                let dir = made.cgroups.first().map(|d| d.path.as_path());
                if let Err(c) = cgroups::systemd::stop(&scope.unit, dir) {
                    crate::logging::warn(&format!("cleanup after failed create: {c}"));
                }
            }
            if let Err(c) = cgroups::destroy(&made.cgroups) {
                crate::logging::warn(&format!("cleanup after failed create: {c}"));
            }
            if let Some(group) = &made.resctrl {
                crate::resctrl::destroy(group);
            }
            if let Some(before) = &made.mounts_before {
                if let Err(c) = crate::rootfs::unmount_added(&bundle.rootfs, before) {
                    crate::logging::warn(&format!("cleanup after failed create: {c}"));
                }
            }
            let _ = dir.remove();
            Err(e)
        }
    }
}

/// Where the init's pty master (process.terminal) and its pidfd (--pidfd-socket) go.
struct Sockets<'a> {
    console: Option<&'a OwnedFd>,
    pidfd: Option<&'a OwnedFd>,
}

/// What create made outside its state directory, for its undoing; planned before the state
/// directory is claimed, made after.
#[derive(Default)]
struct Made {
    cgroups: Vec<cgroups::CgroupDir>,
    /// The systemd unit to start for the container (--systemd-cgroup); `scope` once started.
    unit: Option<cgroups::systemd::Unit>,
    /// The container layer (--rootfs-overlay), its paths checked; made after the clone.
    overlay: Option<overlay::Layers>,
    resctrl: Option<crate::resctrl::Group>,
    /// A container in the runtime's mount namespace: what was mounted below its rootfs before.
    mounts_before: Option<Vec<u32>>,
    /// The systemd unit started for the container (--systemd-cgroup).
    scope: Option<Scope>,
}

/// A transient scope must hold a process when systemd starts it, and the init does not exist
/// yet (its limits come first): berth starts the scope holding itself, the init is born into
/// it, and berth goes back to its own cgroup (`home`).
struct Scope {
    unit: String,
    home: Option<PathBuf>,
    /// berth itself is still in the scope.
    inside: bool,
}

/// Moves berth out of the container's scope, once.
fn leave_scope(made: &mut Made) {
    let Some(scope) = made.scope.as_mut().filter(|s| s.inside) else { return };
    scope.inside = false;
    match &scope.home {
        Some(home) => {
            if let Err(e) = cgroups::move_self(home) {
                crate::logging::warn(&format!("leaving the container's scope {}: {e}", scope.unit));
            }
        }
        None => crate::logging::warn(&format!(
            "leaving the container's scope {}: berth's own cgroup is unknown",
            scope.unit
        )),
    }
}

/// --systemd-cgroup: the container's unit and its cgroup directory, before anything is made.
fn plan_unit(spec: &oci_spec::runtime::Spec, id: &str) -> Result<(cgroups::systemd::Unit, Vec<cgroups::CgroupDir>)> {
    let path = spec.linux().as_ref().and_then(|l| l.cgroups_path().as_deref());
    let path = match path.map(|p| p.to_str()) {
        Some(None) => return Err(Error::InvalidConfig(format!("cgroupsPath {path:?} is not UTF-8"))),
        Some(Some(p)) => Some(p),
        None => None,
    };
    let unit = cgroups::systemd::unit_for(path, id)?;
    let dirs = cgroups::systemd_dirs(&unit)?;
    if !nix::unistd::geteuid().is_root() {
        return Err(Error::Unsupported(
            "--systemd-cgroup as an unprivileged user (a user's own systemd) is not implemented; run without it".into(),
        ));
    }
    Ok((unit, dirs))
}

/// Starts the planned unit (berth inside it when it is a scope).
fn start_unit(
    unit: &cgroups::systemd::Unit,
    resources: Option<&oci_spec::runtime::LinuxResources>,
    made: &mut Made,
) -> Result<()> {
    let home = cgroups::own_unified_dir();
    cgroups::systemd::start(unit, std::process::id(), resources)?;
    made.scope = Some(Scope { unit: unit.name.clone(), home, inside: unit.is_scope() });
    crate::logging::debug(&format!("systemd unit {} started", unit.name));
    Ok(())
}

/// The cgroupfs driver: the container's directory in every hierarchy, and which of them
/// berth is about to make (those not there yet), before any is made.
fn plan_cgroups(spec: &oci_spec::runtime::Spec, id: &str, cgroup_dirs: &mut Vec<cgroups::CgroupDir>) -> Result<()> {
    let hierarchies = cgroups::hierarchies()?;
    let cgroups_path = spec.linux().as_ref().and_then(|l| l.cgroups_path().as_deref());
    *cgroup_dirs = cgroups::container_dirs(&hierarchies, cgroups_path, id)?;
    cgroups::plan(cgroup_dirs);
    Ok(())
}

/// The cgroupfs driver: makes the planned directories.
fn make_cgroups(cgroup_dirs: &mut Vec<cgroups::CgroupDir>) -> Result<()> {
    if let Err(e) = cgroups::create(cgroup_dirs) {
        // An unprivileged caller gets cgroups only where they were delegated to it.
        if nix::unistd::geteuid().is_root() || !e.is_permission() {
            return Err(e);
        }
        crate::logging::debug(&format!("rootless: running without a cgroup ({e})"));
        let _ = cgroups::destroy(cgroup_dirs);
        cgroup_dirs.clear();
    }
    // A cgroup that was there already may hold another container's processes: allowed (pods
    // share one), but said, in runc's words, as its limits and freezing then apply to both.
    if cgroup_dirs.iter().any(|d| !d.created) {
        let found = cgroups::pids(cgroup_dirs).len();
        if found > 0 {
            crate::logging::warn(&format!("container's cgroup is not empty: {found} process(es) found"));
        }
    }
    Ok(())
}

/// (the end this process keeps, the end the init sends the pty master on).
pub(super) fn console_channel(terminal: bool, console: &Console) -> Result<(Option<OwnedFd>, Option<OwnedFd>)> {
    match (terminal, console) {
        (false, Console::Socket(_)) => {
            Err(Error::InvalidConfig("--console-socket was given but process.terminal is false".into()))
        }
        (false, _) => Ok((None, None)),
        (true, Console::Detached) => Err(Error::InvalidConfig(
            "process.terminal is true: a detached container needs --console-socket to receive its pty".into(),
        )),
        (true, Console::Socket(path)) => Ok((None, Some(tty::connect_console_socket(path)?))),
        (true, Console::Relay) => {
            let (a, b) = socketpair(AddressFamily::Unix, SockType::Stream, None, SockFlag::SOCK_CLOEXEC)
                .ctx("socketpair", "terminal relay")?;
            Ok((Some(a), Some(b)))
        }
    }
}

fn create_in(
    dir: &ContainerDir,
    id: &str,
    bundle: &spec::Bundle,
    opts: &CreateOptions,
    sockets: &Sockets,
    made: &mut Made,
) -> Result<State> {
    let spec = &bundle.spec;
    let unit = made.unit.take();
    let overlay = made.overlay.take();
    let idmaps = idmap_namespaces(spec)?;
    if crate::rootfs::shares_runtime_mount_namespace(spec) {
        made.mounts_before = Some(crate::rootfs::mounts_below(&bundle.rootfs)?);
    }
    let resources = spec.linux().as_ref().and_then(|l| l.resources().as_ref());
    let (creator_pid, creator_start) =
        crate::procfs::myself().ok_or_else(|| Error::ProcRead("/proc/self/stat".into()))?;
    let mut state = State {
        // The spec the state is written to, as runc reports it, whatever the config's.
        oci_version: crate::OCI_VERSION.to_string(),
        id: id.to_string(),
        pid: 0,
        pid_start_time: 0,
        bundle: bundle.dir.clone(),
        rootfs: bundle.rootfs.clone(),
        created: crate::time::now_rfc3339(),
        owner: String::new(),
        annotations: state_annotations(spec, overlay.as_ref(), opts),
        cgroups: made.cgroups.clone(),
        resctrl: None,
        systemd_unit: unit.as_ref().map(|u| u.name.clone()),
        hooks: spec.hooks().clone(),
        ptrace_execs: false,
        creating: Some(Creator { pid: creator_pid, start_time: creator_start }),
        mounts_before: made.mounts_before.clone(),
    };
    // The record comes before what it records: a create killed from here on leaves a
    // container that `state` shows as creating and `delete` takes apart.
    state.write_record(&dir.path)?;
    match &unit {
        Some(unit) => start_unit(unit, resources, made)?,
        None => make_cgroups(&mut made.cgroups)?,
    }
    let cgroup_dirs = &mut made.cgroups;
    cgroups::enable_controllers(cgroup_dirs, opts.systemd_cgroup);
    // Limits are in place before the init exists, so it never runs unconstrained.
    if cgroup_dirs.is_empty() {
        if resources.is_some() {
            crate::logging::debug("rootless: resource limits ignored, no cgroup was delegated");
        }
    } else {
        if let Some(resources) = resources {
            cgroups::apply(cgroup_dirs, resources)?;
        }
        if resources.and_then(|r| r.devices().as_ref()).is_none_or(|d| d.is_empty()) {
            match cgroups::devices(cgroup_dirs, &[]) {
                // Unprivileged, device files stay what the host's permissions make them.
                Err(e) if !nix::unistd::geteuid().is_root() && e.is_permission() => {
                    crate::logging::debug(&format!("rootless: no device rules ({e})"))
                }
                other => other?,
            }
        }
    }
    // Like the cgroups, before the init exists; it joins the groups itself.
    if crate::resctrl::requested(spec) {
        made.resctrl = crate::resctrl::create(spec, id, crate::resctrl::mount_point().as_deref())?;
        // Recorded once made: unlike a cgroup path, the group's name is known only then.
        state.resctrl = made.resctrl.clone();
        state.write_record(&dir.path)?;
    }
    // exec reads the container's process defaults from here, not from a bundle that may change.
    let saved = dir.path.join(CONFIG_COPY);
    std::fs::write(&saved, &bundle.raw).ctx("save config", saved.display())?;
    let start = start_gate::open(&dir.path)?;

    let (preserve_fds, extra_env) = inherited_fds(opts.preserve_fds);
    state.cgroups = made.cgroups.clone();
    // A frozen cgroup would freeze the init at its first step, and create would wait for it
    // for ever (runc: "container's cgroup unexpectedly frozen").
    if let Some(frozen) = cgroups::frozen_dir(&made.cgroups) {
        return Err(Error::Busy(format!(
            "container's cgroup unexpectedly frozen: {} (thaw it, or use another cgroupsPath)",
            frozen.display()
        )));
    }
    let cfg = InitConfig {
        id,
        spec,
        bundle: &bundle.dir,
        rootfs: &bundle.rootfs,
        start: &start,
        cgroups: &made.cgroups,
        no_pivot: opts.no_pivot,
        no_new_keyring: opts.no_new_keyring,
        preserve_fds,
        extra_env,
        console: sockets.console,
        seccomp: bundle.seccomp.as_ref(),
        idmaps: &idmaps,
        overlay: overlay.as_ref(),
        resctrl: made.resctrl.as_ref(),
    };
    let mut parent = CreateParent { state: &state, dir: &dir.path, spec, net_devices: Vec::new() };
    crate::logging::debug(&format!(
        "create {id}: container setup, cgroups {:?}",
        made.cgroups.iter().map(|d| &d.path).collect::<Vec<_>>()
    ));
    let spawned = process::spawn(&cfg, &mut parent);
    // The init is in the scope now (or failed): berth goes back to its own cgroup.
    leave_scope(made);
    let pid = spawned?;
    crate::logging::debug(&format!("create {id}: init {pid} is ready and waits for start"));
    let net_devices = std::mem::take(&mut parent.net_devices);
    state.pid = pid.as_raw();
    let recorded = ProcStat::read(pid.as_raw())
        .map(|s| s.start_time)
        .ok_or_else(|| Error::Exited { who: format!("container init {pid}"), when: "after setup".into() })
        .and_then(|start| {
            state.pid_start_time = start;
            state.creating = None;
            state.write(&dir.path)
        })
        .and_then(|()| write_pid_file(opts.pid_file.as_deref(), pid))
        .and_then(|()| send_pidfd(sockets.pidfd, pid, state.pid_start_time));
    if let Err(e) = recorded {
        crate::netdev::move_back(&net_devices, pid);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
        let _ = nix::sys::wait::waitpid(pid, None);
        return Err(e);
    }
    Ok(state)
}

/// The container layer, when an image's layers, `--rootfs-overlay` or the bundle's annotation
/// ask for it. Its lower layers are the image's cached layers, or else the bundle's rootfs.
fn container_layer(
    spec: &oci_spec::runtime::Spec,
    rootfs: &Path,
    state_dir: &Path,
    opts: &CreateOptions,
) -> Option<overlay::Layers> {
    let annotated =
        || spec.annotations().as_ref().and_then(|a| a.get(annotations::ROOTFS_OVERLAY)).is_some_and(|v| v == "true");
    let lower = match &opts.image_layers {
        Some(layers) => layers.clone(),
        None if opts.rootfs_overlay || annotated() => vec![rootfs.to_path_buf()],
        None => return None,
    };
    let linux = spec.linux().as_ref();
    let host_root = |maps: Option<&Vec<oci_spec::runtime::LinuxIdMapping>>| {
        maps.into_iter().flatten().find(|m| m.container_id() == 0).map(|m| m.host_id())
    };
    let owner = host_root(linux.and_then(|l| l.uid_mappings().as_ref()))
        .zip(host_root(linux.and_then(|l| l.gid_mappings().as_ref())));
    Some(overlay::Layers::new(lower, state_dir, owner))
}

/// The config's annotations, and what berth records: the container layer, and the image's
/// layers `gc` must keep (only from `image_layers`: a config cannot claim cached layers).
fn state_annotations(
    spec: &oci_spec::runtime::Spec,
    overlay: Option<&overlay::Layers>,
    opts: &CreateOptions,
) -> std::collections::HashMap<String, String> {
    let mut recorded = spec.annotations().clone().unwrap_or_default();
    recorded.remove(annotations::IMAGE_LAYERS);
    if let Some(layers) = overlay {
        recorded.insert(annotations::ROOTFS_LAYER.into(), layers.upper.display().to_string());
    }
    if let Some(layers) = &opts.image_layers {
        let lower: Vec<String> = layers.iter().map(|p| p.display().to_string()).collect();
        recorded.insert(annotations::IMAGE_LAYERS.into(), lower.join(":"));
    }
    recorded
}

/// For each config mount that is idmapped (mappings, or the idmap/ridmap option), a user
/// namespace holding its mapping; the mount's own mappings, else the container's (the shape
/// was checked by spec::validate).
fn idmap_namespaces(spec: &oci_spec::runtime::Spec) -> Result<Vec<Option<std::fs::File>>> {
    let linux = spec.linux().as_ref();
    let mut out = Vec::new();
    for m in spec.mounts().iter().flatten() {
        let option = m.options().iter().flatten().any(|o| o == "idmap" || o == "ridmap");
        let (uid, gid) = (m.uid_mappings().as_deref(), m.gid_mappings().as_deref());
        if !option && uid.is_none() && gid.is_none() {
            out.push(None);
            continue;
        }
        let uid = uid.or_else(|| linux.and_then(|l| l.uid_mappings().as_deref())).unwrap_or_default();
        let gid = gid.or_else(|| linux.and_then(|l| l.gid_mappings().as_deref())).unwrap_or_default();
        out.push(Some(crate::process::userns::with_mappings(uid, gid)?));
    }
    Ok(out)
}

/// The parent's answers to the init during create.
struct CreateParent<'a> {
    state: &'a State,
    /// The state directory, where the init is recorded as soon as it exists.
    dir: &'a Path,
    spec: &'a oci_spec::runtime::Spec,
    /// linux.netDevices moved into the container, to move back if create fails.
    net_devices: Vec<crate::netdev::Moved>,
}

impl CreateParent<'_> {
    fn state_json(&self, pid: Pid, status: Status) -> String {
        let mut s = self.state.clone();
        s.pid = pid.as_raw();
        s.oci(status).to_string()
    }
}

impl process::ParentSide for CreateParent<'_> {
    fn born(&mut self, pid: Pid) -> Result<()> {
        let mut record = self.state.clone();
        record.pid = pid.as_raw();
        // Gone already: it failed, and spawn hears why from it.
        let Some(stat) = ProcStat::read(pid.as_raw()) else { return Ok(()) };
        record.pid_start_time = stat.start_time;
        record.write_record(self.dir)
    }

    fn namespaces_ready(&mut self, pid: Pid) -> Result<()> {
        self.net_devices = crate::netdev::move_into(self.spec, pid)?;
        Ok(())
    }

    fn abandon(&mut self, pid: Pid) {
        crate::netdev::move_back(&std::mem::take(&mut self.net_devices), pid);
    }

    fn run_hooks(&mut self, pid: Pid) -> Result<String> {
        let json = self.state_json(pid, Status::Creating);
        hooks::run(HookPoint::Prestart, self.spec.hooks().as_ref(), &json)?;
        hooks::run(HookPoint::CreateRuntime, self.spec.hooks().as_ref(), &json)?;
        Ok(self.state_json(pid, Status::Created))
    }
}

/// `--preserve-fds N` plus systemd socket activation: with LISTEN_FDS set, those fds go in too
/// and the container sees LISTEN_FDS with LISTEN_PID=1, as runc passes them.
fn inherited_fds(preserve: u32) -> (u32, Vec<String>) {
    match std::env::var("LISTEN_FDS").ok().and_then(|v| v.parse::<u32>().ok()) {
        Some(n) if n > 0 => (preserve.max(n), vec![format!("LISTEN_FDS={n}"), "LISTEN_PID=1".into()]),
        _ => (preserve, Vec::new()),
    }
}

/// --pidfd-socket: the init's pidfd, checked to be the init recorded.
fn send_pidfd(socket: Option<&OwnedFd>, pid: Pid, start_time: u64) -> Result<()> {
    let Some(socket) = socket else { return Ok(()) };
    let pidfd = crate::pidfd_socket::open_checked(pid, start_time)?;
    crate::pidfd_socket::send(socket, &pidfd, crate::pidfd_socket::Kind::Init)
}

/// Written to a temporary name of this writer's own and renamed (atomic_file): engines poll
/// for the file and must never read a partial pid, nor one another create wrote.
pub(super) fn write_pid_file(path: Option<&Path>, pid: Pid) -> Result<()> {
    let Some(path) = path else { return Ok(()) };
    let path = std::path::absolute(path).map_err(|e| Error::io("resolve pid file", path.display(), e))?;
    crate::atomic_file::write(&path, pid.to_string().as_bytes(), false)
        .map_err(|e| Error::io("write pid file", path.display(), e))
}
