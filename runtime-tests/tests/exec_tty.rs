//! exec into running containers, terminals through the console socket, and stdio.

use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::Path;

use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
use runtime_tests::*;
use serde_json::json;

fn running(name: &str) -> Bundle {
    let mut b = Bundle::new(name);
    b.sh("sleep 300");
    let out = b.run_detached(&[]);
    assert!(out.status.success(), "{}", stderr(&out));
    b
}

fn exec(b: &Bundle, args: &[&str]) -> std::process::Output {
    let mut cmd = b.berth();
    cmd.arg("exec").args(args);
    cmd.output().unwrap()
}

#[test]
fn exec_shares_the_containers_namespaces_cgroup_and_filter() {
    let b = running("execns");
    let script = "for n in pid net ipc uts mnt cgroup user; do readlink /proc/self/ns/$n; readlink /proc/1/ns/$n; done; \
                  cat /proc/self/cgroup; echo ==; cat /proc/1/cgroup; grep ^Seccomp: /proc/self/status; grep ^Seccomp: /proc/1/status";
    let out = exec(&b, &[&b.id, "sh", "-c", script]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    for pair in lines[..14].chunks(2) {
        assert_eq!(pair[0], pair[1], "exec is not in the init's namespace");
    }
    let (mine, rest) = text.split_once("==\n").unwrap();
    let mine_cg: Vec<&str> = mine.lines().skip(14).collect();
    let init_cg: Vec<&str> = rest.lines().take(mine_cg.len()).collect();
    assert_eq!(mine_cg, init_cg);
    let seccomp: Vec<&str> = rest.lines().skip(mine_cg.len()).collect();
    assert_eq!(seccomp[0], seccomp[1]);
    let host = std::fs::read_link("/proc/self/ns/mnt").unwrap();
    assert_ne!(lines[8], host.to_str().unwrap());
}

/// --env KEY=VALUE replaces the container's KEY (the process sees it once); a --process file
/// without a user is accepted and runs as the container's own process does.
#[test]
fn exec_env_replaces_and_a_process_without_user_runs_as_the_containers() {
    let mut b = Bundle::new("execenv");
    b.config["process"]["env"] = json!(["PATH=/bin", "FOO=old"]);
    b.config["process"]["user"] = json!({"uid": 1000, "gid": 1000});
    b.sh("sleep 300");
    assert!(b.run_detached(&[]).status.success());
    // env itself, not a shell: a shell keeps only one of two FOO= it is given.
    let out = exec(&b, &["--env", "FOO=new", &b.id, "env"]);
    let text = stdout(&out);
    let foo: Vec<&str> = text.lines().filter(|l| l.starts_with("FOO=")).collect();
    assert_eq!(foo, ["FOO=new"], "{}", stderr(&out));
    let process = b.dir.join("process-without-user.json");
    std::fs::write(&process, r#"{"args": ["id", "-u"], "cwd": "/", "env": ["PATH=/bin"]}"#).unwrap();
    let out = exec(&b, &["--process", process.to_str().unwrap(), &b.id]);
    assert!(out.status.success(), "{}", stderr(&out));
    if runtime_is_runc() {
        return skip("deliberate difference: runc 1.1.5 runs a process file without a user as 0:0");
    }
    assert_eq!(stdout(&out), "1000\n");
}

#[test]
fn exec_flags_take_effect() {
    let b = running("execflags");
    let out = exec(
        &b,
        &[
            "--user",
            "1000:1001",
            "--cwd",
            "/tmp",
            "--env",
            "FOO=bar",
            "-g",
            "7",
            &b.id,
            "sh",
            "-c",
            "id -u; id -g; id -G; pwd; echo $FOO",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "1000\n1001\n1001 7\n/tmp\nbar\n");
    let out = exec(&b, &["--cap", "CAP_SYS_ADMIN", &b.id, "grep", "CapEff", "/proc/self/status"]);
    let eff = u64::from_str_radix(status_field(&stdout(&out), "CapEff").as_str(), 16).unwrap();
    assert!(eff & (1 << 21) != 0, "CAP_SYS_ADMIN missing: {eff:x}");
    let out = exec(&b, &["--no-new-privs", &b.id, "grep", "NoNewPrivs", "/proc/self/status"]);
    assert_eq!(status_field(&stdout(&out), "NoNewPrivs"), "1");
}

#[test]
fn exec_exit_codes_and_errors() {
    let b = running("execcodes");
    assert_eq!(exec(&b, &[&b.id, "sh", "-c", "exit 5"]).status.code(), Some(5));
    assert_eq!(exec(&b, &[&b.id, "sh", "-c", "kill -9 $$"]).status.code(), Some(137));
    // An exec that never ran exits 255, as runc's; the message says why.
    let out = exec(&b, &[&b.id, "no-such-program"]);
    assert_eq!(out.status.code(), Some(255));
    assert!(stderr(&out).contains("executable file not found"), "{}", stderr(&out));
    let not_executable = exec(&b, &[&b.id, "/etc/passwd"]);
    assert_eq!(not_executable.status.code(), Some(255));
    assert!(stderr(&not_executable).contains("permission denied"), "{}", stderr(&not_executable));
    assert_eq!(exec(&b, &["--pid-file", "/non-existent/directory", &b.id, "true"]).status.code(), Some(255));
    assert_eq!(exec(&b, &["no-such-container", "true"]).status.code(), Some(255));
}

#[test]
fn exec_detached_writes_pid_file() {
    let b = running("execdetach");
    let pid_file = b.dir.join("exec.pid");
    let mut cmd = b.berth();
    cmd.args(["exec", "--detach", "--pid-file"]).arg(&pid_file).args([&b.id, "sleep", "300"]);
    let out = b.detached(cmd);
    assert!(out.status.success(), "{}", stderr(&out));
    let pid: i32 = std::fs::read_to_string(&pid_file).unwrap().trim().parse().unwrap();
    let init = b.state()["pid"].as_i64().unwrap();
    let ns = |p: i64| std::fs::read_link(format!("/proc/{p}/ns/pid")).unwrap();
    assert_eq!(ns(pid as i64), ns(init));
    let cmdline = std::fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap();
    assert!(cmdline.starts_with("sleep\x00300"), "{cmdline:?}");
}

#[test]
fn exec_with_process_json() {
    let b = running("execprocess");
    let process = json!({"args": ["sh", "-c", "echo $A; pwd"], "env": ["A=from-json", "PATH=/bin"], "cwd": "/dev",
                         "user": {"uid": 0, "gid": 0}});
    let file = b.dir.join("process.json");
    std::fs::write(&file, process.to_string()).unwrap();
    let out = exec(&b, &["--process", file.to_str().unwrap(), &b.id]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "from-json\n/dev\n");
}

#[test]
fn exec_into_stopped_and_paused_containers_fails() {
    let mut b = Bundle::new("execstopped");
    b.sh("true");
    assert!(b.run_detached(&[]).status.success());
    b.wait_status("stopped");
    let out = exec(&b, &[&b.id, "true"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("cannot exec in a stopped container"), "{}", stderr(&out));

    let p = running("execpaused");
    assert!(p.cmd(&["pause", &p.id]).status.success());
    assert_eq!(p.status(), "paused");
    let out = exec(&p, &[&p.id, "true"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("paused"), "{}", stderr(&out));
    assert!(p.cmd(&["resume", &p.id]).status.success());
    assert_eq!(p.status(), "running");
    assert!(exec(&p, &[&p.id, "true"]).status.success());
}

#[test]
fn pause_freezes_every_process() {
    let mut b = Bundle::new("pause");
    b.sh("while true; do echo x >> /tmp/ticks; sleep 0.05; done");
    b.config["root"]["readonly"] = json!(false);
    assert!(b.run_detached(&[]).status.success());
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(b.cmd(&["pause", &b.id]).status.success());
    let ticks = b.dir.join("rootfs/tmp/ticks");
    let before = std::fs::read_to_string(&ticks).unwrap().len();
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(std::fs::read_to_string(&ticks).unwrap().len(), before, "a paused container made progress");
    let procs = std::fs::read_to_string(b.cgroup_dir("freezer").join("cgroup.procs")).unwrap();
    for pid in procs.lines() {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let state = stat.rsplit(')').next().unwrap_or("").split_whitespace().next().unwrap_or("");
        assert!(state == "D" || state == "S" || state == "T", "pid {pid} in state {state}");
    }
    let again = b.cmd(&["pause", &b.id]);
    assert!(!again.status.success(), "pausing a paused container must fail");
    assert!(b.cmd(&["resume", &b.id]).status.success());
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(std::fs::read_to_string(&ticks).unwrap().len() > before, "resume did not thaw");
    std::fs::remove_file(&ticks).ok();
}

#[test]
fn piped_stdin_and_separate_stdout_stderr() {
    let b = running("execpipe");
    let mut child = b
        .berth()
        .args(["exec", &b.id, "sh", "-c", "cat; echo to-err >&2"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(b"hi\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(stdout(&out), "hi\n");
    assert_eq!(stderr(&out), "to-err\n");
}

/// Accepts one connection and reads one message: the pty's name and exactly one fd. Gives up
/// after 30 s (a runtime that fails before connecting would leave the test waiting forever).
fn receive_pty(listener: &UnixListener) -> (String, OwnedFd) {
    listener.set_nonblocking(true).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let conn = loop {
        match listener.accept() {
            Ok((conn, _)) => break conn,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock && std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            Err(e) => panic!("no connection on the console socket: {e}"),
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
    let n = msg.bytes;
    assert_eq!(fds.len(), 1, "want exactly one fd");
    let name = String::from_utf8_lossy(&buf[..n]).into_owned();
    // SAFETY: SCM_RIGHTS installed this fd in our table; we are its only owner.
    (name, unsafe { OwnedFd::from_raw_fd(fds[0]) })
}

fn is_pty_master(fd: &OwnedFd) -> bool {
    let mut n: libc::c_int = 0;
    // SAFETY: TIOCGPTN writes one int, which `n` is; it succeeds only on a pty master.
    unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCGPTN as _, &mut n) == 0 }
}

/// Writes `input` to the master and reads until the other side closes.
fn converse(master: OwnedFd, input: &[u8]) -> String {
    nix::unistd::write(&master, input).unwrap();
    let mut file = std::fs::File::from(master);
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match file.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn listener(b: &Bundle) -> (UnixListener, std::path::PathBuf) {
    let path = b.dir.join("console.sock");
    (UnixListener::bind(&path).unwrap(), path)
}

#[test]
fn console_socket_receives_the_init_pty() {
    let mut b = Bundle::new("console");
    b.config["process"]["terminal"] = json!(true);
    b.config["process"]["consoleSize"] = json!({"height": 30, "width": 100});
    b.config["process"]["args"] = json!(["sh"]);
    let (listener, sock) = listener(&b);
    b.save();
    let mut cmd = b.berth();
    cmd.args(["create", "--console-socket"]).arg(&sock).arg("--bundle").arg(&b.dir).arg(&b.id);
    let creator = std::thread::spawn(move || cmd.status().unwrap());
    let (name, master) = receive_pty(&listener);
    assert!(creator.join().unwrap().success());
    // The name is informative only (engines ignore it): berth sends the slave's, runc the
    // master's (/dev/ptmx).
    let want = if runtime_is_runc() { "/dev/" } else { "/dev/pts/" };
    assert!(name.starts_with(want), "{name}");
    assert!(is_pty_master(&master));
    assert!(b.cmd(&["start", &b.id]).status.success());
    let out = converse(master, b"tty; stty size; exit\n");
    assert!(out.contains("/dev/console") || out.contains("/dev/pts/0"), "{out}");
    assert!(out.contains("30 100"), "{out}");
}

#[test]
fn exec_tty_through_console_socket() {
    let b = running("exectty");
    let (listener, sock) = listener(&b);
    let process = json!({"terminal": true, "consoleSize": {"height": 12, "width": 34},
                         "args": ["sh", "-c", "tty; stty size"], "env": ["PATH=/bin"], "cwd": "/", "user": {"uid": 0, "gid": 0}});
    let file = b.dir.join("process.json");
    std::fs::write(&file, process.to_string()).unwrap();
    let mut cmd = b.berth();
    cmd.args(["exec", "--detach", "--tty", "--console-socket"]).arg(&sock).arg("--process").arg(&file).arg(&b.id);
    let execer = std::thread::spawn(move || cmd.output().unwrap());
    let (_, master) = receive_pty(&listener);
    let out = execer.join().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(is_pty_master(&master));
    let text = converse(master, b"");
    assert!(text.contains("/dev/pts/"), "{text}");
    assert!(text.contains("12 34"), "{text}");
}

/// The pty goes to the process's user but keeps devpts' tty group (gid 5), as runc leaves it.
#[test]
fn pty_keeps_the_tty_group() {
    let b = running("ttyowner");
    let (listener, sock) = listener(&b);
    let process = json!({"terminal": true, "args": ["sh", "-c", "stat -c '%u %g' $(tty)"],
                         "env": ["PATH=/bin"], "cwd": "/", "user": {"uid": 1000, "gid": 1000}});
    let file = b.dir.join("process.json");
    std::fs::write(&file, process.to_string()).unwrap();
    let mut cmd = b.berth();
    cmd.args(["exec", "--detach", "--tty", "--console-socket"]).arg(&sock).arg("--process").arg(&file).arg(&b.id);
    let execer = std::thread::spawn(move || cmd.output().unwrap());
    let (_, master) = receive_pty(&listener);
    let out = execer.join().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = converse(master, b"");
    assert_eq!(text.trim_end(), "1000 5", "pty owner and group");
}

#[test]
fn foreground_run_relays_a_terminal() {
    let mut b = Bundle::new("relay");
    b.config["process"]["terminal"] = json!(true);
    b.sh("tty; echo relayed");
    b.save();
    // python's pty.spawn gives berth a terminal of its own to relay.
    let script = format!(
        "import pty, sys; sys.exit(pty.spawn([{:?}, '--root', {:?}, 'run', '--bundle', {:?}, {:?}]) >> 8)",
        berth_bin().to_str().unwrap(),
        b.root.to_str().unwrap(),
        b.dir.to_str().unwrap(),
        b.id
    );
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let text = stdout(&out);
    assert!(text.contains("relayed"), "{text} {}", stderr(&out));
    assert!(text.contains("/dev/"), "{text}");
    // The caller's terminal is raw while berth relays: the container's pty adds the "\r".
    assert!(text.contains("relayed\r\n") && !text.contains("\r\r\n"), "{text:?}");
    assert!(out.status.success(), "{text} {}", stderr(&out));
    b.assert_nothing_left();
    assert!(!Path::new(&b.dir.join("state").join(&b.id)).exists());
    if runtime_is_runc() {
        return skip("berth only: runc refuses a terminal without a controlling terminal to relay");
    }
    // Output to a pipe: ONLCR off, the bytes arrive as the process wrote them.
    let out = b.berth().args(["run", "--bundle"]).arg(&b.dir).arg(&b.id).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).ends_with("relayed\n") && !stdout(&out).contains('\r'), "{:?}", stdout(&out));
}
