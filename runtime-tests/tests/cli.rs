//! The command line as engines and test suites use it: details runc's own suite checks.

use std::process::Stdio;

use runtime_tests::*;
use serde_json::json;

fn running(name: &str) -> Bundle {
    let mut b = Bundle::new(name);
    b.sh("sleep 300");
    let out = b.run_detached(&[]);
    assert!(out.status.success(), "{}", stderr(&out));
    b
}

/// Keys as runc prints them, in runc's order.
fn keys(v: &serde_json::Value) -> Vec<String> {
    v.as_object().unwrap().keys().cloned().collect()
}

/// Signal 0 checks that the process is alive, as kill(2) does.
#[test]
fn kill_with_signal_0_checks_liveness() {
    let b = running("kill0");
    assert!(b.cmd(&["kill", &b.id, "0"]).status.success());
    assert!(b.cmd(&["kill", "--all", &b.id, "0"]).status.success());
    assert!(b.cmd(&["kill", &b.id, "KILL"]).status.success());
    b.wait_status("stopped");
    let out = b.cmd(&["kill", &b.id, "0"]);
    assert!(!out.status.success(), "signal 0 to a stopped container succeeded");
    assert!(stderr(&out).contains("container not running"), "{}", stderr(&out));
    // --all signals whatever is left in the cgroup, which may be nothing: no error (runc).
    let out = b.cmd(&["kill", "--all", &b.id, "0"]);
    assert!(out.status.success(), "{}", stderr(&out));
}

/// A signal berth does not know is the command line's mistake, said in runc's words, not
/// the config's; the container is left alone.
#[test]
fn an_unknown_signal_is_a_usage_error() {
    let b = running("killnope");
    let out = b.cmd(&["kill", &b.id, "NOPE"]);
    assert!(!out.status.success(), "kill NOPE succeeded");
    let err = stderr(&out);
    assert_eq!(err.trim().lines().count(), 1, "want one error line: {err}");
    // runc's log line escapes the quotes: msg="unknown signal \"NOPE\""
    assert!(err.contains("unknown signal") && err.contains("NOPE"), "{err}");
    assert!(!err.contains("config"), "{err}");
    assert_eq!(b.status(), "running");
}

/// ps of a container that has stopped lists nothing, and succeeds.
#[test]
fn ps_of_a_stopped_container_is_empty() {
    let b = running("psstopped");
    assert!(b.cmd(&["kill", &b.id, "KILL"]).status.success());
    b.wait_status("stopped");
    let out = b.cmd(&["ps", "--format", "json", &b.id]);
    assert!(out.status.success(), "{}", stderr(&out));
    let pids: Vec<i64> = serde_json::from_slice::<Option<Vec<i64>>>(&out.stdout).unwrap().unwrap_or_default();
    assert!(pids.is_empty(), "{pids:?}");
}

/// state, list and events print their keys in runc's order: engines and runc's own tests read
/// the text, not only the JSON.
#[test]
fn json_keys_come_in_runcs_order() {
    let mut b = Bundle::new("keyorder");
    b.config["annotations"] = json!({"b": "2", "a": "1"});
    b.sh("sleep 300");
    assert!(b.run_detached(&[]).status.success());
    let state = b.state();
    let want = ["ociVersion", "id", "pid", "status", "bundle", "rootfs", "created", "annotations", "owner"];
    assert_eq!(keys(&state), want);
    assert_eq!(keys(&state["annotations"]), ["a", "b"]);
    let out = b.cmd(&["list", "--format", "json"]);
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(keys(&list[0]), want);
    assert_eq!(list[0]["owner"], "root");
    let out = b.cmd(&["events", "--stats", &b.id]);
    assert!(out.status.success(), "{}", stderr(&out));
    let event: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(keys(&event), ["type", "id", "data"]);
    let sections = keys(&event["data"]);
    let order = ["cpu", "cpuset", "memory", "pids", "blkio", "hugetlb"];
    let positions: Vec<usize> = sections.iter().filter_map(|s| order.iter().position(|o| o == s)).collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{sections:?}");
}

/// --debug says what happens, as log lines: on stderr without --log, in the log with it.
#[test]
fn debug_lines_for_run_and_exec() {
    let mut b = Bundle::new("debug");
    b.sh("sleep 300");
    b.save();
    let mut run = b.berth();
    run.args(["--debug", "run", "--detach", "--bundle"]).arg(&b.dir).arg(&b.id);
    let out = b.detached(run);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("level=debug"), "run --debug: {}", stderr(&out));
    let log = b.dir.join("debug.log");
    let out = b.berth().arg("--debug").arg("--log").arg(&log).args(["exec", &b.id, "true"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stderr(&out).contains("level=debug"), "debug lines on stderr with --log: {}", stderr(&out));
    assert!(std::fs::read_to_string(&log).unwrap().contains("level=debug"), "no debug line in the log");
}

/// A second container in a cgroup that already has processes is allowed, and warned about.
#[test]
fn a_non_empty_cgroup_is_warned_about() {
    let path = format!("/berth-shared-{}", std::process::id());
    let mut first = Bundle::new("cgshare1");
    first.config["linux"]["cgroupsPath"] = json!(path);
    first.sh("sleep 300");
    assert!(first.run_detached(&[]).status.success());
    let mut second = Bundle::new("cgshare2");
    second.config["linux"]["cgroupsPath"] = json!(path);
    second.sh("sleep 300");
    let out = second.run_detached(&[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("container's cgroup is not empty"), "{}", stderr(&out));
    drop(second);
    drop(first);
    for dir in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        let _ = std::fs::remove_dir(dir.path().join(path.trim_start_matches('/')));
    }
}

/// `features | head`: a reader that goes away ends the runtime quietly, as any Unix filter.
/// The reading end is closed before the runtime writes, so its first write meets EPIPE.
#[test]
fn output_to_a_closed_pipe_ends_quietly() {
    let (read, write) = nix::unistd::pipe().unwrap();
    drop(read);
    let out = std::process::Command::new(berth_bin())
        .arg("features")
        .stdout(Stdio::from(std::fs::File::from(write)))
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));
}

/// `spec` asks for a cgroup namespace only on a pure cgroup v2 host, as runc does.
#[test]
fn spec_asks_for_a_cgroup_namespace_only_on_cgroup_v2() {
    let dir = std::env::temp_dir().join(format!("berth-rt-spec-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = std::process::Command::new(berth_bin()).args(["spec", "--bundle"]).arg(&dir).output().unwrap();
    assert!(out.status.success());
    let config: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join("config.json")).unwrap()).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let has_cgroupns = config["linux"]["namespaces"].as_array().unwrap().iter().any(|n| n["type"] == "cgroup");
    let v2_only = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .any(|l| l.split(' ').nth(4) == Some("/sys/fs/cgroup") && l.contains(" - cgroup2 "));
    if runtime_is_runc() && v2_only {
        return skip("runc 1.1.5 never asks for a cgroup namespace (runc 1.2 does on v2)");
    }
    assert_eq!(has_cgroupns, v2_only);
}
