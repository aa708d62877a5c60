//! The six hook points: order, the state on stdin, and a failing create-time hook undoing
//! everything create made.

use runtime_tests::*;
use serde_json::json;

/// A hook that appends "<name> <status> <id>" from its stdin to `log`. The log's directory is
/// bind-mounted at the same path inside the container, so the path holds in both views.
fn logging_hook(name: &str, log: &std::path::Path) -> serde_json::Value {
    let script = format!(
        "read s; st=$(echo \"$s\" | sed 's/.*\"status\":\"\\([a-z]*\\)\".*/\\1/'); id=$(echo \"$s\" | sed 's/.*\"id\":\"\\([^\"]*\\)\".*/\\1/'); echo {name} $st $id $HOOKVAR >> {}",
        log.display()
    );
    json!({"path": "/bin/sh", "args": ["sh", "-c", script], "env": ["HOOKVAR=v"]})
}

#[test]
fn hooks_run_in_order_with_state_on_stdin() {
    let mut b = Bundle::new("hooks");
    let logdir = b.dir.join("hooklog");
    std::fs::create_dir_all(&logdir).unwrap();
    let log = logdir.join("log");
    let mut hooks = serde_json::Map::new();
    for point in ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"] {
        hooks.insert(point.into(), json!([logging_hook(point, &log)]));
    }
    b.config["hooks"] = serde_json::Value::Object(hooks);
    b.config["root"]["readonly"] = json!(false);
    b.config["mounts"].as_array_mut().unwrap().push(json!({
        "destination": logdir, "type": "bind", "source": logdir, "options": ["bind"]
    }));
    b.sh(&format!("echo process >> {}", log.display()));
    b.run_ok();
    let text = std::fs::read_to_string(&log).unwrap();
    let id = &b.id;
    let want = [
        format!("prestart creating {id} v"),
        format!("createRuntime creating {id} v"),
        format!("createContainer created {id} v"),
        format!("startContainer created {id} v"),
        format!("poststart running {id} v"),
        "process".to_string(),
        format!("poststop stopped {id} v"),
    ];
    let got: Vec<&str> = text.lines().collect();
    // The process and poststart race (poststart follows the exec, not the process's output):
    // check the hook order and that the process ran between startContainer and poststop.
    let mut hooks_only: Vec<&str> = got.iter().copied().filter(|l| *l != "process").collect();
    let mut want_hooks: Vec<&str> = want.iter().map(String::as_str).filter(|l| *l != "process").collect();
    if runtime_is_runc() {
        // runc 1.1.5 runs poststart as soon as it has released the init, so it may come before
        // startContainer and sees "created"; and it gives createContainer "creating".
        skip("poststart after the process starts, seeing running: deliberate difference, runc 1.1.5 may run it first");
        skip("createContainer seeing created: deliberate difference, runc 1.1.5 passes creating");
        assert!(hooks_only.contains(&format!("poststart created {id} v").as_str()), "{text}");
        let comparable = |l: &&str| !l.starts_with("poststart") && !l.starts_with("createContainer");
        hooks_only.retain(comparable);
        want_hooks.retain(comparable);
        assert!(got.contains(&format!("createContainer creating {id} v").as_str()), "{text}");
    }
    assert_eq!(hooks_only, want_hooks, "{text}");
    let pos = |s: &str| got.iter().position(|l| l.starts_with(s)).unwrap();
    assert!(pos("startContainer") < pos("process") && pos("process") < pos("poststop"), "{text}");
}

#[test]
fn failing_create_hook_fails_create_and_leaves_nothing() {
    for point in ["prestart", "createRuntime", "createContainer"] {
        let mut b = Bundle::new("hookfail");
        b.config["hooks"] =
            json!({ point: [{"path": "/bin/sh", "args": ["sh", "-c", "echo hook-said-no >&2; exit 7"]}] });
        b.sh("sleep 300");
        let out = b.create();
        assert!(!out.status.success(), "{point}: create succeeded");
        let err = stderr(&out);
        // Both pass the hook's stderr on; berth also names the hook point.
        assert!(err.contains("hook-said-no"), "{point}: {err}");
        if !runtime_is_runc() {
            assert!(err.contains(point), "{point}: {err}");
        }
        assert_eq!(err.trim().lines().count(), 1, "one error line: {err}");
        b.assert_nothing_left();
    }
}

#[test]
fn hook_timeout_is_enforced() {
    let mut b = Bundle::new("hooktimeout");
    b.config["hooks"] = json!({"createRuntime": [{"path": "/bin/sleep", "args": ["sleep", "30"], "timeout": 1}]});
    b.sh("true");
    let started = std::time::Instant::now();
    let out = b.create();
    assert!(!out.status.success());
    // runc: "hook ran past specified timeout of 1.0s"
    let want = if runtime_is_runc() { "timeout" } else { "timed out" };
    assert!(stderr(&out).contains(want), "{}", stderr(&out));
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
    b.assert_nothing_left();
}

/// createContainer hooks run with the rootfs as their working directory, as runc runs them
/// (runc's own hooks test relies on it).
#[test]
fn create_container_hooks_run_in_the_rootfs() {
    let mut b = Bundle::new("hookcwd");
    b.config["hooks"] =
        json!({"createContainer": [{"path": "/bin/sh", "args": ["sh", "-c", "test -f ./bin/busybox"]}]});
    b.sh("echo ran");
    assert_eq!(b.run_ok(), "ran\n");
}

/// startContainer hooks run under the container's seccomp filter, as runc runs them: a hook
/// making a call the profile denies fails, and the container with it.
#[test]
fn start_container_hooks_run_under_the_seccomp_filter() {
    for nnp in [true, false] {
        let mut b = Bundle::new("hookseccomp");
        b.config["process"]["noNewPrivileges"] = json!(nnp);
        b.config["linux"]["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]
        });
        b.config["hooks"] = json!({"startContainer": [{"path": "/bin/mkdir", "args": ["mkdir", "/dev/shm/hookdir"]}]});
        b.sh("echo ran");
        let out = b.run();
        assert!(!out.status.success(), "nnp={nnp}: the hook's mkdir was allowed: {}", stdout(&out));
        assert!(!stdout(&out).contains("ran"), "nnp={nnp}: the process ran after a failed startContainer hook");
    }
}

/// runtime.md: "If any `poststart` hook fails, the runtime MUST log a warning, but the remaining
/// hooks and lifecycle continue as if the hook had succeeded." runc 1.1.5 fails `start`.
#[test]
fn a_failing_poststart_hook_is_a_warning() {
    if runtime_is_runc() {
        return skip("deliberate difference: runc 1.1.5 fails start when a poststart hook fails");
    }
    let mut b = Bundle::new("poststartfail");
    let marker = b.dir.join("second-hook-ran");
    b.config["hooks"] = json!({"poststart": [
        {"path": "/bin/sh", "args": ["sh", "-c", "echo poststart-said-no >&2; exit 3"]},
        {"path": "/bin/sh", "args": ["sh", "-c", format!("touch {}", marker.display())]}
    ]});
    b.sh("sleep 300");
    assert!(b.create().status.success());
    let out = b.cmd(&["start", &b.id]);
    assert!(out.status.success(), "start failed: {}", stderr(&out));
    assert!(stderr(&out).contains("poststart"), "no warning: {}", stderr(&out));
    assert!(marker.exists(), "the next poststart hook did not run");
    assert_eq!(b.status(), "running");
}

/// runtime.md: "If any `startContainer` hook fails, the runtime MUST generate an error, stop the
/// container, and continue the lifecycle at step 12" (delete). runc 1.1.5's `start` returns
/// before the hook runs, so it reports nothing; its container stops all the same.
#[test]
fn a_failing_start_container_hook_fails_start_and_stops_the_container() {
    let mut b = Bundle::new("startcontainerfail");
    b.config["hooks"] =
        json!({"startContainer": [{"path": "/bin/sh", "args": ["sh", "-c", "echo hook-said-no >&2; exit 4"]}]});
    b.config["root"]["readonly"] = json!(false);
    b.sh("touch /process-ran; sleep 300");
    assert!(b.create().status.success());
    let out = b.cmd(&["start", &b.id]);
    if runtime_is_runc() {
        skip("start failing when a startContainer hook fails: deliberate difference, runc 1.1.5's start has returned by then");
    } else {
        assert!(!out.status.success(), "start succeeded");
        assert_eq!(stderr(&out).trim().lines().count(), 1, "one error line: {}", stderr(&out));
        assert!(stderr(&out).contains("startContainer"), "the error does not name the hook: {}", stderr(&out));
    }
    b.wait_status("stopped");
    assert!(!b.dir.join("rootfs/process-ran").exists(), "the process ran");
    assert!(b.cmd(&["delete", &b.id]).status.success());
    b.assert_nothing_left();
}
