//! The parent's half of the spawn sequence (design.md, steps 2 and 4): clone the init, write
//! its id maps, run the runtime-side create hooks when it asks, and wait for "ready".

use nix::sched::CloneFlags;
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::waitpid;
use nix::unistd::Pid;
use oci_spec::runtime::{LinuxIdMapping, Spec};

use super::init;
use super::init_config::{parent_makes_overlay, InitConfig};
use super::namespaces::{self, ParentNamespaces, Plan};
use super::sync::{self, Channel, Message, Waited};
use crate::error::{Error, Result};
use crate::rootfs::path::Root;

/// What the parent does when the init asks.
pub trait ParentSide {
    /// The init exists (and again when it turns out to be another process, forked into its
    /// pid namespace): record it before anything else, so it can be found if we die.
    fn born(&mut self, _pid: Pid) -> Result<()> {
        Ok(())
    }
    /// Once the init's namespaces exist, before any create-time hook runs (linux.netDevices).
    fn namespaces_ready(&mut self, _pid: Pid) -> Result<()> {
        Ok(())
    }
    /// prestart and createRuntime hooks; returns the state JSON the container-side hooks get.
    fn run_hooks(&mut self, pid: Pid) -> Result<String>;
    /// The init is about to be killed because create failed: undo what `namespaces_ready`
    /// did that would not die with it.
    fn abandon(&mut self, _pid: Pid) {}
}

/// Returns the init's host pid once it waits on the exec FIFO. On failure the init is killed
/// and reaped; its mounts die with its mount namespace.
pub fn spawn(cfg: &InitConfig, parent: &mut dyn ParentSide) -> Result<Pid> {
    let plan = namespaces::plan(cfg.spec);
    let (parent_end, child_end) = sync::pair()?;
    let saved = ParentNamespaces::enter(&plan)?;
    // A joined user namespace must own the new namespaces, so the init joins it first and
    // creates them itself (see init::create_namespaces_inside). In a new user namespace the
    // IPC namespace comes later too (init::enter_user_namespace).
    let first = match (&plan.join_user, plan.new_user) {
        (Some(_), _) => CloneFlags::empty(),
        (None, true) => plan.clone_flags - CloneFlags::CLONE_NEWIPC,
        (None, false) => plan.clone_flags,
    };
    let pid = match super::fork_into_cgroup(first, cfg.cgroups) {
        Ok(super::Forked { child: None, born_in_unified }) => {
            drop(parent_end);
            init::run(cfg, &plan, child_end, born_in_unified)
        }
        Ok(super::Forked { child: Some(pid), .. }) => pid,
        Err(errno) => {
            let _ = saved.restore();
            return Err(Error::sys("clone", "container init", errno));
        }
    };
    drop(child_end);
    let mut init = pid;
    let result = saved
        .restore()
        .and_then(|()| parent.born(pid))
        .and_then(|()| handshake(cfg, &plan, &parent_end, pid, &mut init, parent));
    if let Err(e) = result {
        parent.abandon(init);
        for p in [init, pid] {
            let _ = kill(p, Signal::SIGKILL);
            reap_bounded(p);
        }
        return Err(e);
    }
    Ok(init)
}

fn handshake(
    cfg: &InitConfig,
    plan: &Plan,
    ch: &Channel,
    pid: Pid,
    init: &mut Pid,
    parent: &mut dyn ParentSide,
) -> Result<()> {
    // Before anything the init waits for: id maps (after which it may mount the overlay
    // itself) and the parent-made overlay.
    if let Some(layers) = cfg.overlay {
        layers.make_dirs()?;
    }
    if plan.new_user {
        write_id_maps(cfg.spec, pid)?;
        ch.send(&Message::IdMapsWritten)?;
    }
    if let Some(layers) = cfg.overlay.filter(|_| parent_makes_overlay(cfg, plan)) {
        send_overlay(layers, cfg.spec, ch)?;
    }
    // The init asks for hooks (or says it is ready) only once its namespaces exist.
    let mut ready_seen = false;
    let mut namespaces_ready = |parent: &mut dyn ParentSide, init: Pid| -> Result<()> {
        if !std::mem::replace(&mut ready_seen, true) {
            parent.namespaces_ready(init)?;
        }
        Ok(())
    };
    let waited = Waited { what: "the container init to finish its setup", cgroups: Some(cfg.cgroups) };
    loop {
        ch.wait(&waited)?;
        match ch.recv_with_fd()? {
            Some((Message::InitPid { pid: real }, _)) => {
                // The first child made the real init and exits; reap it.
                let _ = waitpid(pid, None);
                *init = Pid::from_raw(real);
                parent.born(*init)?;
            }
            Some((Message::RunHooks, _)) => {
                namespaces_ready(parent, *init)?;
                let state = parent.run_hooks(*init)?;
                ch.send(&Message::HooksDone { state })?;
            }
            Some((Message::CloneBindSource { index }, _)) => {
                let mount =
                    cfg.spec.mounts().as_deref().unwrap_or_default().get(index).ok_or_else(|| Error::Protocol {
                        channel: "sync channel",
                        what: format!("the init asked for mount {index}, which the config does not have"),
                    })?;
                match crate::rootfs::clone_bind_source(mount, cfg.bundle)? {
                    Some(tree) => ch.send_fd(&Message::BindSourceCloned, &tree)?,
                    None => ch.send(&Message::BindSourceCloned)?,
                }
            }
            Some((Message::Ready, _)) => return namespaces_ready(parent, *init),
            Some((Message::Failed { code, msg }, _)) => return Err(Error::Init { code, msg }),
            Some((other, _)) => {
                return Err(Error::Protocol { channel: "sync channel", what: format!("unexpected {other:?}") })
            }
            None => return Err(Error::Exited { who: "container init".into(), when: "before it was ready".into() }),
        }
    }
}

fn send_overlay(layers: &crate::rootfs::overlay::Layers, spec: &Spec, ch: &Channel) -> Result<()> {
    match layers.mount_detached() {
        Ok(tree) => {
            ch.send_fd(&Message::OverlayMade, &tree)?;
            crate::rootfs::overlay::warm(&Root::adopt(tree, layers.upper.clone()), spec);
            Ok(())
        }
        Err(e) => {
            // No fsopen (before Linux 5.2), or an overlayfs that refuses fsconfig: the init
            // mounts it with mount(2) and reports any failure with its own context.
            crate::logging::debug(&format!("the init mounts the overlay itself: {e}"));
            ch.send(&Message::OverlayMade)
        }
    }
}

/// Root writes the maps itself. An unprivileged caller may write only a mapping of its own
/// uid and gid (and must deny setgroups first, a kernel rule since CVE-2014-8989); ranges go
/// through the setuid helpers newuidmap/newgidmap, which check /etc/subuid and /etc/subgid.
fn write_id_maps(spec: &Spec, pid: Pid) -> Result<()> {
    let linux = spec.linux().as_ref();
    let uid = linux.and_then(|l| l.uid_mappings().as_deref()).unwrap_or_default();
    let gid = linux.and_then(|l| l.gid_mappings().as_deref()).unwrap_or_default();
    let (euid, egid) = (nix::unistd::geteuid().as_raw(), nix::unistd::getegid().as_raw());
    if euid == 0 {
        write_map(pid, "uid_map", uid)?;
        return write_map(pid, "gid_map", gid);
    }
    let own = |maps: &[LinuxIdMapping], id: u32| maps.len() == 1 && maps[0].host_id() == id && maps[0].size() == 1;
    if own(uid, euid) && own(gid, egid) {
        let setgroups = format!("/proc/{pid}/setgroups");
        std::fs::write(&setgroups, "deny").map_err(|e| Error::io("write", &setgroups, e))?;
        write_map(pid, "uid_map", uid)?;
        return write_map(pid, "gid_map", gid);
    }
    run_id_helper("newuidmap", pid, uid)?;
    run_id_helper("newgidmap", pid, gid)
}

fn run_id_helper(helper: &'static str, pid: Pid, maps: &[LinuxIdMapping]) -> Result<()> {
    let mut args = vec![pid.to_string()];
    for m in maps {
        args.extend([m.container_id().to_string(), m.host_id().to_string(), m.size().to_string()]);
    }
    let out = std::process::Command::new(helper).args(&args).output().map_err(|e| {
        Error::io("run", format!("{helper} (mapping ranges as an unprivileged user needs Debian's uidmap package)"), e)
    })?;
    if !out.status.success() {
        let msg = String::from_utf8_lossy(&out.stderr).trim().to_string();
        return Err(Error::IdHelper { helper, args: args[1..].join(" "), reason: msg });
    }
    Ok(())
}

fn write_map(pid: Pid, file: &str, maps: &[LinuxIdMapping]) -> Result<()> {
    if maps.is_empty() {
        return Ok(());
    }
    let text = super::userns::map_text(maps);
    let path = format!("/proc/{pid}/{file}");
    std::fs::write(&path, &text).map_err(|e| Error::io("write id mapping", format!("{file} {:?}", text.trim()), e))
}

/// Reaps a killed child, waiting at most two seconds: a child frozen in its cgroup cannot act
/// on SIGKILL until it is thawed, and create must not wait for that. Whoever thaws or
/// removes the cgroup (`delete`) ends it.
pub(super) fn reap_bounded(pid: Pid) {
    use nix::sys::wait::WaitPidFlag;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    while let Ok(nix::sys::wait::WaitStatus::StillAlive) = waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
        if std::time::Instant::now() >= deadline {
            crate::logging::warn(&format!("process {pid} did not die within 2s of SIGKILL (frozen?)"));
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}
