//! The six OCI hook points. A hook is a program run with the container's state JSON on stdin,
//! its own args and env, and an optional timeout. Its output is captured (in a memfd, so no
//! thread or pipe deadlock) and quoted in the error when it fails.

use std::io::{Read, Seek, Write};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::memfd::{memfd_create, MFdFlags};
use oci_spec::runtime::Hook;

use crate::error::{Error, Result};

#[derive(Clone, Copy, Debug)]
pub enum HookPoint {
    Prestart,
    CreateRuntime,
    CreateContainer,
    StartContainer,
    Poststart,
    Poststop,
}

impl HookPoint {
    pub const ALL: [HookPoint; 6] = [
        HookPoint::Prestart,
        HookPoint::CreateRuntime,
        HookPoint::CreateContainer,
        HookPoint::StartContainer,
        HookPoint::Poststart,
        HookPoint::Poststop,
    ];

    pub fn name(self) -> &'static str {
        match self {
            HookPoint::Prestart => "prestart",
            HookPoint::CreateRuntime => "createRuntime",
            HookPoint::CreateContainer => "createContainer",
            HookPoint::StartContainer => "startContainer",
            HookPoint::Poststart => "poststart",
            HookPoint::Poststop => "poststop",
        }
    }

    pub fn of(self, hooks: &oci_spec::runtime::Hooks) -> &[Hook] {
        let list = match self {
            HookPoint::Prestart => hooks.prestart(),
            HookPoint::CreateRuntime => hooks.create_runtime(),
            HookPoint::CreateContainer => hooks.create_container(),
            HookPoint::StartContainer => hooks.start_container(),
            HookPoint::Poststart => hooks.poststart(),
            HookPoint::Poststop => hooks.poststop(),
        };
        list.as_deref().unwrap_or_default()
    }
}

/// Runs every hook of `point` in order; the first failure stops the rest.
pub fn run(point: HookPoint, hooks: Option<&oci_spec::runtime::Hooks>, state_json: &str) -> Result<()> {
    for hook in hooks.map(|h| point.of(h)).unwrap_or_default() {
        run_one(point, hook, state_json)?;
    }
    Ok(())
}

/// For the points where the spec says a failure is only a warning (poststart, poststop).
pub fn run_warn(point: HookPoint, hooks: Option<&oci_spec::runtime::Hooks>, state_json: &str) {
    for hook in hooks.map(|h| point.of(h)).unwrap_or_default() {
        if let Err(e) = run_one(point, hook, state_json) {
            crate::logging::warn(&e.to_string());
        }
    }
}

fn run_one(point: HookPoint, hook: &Hook, state_json: &str) -> Result<()> {
    let fail = |reason: String| Error::Hook { hook: point.name(), path: hook.path().clone(), reason };
    let output = memfd_create("berth-hook-output", MFdFlags::MFD_CLOEXEC).map_err(|e| fail(format!("memfd: {e}")))?;
    let mut output = std::fs::File::from(output);
    let args = hook.args().as_deref().unwrap_or_default();
    let mut cmd = Command::new(hook.path());
    if let Some(argv0) = args.first() {
        cmd.arg0(argv0);
    }
    cmd.args(args.iter().skip(1))
        .env_clear()
        .envs(hook.env().iter().flatten().filter_map(|kv| kv.split_once('=')))
        .stdin(Stdio::piped())
        .stdout(output.try_clone().map_err(|e| fail(e.to_string()))?)
        .stderr(output.try_clone().map_err(|e| fail(e.to_string()))?);
    let mut child = cmd.spawn().map_err(|e| fail(format!("start: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that does not read its stdin closes the pipe early; that is not a failure.
        let _ = stdin.write_all(state_json.as_bytes());
    }
    let timeout = hook.timeout().filter(|t| *t > 0).map(|t| Duration::from_secs(t as u64));
    let status = wait_with_timeout(&mut child, timeout).map_err(|e| fail(e.to_string()))?;
    let Some(status) = status else {
        let _ = child.kill();
        let _ = child.wait();
        return Err(fail(format!("timed out after {}s", timeout.unwrap_or_default().as_secs())));
    };
    if status.success() {
        return Ok(());
    }
    let mut text = String::new();
    let _ = output.rewind();
    let _ = output.read_to_string(&mut text);
    let text = text.trim();
    let status = describe(status);
    Err(fail(if text.is_empty() { status } else { format!("{status}: {text}") }))
}

/// "exit status 3", or the signal by what it means ("signal: bad system call"), as runc words
/// it: a hook killed by the container's seccomp filter then says so.
fn describe(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    let Some(signal) = status.signal() else { return status.to_string() };
    format!("signal: {}", crate::sys::signal_description(signal).to_lowercase())
}

fn wait_with_timeout(
    child: &mut std::process::Child,
    timeout: Option<Duration>,
) -> std::io::Result<Option<std::process::ExitStatus>> {
    let Some(timeout) = timeout else {
        return child.wait().map(Some);
    };
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_micros(200);
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        if Instant::now() >= deadline {
            return Ok(None);
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hook(json: &str) -> Hook {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn a_signalled_hook_says_which_signal_in_words() {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(describe(std::process::ExitStatus::from_raw(libc::SIGSYS)), "signal: bad system call");
        assert_eq!(describe(std::process::ExitStatus::from_raw(3 << 8)), "exit status: 3");
    }

    #[test]
    fn hook_gets_state_and_args() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("out");
        let h = hook(&format!(
            r#"{{"path":"/bin/sh","args":["sh","-c","cat > {} && echo $X >> {}"],"env":["X=42"]}}"#,
            out.display(),
            out.display()
        ));
        run_one(HookPoint::Prestart, &h, "{\"id\":\"c\"}").unwrap();
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "{\"id\":\"c\"}42\n");
    }

    #[test]
    fn failure_and_timeout_are_errors() {
        let h = hook(r#"{"path":"/bin/sh","args":["sh","-c","echo broken >&2; exit 3"]}"#);
        let e = run_one(HookPoint::CreateRuntime, &h, "{}").unwrap_err().to_string();
        assert!(e.contains("createRuntime") && e.contains("broken"), "{e}");
        let h = hook(r#"{"path":"/bin/sleep","args":["sleep","5"],"timeout":1}"#);
        let e = run_one(HookPoint::Prestart, &h, "{}").unwrap_err().to_string();
        assert!(e.contains("timed out"), "{e}");
    }
}
