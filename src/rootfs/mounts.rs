//! The config's mounts, each placed on a destination resolved inside the rootfs.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::mount::{mount, MsFlags};
use oci_spec::runtime::Mount;

use super::mount_ops::{bind, finish, fs_mount, remount_bind};
use super::options::{self, MountOptions};
use super::path::{fd_path, Root};
use crate::cgroups::CgroupDir;
use crate::error::{Error, Result, SysContext};

/// What mounting needs to know beyond the mount entry itself.
pub struct MountContext<'a> {
    pub bundle: &'a Path,
    /// In a user namespace the kernel forbids some mounts outright (sysfs without a network
    /// namespace, device nodes); they fall back to bind mounts of the host's, as runc does.
    pub in_userns: bool,
    pub new_cgroupns: bool,
    pub cgroups: &'a [CgroupDir],
    /// Per config mount (same index): the user namespace of an idmapped bind mount.
    pub idmaps: &'a [Option<std::fs::File>],
    /// In a user namespace: asks the parent for config mount N's bind source (clone_bind_source).
    pub bind_source_from_parent: Option<&'a dyn Fn(usize) -> Result<Option<OwnedFd>>>,
    /// The container layer, mounted as the rootfs instead of binding it.
    pub overlay: Option<&'a super::overlay::Layers>,
    /// That overlay, already made by the parent as a detached mount, to be attached.
    pub overlay_tree: Option<&'a std::os::fd::OwnedFd>,
    /// linux.mountLabel (SELinux), given to the filesystems that take a context.
    pub mount_label: Option<&'a str>,
    /// The pid namespace a procfs shows when the init is not in it yet (`pidns=`).
    pub proc_pidns: Option<&'a Path>,
}

/// A read-only /dev gets things put in it after it is mounted (the devices, /dev/pts, the
/// symlinks): it is mounted writable and made read-only once they are in place
/// (make_read_only), as runc does.
pub fn read_only_later(mounts: &[Mount]) -> Option<usize> {
    mounts.iter().rposition(|m| {
        let opts = options::parse(m.options().as_deref().unwrap_or_default());
        m.destination().components().collect::<PathBuf>() == Path::new("/dev")
            && !opts.is_bind()
            && opts.flags.contains(MsFlags::MS_RDONLY)
    })
}

/// The second half of read_only_later: the filesystem on `m`'s destination remounted
/// read-only with the rest of its options.
pub fn make_read_only(root: &Root, m: &Mount) -> Result<()> {
    let opts = options::parse(m.options().as_deref().unwrap_or_default());
    let mounted = root.resolve(m.destination()).ctx("open", root.display(m.destination()))?;
    let flags = (opts.flags - MsFlags::MS_BIND - MsFlags::MS_REC) | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY;
    mount(None::<&str>, fd_path(&mounted).as_str(), None::<&str>, flags, opts.data_string().as_deref())
        .ctx("remount read-only", root.display(m.destination()))
}

pub fn mount_entry(root: &Root, m: &Mount, ctx: &MountContext, index: usize, read_only_later: bool) -> Result<()> {
    let mut opts = options::parse(m.options().as_deref().unwrap_or_default());
    if read_only_later {
        opts.flags.remove(MsFlags::MS_RDONLY);
    }
    let fstype = m.typ().as_deref().unwrap_or("none");
    crate::security::lsm::label_mount(fstype, &mut opts.data, ctx.mount_label);
    let dest = m.destination();
    if opts.is_bind() || fstype == "bind" {
        let source = bind_source(m, ctx.bundle)?;
        if let Some(userns) = ctx.idmaps.get(index).and_then(Option::as_ref) {
            return bind_idmapped(root, &source, dest, &opts, userns);
        }
        let tree = ctx.bind_source_from_parent.map(|ask| ask(index)).transpose()?.flatten();
        return match tree {
            Some(tree) => attach_bind_tree(root, &tree, &source, dest, &opts),
            None => bind(root, &source, dest, &opts),
        };
    }
    match fstype {
        "cgroup" | "cgroup2" => super::cgroupfs::mount_cgroupfs(root, dest, &opts, ctx.cgroups, ctx.new_cgroupns),
        _ => {
            let source = m.source().as_ref().map(|s| s.display().to_string()).unwrap_or_else(|| fstype.to_string());
            if matches!(fstype, "proc" | "sysfs") {
                require_plain_directory(root, dest, fstype)?;
            }
            if let Some(pidns) = ctx.proc_pidns.filter(|_| fstype == "proc") {
                opts.data.push(format!("pidns={}", pidns.display()));
            }
            let target = root.mkdir_all(dest)?;
            if opts.copy_up && fstype == "tmpfs" {
                return tmpfs_copy_up(root, &source, &target, dest, &opts);
            }
            match fs_mount(&source, &target, fstype, &opts, root.display(dest)) {
                Err(Error::Mount { errno: Errno::EPERM, .. }) if ctx.in_userns && fstype == "sysfs" => bind(
                    root,
                    Path::new("/sys"),
                    dest,
                    &options::parse(&["rbind".into(), "nosuid".into(), "noexec".into(), "nodev".into()]),
                ),
                Err(Error::Mount { errno: Errno::EPERM, .. }) if ctx.in_userns && fstype == "mqueue" => {
                    bind(root, Path::new("/dev/mqueue"), dest, &options::parse(&["bind".into()]))
                }
                // A gid= the user namespace does not map makes devpts refuse with EINVAL.
                Err(Error::Mount { errno: Errno::EINVAL, .. })
                    if fstype == "devpts" && opts.data.iter().any(|d| d.starts_with("gid=")) =>
                {
                    let mut opts = opts;
                    opts.data.retain(|d| !d.starts_with("gid="));
                    fs_mount(&source, &target, fstype, &opts, root.display(dest))?;
                    finish(root, dest, &opts)
                }
                Err(e) => Err(e),
                Ok(()) => finish(root, dest, &opts),
            }
        }
    }
}

/// procfs and sysfs go on an ordinary directory only: a /proc that is a symlink would put the
/// kernel's files elsewhere than everything else (masks, LSM profiles writing through
/// /proc/self/attr: CVE-2019-16884) expects them; runc and crun refuse it too.
fn require_plain_directory(root: &Root, dest: &Path, fstype: &str) -> Result<()> {
    match root.lstat(dest)? {
        Some(st) if st.st_mode & libc::S_IFMT != libc::S_IFDIR => Err(Error::InvalidConfig(format!(
            "{fstype} must be mounted on an ordinary directory, and {} in the rootfs is not one",
            root.display(dest)
        ))),
        _ => Ok(()),
    }
}

/// A tmpfs that starts with a copy of the directory it covers: the directory is opened
/// before the mount hides it, and copied into the new tmpfs through the two fds.
fn tmpfs_copy_up(root: &Root, source: &str, target: &OwnedFd, dest: &Path, opts: &MountOptions) -> Result<()> {
    let flags = nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_RDONLY;
    let below = root.resolve_with(dest, flags).ctx("open", root.display(dest))?;
    fs_mount(source, target, "tmpfs", opts, root.display(dest))?;
    let above = root.resolve_with(dest, flags).ctx("open", root.display(dest))?;
    copy_tree(Path::new(&fd_path(&below)), Path::new(&fd_path(&above)))
        .map_err(|e| Error::io("copy up into tmpfs", root.display(dest), e))?;
    finish(root, dest, opts)
}

/// Copies a directory's contents: files, directories and symlinks with their modes and
/// owners; symlinks are copied as links, never followed.
fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{lchown, MetadataExt, PermissionsExt};
    let top = std::fs::metadata(from)?;
    std::fs::set_permissions(to, std::fs::Permissions::from_mode(top.mode() & 0o7777))?;
    lchown(to, Some(top.uid()), Some(top.gid()))?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        let meta = std::fs::symlink_metadata(&src)?;
        let kind = meta.file_type();
        if kind.is_dir() {
            std::fs::create_dir(&dst)?;
            copy_tree(&src, &dst)?;
            continue;
        } else if kind.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&src)?, &dst)?;
        } else if kind.is_file() {
            std::fs::copy(&src, &dst)?;
            std::fs::set_permissions(&dst, std::fs::Permissions::from_mode(meta.mode() & 0o7777))?;
        } else {
            continue;
        }
        lchown(&dst, Some(meta.uid()), Some(meta.gid()))?;
    }
    Ok(())
}

fn bind_source(m: &Mount, bundle: &Path) -> Result<PathBuf> {
    let source = m
        .source()
        .as_ref()
        .ok_or_else(|| Error::InvalidConfig(format!("bind mount on {:?} has no source", m.destination())))?;
    Ok(if source.is_absolute() { source.clone() } else { bundle.join(source) })
}

/// In a user namespace the init, as the namespace's root, cannot look up a bind source below
/// a directory only the host's root may enter (a 0700 engine state directory, a --root under
/// /root). It asks the parent, still the host's root, for each plain bind source when it gets
/// to it (so mounts are made in the config's order, as mountinfo shows), and attaches the
/// clone; runc's init is handed its sources as fds. `None` when the parent may not clone
/// (rootless): the init looks the source up itself, as before.
pub fn clone_bind_source(m: &Mount, bundle: &Path) -> Result<Option<OwnedFd>> {
    let opts = options::parse(m.options().as_deref().unwrap_or_default());
    let source = bind_source(m, bundle)?;
    let c_source = c_path(&source)?;
    let fail = |op: &str, errno| Error::Mount {
        what: format!("{} ({op})", source.display()),
        target: m.destination().display().to_string(),
        fstype: "bind".into(),
        errno,
    };
    let tree = match crate::sys::open_tree_clone(&c_source, opts.flags.contains(MsFlags::MS_REC)) {
        Ok(tree) => tree,
        Err(Errno::EPERM) => return Ok(None),
        Err(Errno::ENOENT) => return Err(Error::io("bind mount source", source.display(), Errno::ENOENT.into())),
        Err(errno) => return Err(fail("open_tree", errno)),
    };
    // The clone of a shared host mount would be the host's peer: a mount the container makes
    // below it would appear on the host. A slave, as the init's own bind of its (already
    // slave) view would be.
    crate::sys::mount_setattr_propagation(&tree, MsFlags::MS_SLAVE.bits(), true)
        .map_err(|errno| fail("make slave", errno))?;
    Ok(Some(tree))
}

/// Attaches a detached bind tree (cloned by the parent, or idmapped here) at `dest`.
fn attach_bind_tree(root: &Root, tree: &OwnedFd, source: &Path, dest: &Path, opts: &MountOptions) -> Result<()> {
    let meta = nix::sys::stat::fstat(tree).map_err(|e| Error::io("bind mount source", source.display(), e.into()))?;
    let is_dir = meta.st_mode & libc::S_IFMT == libc::S_IFDIR;
    let target = if is_dir { root.mkdir_all(dest)? } else { root.create_file(dest)? };
    crate::sys::move_mount_to(tree, &target).map_err(|errno| Error::Mount {
        what: format!("{} (move_mount)", source.display()),
        target: root.display(dest),
        fstype: "bind".into(),
        errno,
    })?;
    if !opts.remount_flags().is_empty() {
        let mounted = root.resolve(dest).ctx("open", root.display(dest))?;
        remount_bind(&mounted, opts.remount_flags(), &root.display(dest))?;
    }
    finish(root, dest, opts)
}

/// A bind mount that shows file ownership through `userns`'s mapping: the source is cloned
/// as a detached tree, marked idmapped, and attached at the destination.
fn bind_idmapped(root: &Root, source: &Path, dest: &Path, opts: &MountOptions, userns: &std::fs::File) -> Result<()> {
    let recursive = opts.flags.contains(MsFlags::MS_REC);
    let fail = |op: &'static str| {
        move |errno| Error::Mount {
            what: format!("{} ({op})", source.display()),
            target: root.display(dest),
            fstype: "idmapped bind".into(),
            errno,
        }
    };
    let tree = crate::sys::open_tree_clone(&c_path(source)?, recursive).map_err(fail("open_tree"))?;
    let all = opts.idmap == Some(super::options::Recursive::Yes) || recursive;
    crate::sys::mount_setattr_idmap(&tree, userns, all).map_err(fail("mount_setattr idmap"))?;
    attach_bind_tree(root, &tree, source, dest, opts)
}

fn c_path(path: &Path) -> Result<std::ffi::CString> {
    std::ffi::CString::new(path.as_os_str().as_encoded_bytes())
        .map_err(|_| Error::InvalidConfig(format!("mount source {path:?} contains NUL")))
}
