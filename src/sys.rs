//! Thin wrappers for the syscalls nix does not offer. Each unsafe block is one syscall whose
//! arguments are plain integers or pointers to memory we own for the duration of the call.
//! The only file of the crate allowed unsafe code (Cargo.toml denies it everywhere else).
#![allow(unsafe_code)]

use std::ffi::CStr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::sched::CloneFlags;
use nix::unistd::Pid;

pub const MOUNT_ATTR_RDONLY: u64 = 0x1;
pub const MOUNT_ATTR_NOSUID: u64 = 0x2;
pub const MOUNT_ATTR_NODEV: u64 = 0x4;
pub const MOUNT_ATTR_NOEXEC: u64 = 0x8;
pub const MOUNT_ATTR_ATIME: u64 = 0x70;
pub const MOUNT_ATTR_RELATIME: u64 = 0x0;
pub const MOUNT_ATTR_NOATIME: u64 = 0x10;
pub const MOUNT_ATTR_STRICTATIME: u64 = 0x20;
pub const MOUNT_ATTR_NODIRATIME: u64 = 0x80;
pub const MOUNT_ATTR_NOSYMFOLLOW: u64 = 0x200000;

const AT_RECURSIVE: libc::c_uint = 0x8000;

#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// mount_setattr(2) on the mount `fd` refers to (and, with `recursive`, every mount below it):
/// the `r*` mount options, and the read-only bind of the runtime's own binary.
pub fn mount_setattr(fd: &impl AsRawFd, set: u64, clr: u64, recursive: bool) -> nix::Result<()> {
    set_mount_attr(fd, &MountAttr { attr_set: set, attr_clr: clr, propagation: 0, userns_fd: 0 }, recursive)
}

/// Sets the propagation type (`MS_SLAVE`, `MS_PRIVATE`, …) of a mount or detached tree.
pub fn mount_setattr_propagation(fd: &impl AsRawFd, propagation: u64, recursive: bool) -> nix::Result<()> {
    set_mount_attr(fd, &MountAttr { attr_set: 0, attr_clr: 0, propagation, userns_fd: 0 }, recursive)
}

fn set_mount_attr(fd: &impl AsRawFd, attr: &MountAttr, recursive: bool) -> nix::Result<()> {
    let flags = libc::AT_EMPTY_PATH as libc::c_uint | if recursive { AT_RECURSIVE } else { 0 };
    // SAFETY: the path is a NUL-terminated literal, `attr` lives across the call and its size is
    // passed alongside; the kernel only reads it.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_raw_fd(),
            c"".as_ptr(),
            flags,
            attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    Errno::result(ret).map(drop)
}

/// Closes every fd from `first` to `last` (inclusive).
pub fn close_range(first: u32, last: u32) -> nix::Result<()> {
    // SAFETY: integer arguments only; closing fds nobody else in this process uses is the point.
    let ret = unsafe { libc::syscall(libc::SYS_close_range, first, last, 0) };
    Errno::result(ret).map(drop)
}

/// A fork-like clone(2): no new stack, the child continues from this call with a copy of the
/// address space. Returns None in the child.
///
/// The caller must be single-threaded: the child inherits only the calling thread, and any lock
/// another thread held would stay locked forever in the child.
pub fn clone_fork(flags: CloneFlags) -> nix::Result<Option<Pid>> {
    let raw = flags.bits() as libc::c_ulong | libc::SIGCHLD as libc::c_ulong;
    // SAFETY: with a null stack pointer clone behaves like fork; no pointers are passed for
    // the tid/tls arguments. berth runs no threads before this point (design rule).
    let ret = unsafe { libc::syscall(libc::SYS_clone, raw, 0usize, 0usize, 0usize, 0usize) };
    match Errno::result(ret)? {
        0 => Ok(None),
        pid => Ok(Some(Pid::from_raw(pid as i32))),
    }
}

/// `clone_fork`, with the child born into the cgroup2 directory `cgroup` (CLONE_INTO_CGROUP).
/// Born there, it never migrates, so no RCU grace period is waited for (see
/// cgroups::join_self). Same single-thread rule as `clone_fork`.
pub fn clone_fork_into(flags: CloneFlags, cgroup: &impl AsRawFd) -> nix::Result<Option<Pid>> {
    #[repr(C)]
    struct CloneArgs {
        flags: u64,
        pidfd: u64,
        child_tid: u64,
        parent_tid: u64,
        exit_signal: u64,
        stack: u64,
        stack_size: u64,
        tls: u64,
        set_tid: u64,
        set_tid_size: u64,
        cgroup: u64,
    }
    const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;
    let args = CloneArgs {
        flags: flags.bits() as u64 | CLONE_INTO_CGROUP,
        pidfd: 0,
        child_tid: 0,
        parent_tid: 0,
        exit_signal: libc::SIGCHLD as u64,
        stack: 0,
        stack_size: 0,
        tls: 0,
        set_tid: 0,
        set_tid_size: 0,
        cgroup: cgroup.as_raw_fd() as u64,
    };
    // SAFETY: `args` is a fully initialised clone_args of the size passed; a zero stack makes
    // clone3 fork-like, and no pointers are handed to the kernel besides `args` itself.
    let ret = unsafe { libc::syscall(libc::SYS_clone3, &args as *const CloneArgs, std::mem::size_of::<CloneArgs>()) };
    match Errno::result(ret)? {
        0 => Ok(None),
        pid => Ok(Some(Pid::from_raw(pid as i32))),
    }
}

pub fn pidfd_open(pid: Pid) -> nix::Result<OwnedFd> {
    // SAFETY: integer arguments only; on success the kernel returns a new fd we take ownership of.
    let ret = unsafe { libc::syscall(libc::SYS_pidfd_open, pid.as_raw(), 0) };
    let fd = Errno::result(ret)? as RawFd;
    // SAFETY: `fd` was just returned by the kernel and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

pub fn pidfd_send_signal(pidfd: &OwnedFd, signal: i32) -> nix::Result<()> {
    // SAFETY: a valid fd, a signal number, a null siginfo and zero flags.
    let ret = unsafe {
        libc::syscall(libc::SYS_pidfd_send_signal, pidfd.as_raw_fd(), signal, std::ptr::null::<libc::siginfo_t>(), 0)
    };
    Errno::result(ret).map(drop)
}

/// Marks every fd from `first` up close-on-exec, so nothing of the runtime reaches the
/// container's process (CVE-2024-21626 was a leaked directory fd).
pub fn cloexec_from(first: u32) -> nix::Result<()> {
    // SAFETY: integer arguments only.
    let ret = unsafe { libc::syscall(libc::SYS_close_range, first, u32::MAX, libc::CLOSE_RANGE_CLOEXEC) };
    Errno::result(ret).map(drop)
}

/// Lets an fd the caller handed us for the container survive execve.
pub fn clear_cloexec(fd: RawFd) -> nix::Result<()> {
    // SAFETY: fcntl on an integer fd with integer arguments; an fd that is not open gives EBADF.
    let flags = Errno::result(unsafe { libc::fcntl(fd, libc::F_GETFD) })?;
    // SAFETY: as above.
    Errno::result(unsafe { libc::fcntl(fd, libc::F_SETFD, flags & !libc::FD_CLOEXEC) }).map(drop)
}

pub fn join_session_keyring(name: &std::ffi::CStr) -> nix::Result<()> {
    const KEYCTL_JOIN_SESSION_KEYRING: libc::c_int = 1;
    // SAFETY: `name` is a NUL-terminated string that outlives the call.
    let ret = unsafe { libc::syscall(libc::SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, name.as_ptr()) };
    Errno::result(ret).map(drop)
}

pub fn setdomainname(name: &std::ffi::CStr) -> nix::Result<()> {
    // SAFETY: a pointer to `name`'s bytes and their length; the kernel copies them.
    let ret = unsafe { libc::setdomainname(name.as_ptr(), name.to_bytes().len()) };
    Errno::result(ret).map(drop)
}

/// Ends the forked init without running the parent's atexit handlers or flushing buffers it
/// copied from the parent.
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit takes an integer and never returns.
    unsafe { libc::_exit(code) }
}

fn ioctl_int(fd: &impl AsRawFd, request: libc::c_ulong, arg: libc::c_int) -> nix::Result<libc::c_int> {
    // SAFETY: the pty ioctls used here take an int by value (TIOCSCTTY, TIOCGPTPEER) or a
    // pointer to an int we own for the call (TIOCSPTLCK, TIOCGPTN via `ioctl_int_out`).
    Errno::result(unsafe { libc::ioctl(fd.as_raw_fd(), request as _, arg) })
}

fn ioctl_int_out(fd: &impl AsRawFd, request: libc::c_ulong, value: &mut libc::c_int) -> nix::Result<()> {
    // SAFETY: `value` is a live, writable int for the duration of the call.
    Errno::result(unsafe { libc::ioctl(fd.as_raw_fd(), request as _, value as *mut libc::c_int) }).map(drop)
}

/// Unlocks a pty master so its peer can be opened, and returns the pty's number.
pub fn pty_unlock(master: &OwnedFd) -> nix::Result<u32> {
    let mut unlock: libc::c_int = 0;
    ioctl_int_out(master, libc::TIOCSPTLCK as libc::c_ulong, &mut unlock)?;
    let mut number: libc::c_int = 0;
    ioctl_int_out(master, libc::TIOCGPTN as libc::c_ulong, &mut number)?;
    Ok(number as u32)
}

/// Opens the pty's peer (slave) from the master itself, with no path lookup that a container
/// could redirect.
pub fn pty_peer(master: &OwnedFd) -> nix::Result<OwnedFd> {
    let flags = libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC;
    let fd = ioctl_int(master, libc::TIOCGPTPEER as libc::c_ulong, flags)?;
    // SAFETY: the kernel just returned this new fd and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Makes `tty` the calling session leader's controlling terminal.
pub fn set_controlling_tty(tty: &OwnedFd) -> nix::Result<()> {
    ioctl_int(tty, libc::TIOCSCTTY as libc::c_ulong, 0).map(drop)
}

pub fn get_winsize(fd: &impl AsRawFd) -> nix::Result<libc::winsize> {
    let mut ws = libc::winsize { ws_row: 0, ws_col: 0, ws_xpixel: 0, ws_ypixel: 0 };
    // SAFETY: `ws` is a live winsize the kernel fills in.
    Errno::result(unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCGWINSZ as _, &mut ws as *mut libc::winsize) })?;
    Ok(ws)
}

pub fn set_winsize(fd: &impl AsRawFd, ws: &libc::winsize) -> nix::Result<()> {
    // SAFETY: `ws` is a live winsize the kernel only reads.
    Errno::result(unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ as _, ws as *const libc::winsize) }).map(drop)
}

const BPF_PROG_LOAD: libc::c_int = 5;
const BPF_PROG_ATTACH: libc::c_int = 8;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;

#[repr(C)]
#[derive(Default)]
struct BpfProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
}

#[repr(C)]
#[derive(Default)]
struct BpfProgAttachAttr {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
}

/// BPF_PROG_LOAD of a device-cgroup program given as encoded `struct bpf_insn`s; on failure,
/// the errno and the verifier's log.
pub fn bpf_prog_load_cgroup_device(insns: &[u64]) -> Result<OwnedFd, (Errno, String)> {
    let license = c"Apache-2.0";
    let mut log = vec![0u8; 64 * 1024];
    let attr = BpfProgLoadAttr {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: insns.len() as u32,
        insns: insns.as_ptr() as u64,
        license: license.as_ptr() as u64,
        log_level: 1,
        log_size: log.len() as u32,
        log_buf: log.as_mut_ptr() as u64,
        ..Default::default()
    };
    // SAFETY: `attr` points at `insns`, `license` and `log`, all alive across the call; its
    // size is passed so the kernel reads only what we filled in. Each u64 of `insns` is one
    // 8-byte struct bpf_insn.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_PROG_LOAD,
            &attr as *const BpfProgLoadAttr,
            std::mem::size_of::<BpfProgLoadAttr>(),
        )
    };
    match Errno::result(ret) {
        // SAFETY: the kernel returned a new fd owned by nobody else.
        Ok(fd) => Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) }),
        Err(e) => {
            let end = log.iter().position(|b| *b == 0).unwrap_or(0);
            Err((e, String::from_utf8_lossy(&log[..end]).trim().to_string()))
        }
    }
}

/// Attaches a device program to a cgroup directory (no flags: it replaces the one before).
pub fn bpf_prog_attach_cgroup_device(prog: &OwnedFd, cgroup_fd: RawFd) -> nix::Result<()> {
    let attr = BpfProgAttachAttr {
        target_fd: cgroup_fd as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: 0,
    };
    // SAFETY: `attr` is alive across the call and its size is passed.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_PROG_ATTACH,
            &attr as *const BpfProgAttachAttr,
            std::mem::size_of::<BpfProgAttachAttr>(),
        )
    };
    Errno::result(ret).map(drop)
}

/// SECCOMP_FILTER_FLAG_NEW_LISTENER: the kernel returns a user-notification listener fd.
pub const SECCOMP_FILTER_FLAG_NEW_LISTENER: u32 = 8;

/// seccomp(SECCOMP_SET_MODE_FILTER, flags, prog); with SECCOMP_FILTER_FLAG_NEW_LISTENER the
/// kernel returns the notification listener fd.
pub fn seccomp_set_filter(program: &[seccompiler::sock_filter], flags: u32) -> nix::Result<Option<OwnedFd>> {
    const SECCOMP_SET_MODE_FILTER: libc::c_uint = 1;
    let prog = libc::sock_fprog { len: program.len() as u16, filter: program.as_ptr() as *mut libc::sock_filter };
    // SAFETY: `prog` points at `program`, alive for the call; seccompiler's sock_filter has
    // the kernel's layout (u16 code, u8 jt, u8 jf, u32 k).
    let ret =
        unsafe { libc::syscall(libc::SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &prog as *const libc::sock_fprog) };
    let ret = Errno::result(ret)?;
    if flags & SECCOMP_FILTER_FLAG_NEW_LISTENER != 0 {
        // SAFETY: with NEW_LISTENER the return value is a new fd owned by nobody else.
        return Ok(Some(unsafe { OwnedFd::from_raw_fd(ret as RawFd) }));
    }
    Ok(None)
}

const OPEN_TREE_CLONE: libc::c_uint = 1;
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;
const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;

/// open_tree(OPEN_TREE_CLONE): a detached copy of the mount (tree, with `recursive`) at `path`.
pub fn open_tree_clone(path: &std::ffi::CStr, recursive: bool) -> nix::Result<OwnedFd> {
    let flags = OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint | if recursive { AT_RECURSIVE } else { 0 };
    // SAFETY: `path` is NUL-terminated and alive for the call; the result is a new fd.
    let ret = unsafe { libc::syscall(libc::SYS_open_tree, libc::AT_FDCWD, path.as_ptr(), flags) };
    let fd = Errno::result(ret)? as RawFd;
    // SAFETY: the kernel just returned this fd and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Makes a detached mount (tree) show file ownership through the user namespace `userns`.
pub fn mount_setattr_idmap(tree: &OwnedFd, userns: &impl AsRawFd, recursive: bool) -> nix::Result<()> {
    let attr =
        MountAttr { attr_set: MOUNT_ATTR_IDMAP, attr_clr: 0, propagation: 0, userns_fd: userns.as_raw_fd() as u64 };
    set_mount_attr(tree, &attr, recursive)
}

/// Attaches a detached mount onto the object `target` (an O_PATH fd) refers to: no path is
/// resolved again, so nothing can be swapped in between.
pub fn move_mount_to(tree: &OwnedFd, target: &OwnedFd) -> nix::Result<()> {
    const MOVE_MOUNT_T_EMPTY_PATH: libc::c_uint = 0x40;
    // SAFETY: two live fds and two literal empty paths.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree.as_raw_fd(),
            c"".as_ptr(),
            target.as_raw_fd(),
            c"".as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH,
        )
    };
    Errno::result(ret).map(drop)
}

/// A new filesystem of type `fstype`, configured with `strings` (key, value) and `flags`, and
/// mounted nowhere yet: fsopen, fsconfig and fsmount. The detached mount goes where
/// move_mount_to puts it, in whatever mount namespace that caller is in.
pub fn fsmount_detached(fstype: &CStr, strings: &[(&CStr, &CStr)], flags: &[&CStr]) -> nix::Result<OwnedFd> {
    const FSMOUNT_CLOEXEC: libc::c_uint = 1;
    let context = fsopen(fstype)?;
    for (key, value) in strings {
        fsconfig(&context, FSCONFIG_SET_STRING, Some(key), Some(value))?;
    }
    for key in flags {
        fsconfig(&context, FSCONFIG_SET_FLAG, Some(key), None)?;
    }
    fsconfig(&context, FSCONFIG_CMD_CREATE, None, None)?;
    // SAFETY: a live fs context fd and integer flags; the result is a new fd.
    let ret = unsafe { libc::syscall(libc::SYS_fsmount, context.as_raw_fd(), FSMOUNT_CLOEXEC, 0) };
    // SAFETY: as above, a fresh fd owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(Errno::result(ret)? as RawFd) })
}

/// Whether a new filesystem context of type `fstype` accepts `key=value` (fsopen and one
/// fsconfig; nothing is created or mounted).
pub fn fs_takes_string(fstype: &CStr, key: &CStr, value: &CStr) -> bool {
    fsopen(fstype).is_ok_and(|context| fsconfig(&context, FSCONFIG_SET_STRING, Some(key), Some(value)).is_ok())
}

/// fsopen(FSOPEN_CLOEXEC): a new filesystem context of type `fstype`.
fn fsopen(fstype: &CStr) -> nix::Result<OwnedFd> {
    const FSOPEN_CLOEXEC: libc::c_uint = 1;
    // SAFETY: `fstype` is NUL-terminated and alive for the call; the result is a new fd.
    let ret = unsafe { libc::syscall(libc::SYS_fsopen, fstype.as_ptr(), FSOPEN_CLOEXEC) };
    // SAFETY: the kernel just returned this fd and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(Errno::result(ret)? as RawFd) })
}

const FSCONFIG_SET_FLAG: libc::c_uint = 0;
const FSCONFIG_SET_STRING: libc::c_uint = 1;
const FSCONFIG_CMD_CREATE: libc::c_uint = 6;

/// A command takes a key, a value, both or neither; the kernel wants NULL for what it does not
/// take (EINVAL otherwise).
fn fsconfig(context: &OwnedFd, cmd: libc::c_uint, key: Option<&CStr>, value: Option<&CStr>) -> nix::Result<()> {
    let ptr = |s: Option<&CStr>| s.map_or(std::ptr::null(), CStr::as_ptr);
    // SAFETY: a live fd; `key` and `value` are NUL-terminated strings alive for the call, or NULL.
    let ret = unsafe { libc::syscall(libc::SYS_fsconfig, context.as_raw_fd(), cmd, ptr(key), ptr(value), 0) };
    Errno::result(ret).map(drop)
}

/// Sets an extended attribute on an open file or directory (nix has no xattr calls).
pub fn fsetxattr(fd: &impl AsRawFd, name: &std::ffi::CStr, value: &[u8]) -> nix::Result<()> {
    // SAFETY: a live fd, a NUL-terminated name, and a pointer/length pair from one slice.
    let ret = unsafe { libc::fsetxattr(fd.as_raw_fd(), name.as_ptr(), value.as_ptr().cast(), value.len(), 0) };
    Errno::result(ret).map(drop)
}

/// struct sched_attr as sched_setattr(2) takes it, up to the utilization clamps
/// (SCHED_ATTR_SIZE_VER1): libc's copy stops before them.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SchedAttr {
    pub size: u32,
    pub policy: u32,
    pub flags: u64,
    pub nice: i32,
    pub priority: u32,
    pub runtime: u64,
    pub deadline: u64,
    pub period: u64,
    pub util_min: u32,
    pub util_max: u32,
}

/// sched_setattr(2) on the calling thread.
pub fn sched_setattr(attr: &SchedAttr) -> nix::Result<()> {
    let attr = SchedAttr { size: std::mem::size_of::<SchedAttr>() as u32, ..*attr };
    // SAFETY: `attr` is a fully initialised sched_attr whose size field says how much of it
    // the kernel may read; it lives across the call. pid 0 is the caller, flags must be 0.
    let ret = unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &attr as *const SchedAttr, 0) };
    Errno::result(ret).map(drop)
}

/// ioprio_set(IOPRIO_WHO_PROCESS, 0 = the caller, value).
pub fn ioprio_set_self(value: i32) -> nix::Result<()> {
    const IOPRIO_WHO_PROCESS: libc::c_int = 1;
    // SAFETY: integer arguments only.
    let ret = unsafe { libc::syscall(libc::SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0, value) };
    Errno::result(ret).map(drop)
}

/// The bits of a node mask set_mempolicy and get_mempolicy pass: 1024 nodes, the kernel's
/// largest MAX_NUMNODES.
pub const NODE_MASK_BITS: usize = 1024;
pub type NodeMask = [libc::c_ulong; NODE_MASK_BITS / libc::c_ulong::BITS as usize];

/// set_mempolicy(2) for the calling thread: `mode` with its MPOL_F_* flags ORed in.
pub fn set_mempolicy(mode: i32, nodes: &NodeMask) -> nix::Result<()> {
    // SAFETY: `nodes` is a live array of NODE_MASK_BITS bits; maxnode tells the kernel how
    // many it may read (it reads maxnode - 1 bits, hence the + 1).
    let ret = unsafe { libc::syscall(libc::SYS_set_mempolicy, mode, nodes.as_ptr(), NODE_MASK_BITS + 1) };
    Errno::result(ret).map(drop)
}

/// get_mempolicy(2) for the calling thread's own policy: its mode (with flags) and nodes.
pub fn get_mempolicy() -> nix::Result<(i32, NodeMask)> {
    let mut mode: libc::c_int = 0;
    let mut nodes: NodeMask = [0; NODE_MASK_BITS / libc::c_ulong::BITS as usize];
    // SAFETY: `mode` and `nodes` are live and writable, `nodes` holds maxnode bits; a null
    // address and zero flags ask for the thread's policy.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_get_mempolicy,
            &mut mode as *mut libc::c_int,
            nodes.as_mut_ptr(),
            NODE_MASK_BITS + 1,
            std::ptr::null::<libc::c_void>(),
            0,
        )
    };
    Errno::result(ret).map(|_| (mode, nodes))
}

/// personality(2): sets the execution domain and flags; returns the previous ones. The
/// query value 0xffffffff changes nothing.
pub fn personality(persona: u32) -> nix::Result<u32> {
    // SAFETY: an integer argument only; -1 is the error return.
    let ret = unsafe { libc::personality(persona as libc::c_ulong) };
    Errno::result(ret).map(|p| p as u32)
}

/// accept4(SOCK_CLOEXEC) on a listening socket, again after EINTR; the connection is ours.
pub fn accept_cloexec(listener: &OwnedFd) -> nix::Result<OwnedFd> {
    loop {
        match nix::sys::socket::accept4(listener.as_raw_fd(), nix::sys::socket::SockFlag::SOCK_CLOEXEC) {
            // SAFETY: accept4 returned a new fd that nothing else owns.
            Ok(fd) => return Ok(unsafe { OwnedFd::from_raw_fd(fd) }),
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
        }
    }
}

/// recvmsg of one packet into `buf`, again after EINTR, with the first fd it carried
/// (SCM_RIGHTS, received close-on-exec). Returns the bytes read (0: the peer closed).
pub fn recv_with_fd(socket: &OwnedFd, buf: &mut [u8]) -> nix::Result<(usize, Option<OwnedFd>)> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    let mut space = nix::cmsg_space!([RawFd; 1]);
    loop {
        let mut iov = [std::io::IoSliceMut::new(buf)];
        let msg = match recvmsg::<()>(socket.as_raw_fd(), &mut iov, Some(&mut space), MsgFlags::MSG_CMSG_CLOEXEC) {
            Err(Errno::EINTR) => continue,
            received => received?,
        };
        let mut fd = None;
        for c in msg.cmsgs()? {
            if let ControlMessageOwned::ScmRights(fds) = c {
                // SAFETY: SCM_RIGHTS installed these fds in our table; we own them now.
                fd = fds.first().map(|f| unsafe { OwnedFd::from_raw_fd(*f) });
            }
        }
        return Ok((msg.bytes, fd));
    }
}

/// Whether `fd` is open in this process (F_GETFD does not say EBADF).
pub fn fd_is_open(fd: RawFd) -> bool {
    // SAFETY: F_GETFD only reads the flags of whatever `fd` is, if anything.
    let ret = unsafe { libc::fcntl(fd, libc::F_GETFD) };
    ret != -1 || Errno::last() != Errno::EBADF
}

/// What a signal number means, as strsignal(3) says it ("Bad system call").
pub fn signal_description(signal: i32) -> String {
    // SAFETY: strsignal returns a pointer to a static or thread-local NUL-terminated string,
    // read at once and copied.
    let text = unsafe { CStr::from_ptr(libc::strsignal(signal)) };
    text.to_string_lossy().into_owned()
}

/// prlimit(2) on this process. nix's setrlimit cannot take every resource number the runtime
/// spec names (RLIMIT_RTTIME, for one), so the number is passed as given.
pub fn set_rlimit(resource: i32, soft: u64, hard: u64) -> nix::Result<()> {
    let limit = libc::rlimit { rlim_cur: soft, rlim_max: hard };
    // SAFETY: prlimit on ourselves (pid 0) with a pointer to a live rlimit and no old-value
    // pointer.
    let ret = unsafe { libc::prlimit(0, resource as _, &limit, std::ptr::null_mut()) };
    Errno::result(ret).map(drop)
}
