//! `--pidfd-socket` on create, run and exec (runc 1.2): the engine receives a pidfd of the
//! container's process in one SCM_RIGHTS message and can wait on it, with no pid to race.
//!
//! runc 1.1.5 has no --pidfd-socket.

use std::io::IoSliceMut;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::PathBuf;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
use runtime_tests::*;

const RUNC_LACKS: &str = "runc 1.1.5 has no --pidfd-socket (runc 1.2 added it)";

/// Listens on a socket in the bundle; `receive` takes one message: (data, the fd).
struct Engine {
    path: PathBuf,
    listener: UnixListener,
}

impl Engine {
    fn new(b: &Bundle) -> Engine {
        let path = b.dir.join("pidfd.sock");
        let listener = UnixListener::bind(&path).unwrap();
        listener.set_nonblocking(false).unwrap();
        Engine { path, listener }
    }

    fn receive(&self) -> (String, OwnedFd) {
        let (conn, _) = self.listener.accept().unwrap();
        let mut data = [0u8; 4096];
        let mut iov = [IoSliceMut::new(&mut data)];
        let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
        let msg = recvmsg::<()>(conn.as_raw_fd(), &mut iov, Some(&mut space), MsgFlags::empty()).unwrap();
        let mut fd = None;
        for c in msg.cmsgs().unwrap() {
            if let ControlMessageOwned::ScmRights(fds) = c {
                assert_eq!(fds.len(), 1, "want exactly one fd");
                // SAFETY: SCM_RIGHTS just installed this fd in our table; nothing else owns it.
                fd = Some(unsafe { OwnedFd::from_raw_fd(fds[0]) });
            }
        }
        let n = msg.bytes;
        (String::from_utf8_lossy(&data[..n]).into_owned(), fd.expect("no fd in the message"))
    }
}

/// The pid a pidfd refers to, from its fdinfo.
fn pidfd_pid(fd: &OwnedFd) -> i32 {
    let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{}", fd.as_raw_fd())).unwrap();
    status_field(&info, "Pid").parse().unwrap()
}

/// Whether the process exits within `ms` (a pidfd becomes readable when it does).
fn exits_within(fd: &OwnedFd, ms: u16) -> bool {
    let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
    poll(&mut fds, PollTimeout::from(ms)).unwrap() == 1
}

#[test]
fn create_sends_the_init_and_it_can_be_waited_on() {
    if runtime_is_runc() {
        return skip(RUNC_LACKS);
    }
    let mut b = Bundle::new("pidfdcreate");
    b.sh("sleep 300");
    b.save();
    let engine = Engine::new(&b);
    let path = engine.path.clone();
    let waiter = std::thread::spawn(move || engine.receive());
    let mut cmd = b.berth();
    cmd.args(["create", "--pidfd-socket"]).arg(&path).arg("--bundle").arg(&b.dir).arg(&b.id);
    let out = b.detached(cmd);
    assert!(out.status.success(), "{}", stderr(&out));
    let (kind, pidfd) = waiter.join().unwrap();
    assert_eq!(kind, "standard");
    assert_eq!(pidfd_pid(&pidfd), b.state()["pid"].as_i64().unwrap() as i32);
    assert!(!exits_within(&pidfd, 100), "the pidfd says the init is gone");
    assert!(b.cmd(&["kill", &b.id, "KILL"]).status.success());
    assert!(exits_within(&pidfd, 10_000), "the pidfd never saw the init exit");
}

#[test]
fn run_and_exec_send_their_process() {
    if runtime_is_runc() {
        return skip(RUNC_LACKS);
    }
    let mut b = Bundle::new("pidfdrun");
    b.sh("sleep 300");
    let engine = Engine::new(&b);
    let path = engine.path.clone();
    let waiter = std::thread::spawn(move || {
        let first = engine.receive();
        (first, engine)
    });
    let out = b.run_detached(&["--pidfd-socket", path.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let ((kind, init), engine) = waiter.join().unwrap();
    assert_eq!(kind, "standard");
    assert_eq!(pidfd_pid(&init), b.state()["pid"].as_i64().unwrap() as i32);

    let waiter = std::thread::spawn(move || engine.receive());
    let pid_file = b.dir.join("exec.pid");
    let mut cmd = b.berth();
    cmd.args(["exec", "--detach", "--pidfd-socket"]).arg(&path).arg("--pid-file").arg(&pid_file);
    cmd.args([&b.id, "sh", "-c", "sleep 1; exit 3"]);
    let out = b.detached(cmd);
    assert!(out.status.success(), "{}", stderr(&out));
    let (kind, exec) = waiter.join().unwrap();
    assert_eq!(kind, "setns");
    assert_eq!(pidfd_pid(&exec), std::fs::read_to_string(&pid_file).unwrap().trim().parse::<i32>().unwrap());
    assert!(exits_within(&exec, 10_000), "the pidfd never saw the exec'd process exit");
    assert!(!exits_within(&init, 0), "the init's pidfd fired for the exec'd process");
}

#[test]
fn a_socket_nobody_listens_on_is_refused_before_anything_exists() {
    if runtime_is_runc() {
        return skip(RUNC_LACKS);
    }
    let mut b = Bundle::new("pidfdbad");
    b.sh("true");
    b.save();
    let mut cmd = b.berth();
    cmd.args(["create", "--pidfd-socket"]).arg(b.dir.join("nobody.sock")).arg("--bundle").arg(&b.dir).arg(&b.id);
    let out = b.detached(cmd);
    assert!(!out.status.success());
    assert_eq!(stderr(&out).trim().lines().count(), 1, "{}", stderr(&out));
    assert!(stderr(&out).contains("pidfd socket"), "{}", stderr(&out));
    b.assert_nothing_left();
}
