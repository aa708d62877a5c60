//! runtime.md's lifecycle through the CLI: created -> running -> stopped -> deleted, and the
//! operations each state refuses, with runc's error words.

use runtime_tests::*;

#[test]
fn create_start_kill_delete() {
    let mut b = Bundle::new("life");
    b.sh("sleep 300");
    b.config["annotations"] = serde_json::json!({"org.example.test": "yes"});
    let pid_file = b.dir.join("init.pid");
    b.save();
    let mut cmd = b.berth();
    cmd.args(["create", "--bundle"]).arg(&b.dir).arg("--pid-file").arg(&pid_file).arg(&b.id);
    let out = b.detached(cmd);
    assert!(out.status.success(), "{}", stderr(&out));
    let st = b.state();
    assert_eq!(st["status"], "created");
    assert_eq!(st["id"], b.id.as_str());
    assert_eq!(st["bundle"], b.dir.to_str().unwrap());
    assert!(st["created"].as_str().unwrap().ends_with('Z'));
    for key in ["ociVersion", "pid", "rootfs", "owner"] {
        assert!(st.get(key).is_some(), "state lacks {key}: {st}");
    }
    // runtime.md: "If no annotations were provided then this property MAY either be absent or
    // an empty map" (runc leaves it out, berth writes {}); the config's own reach the state.
    assert_eq!(st["annotations"]["org.example.test"], "yes", "{st}");
    let pid = st["pid"].as_i64().unwrap();
    assert_eq!(std::fs::read_to_string(&pid_file).unwrap().trim(), pid.to_string());

    assert!(b.cmd(&["start", &b.id]).status.success());
    assert_eq!(b.status(), "running");
    let again = b.cmd(&["start", &b.id]);
    assert!(!again.status.success(), "start of a running container must fail");
    assert_eq!(b.status(), "running", "a refused start changes nothing");

    let refused = b.cmd(&["delete", &b.id]);
    assert!(!refused.status.success());
    assert!(stderr(&refused).contains("is not stopped"), "{}", stderr(&refused));

    assert!(b.cmd(&["kill", &b.id, "9"]).status.success());
    b.wait_status("stopped");
    let dead = b.cmd(&["kill", &b.id, "KILL"]);
    assert!(!dead.status.success());
    assert!(stderr(&dead).contains("container not running"), "{}", stderr(&dead));

    assert!(b.cmd(&["delete", &b.id]).status.success(), "delete of a stopped container");
    b.assert_nothing_left();
    let gone = b.cmd(&["state", &b.id]);
    assert!(!gone.status.success());
    assert!(stderr(&gone).contains("does not exist"), "{}", stderr(&gone));
    assert!(b.cmd(&["delete", "--force", &b.id]).status.success(), "delete --force of a gone container exits 0");
}

#[test]
fn delete_of_created_container_kills_it() {
    let mut b = Bundle::new("delcreated");
    b.sh("sleep 300");
    assert!(b.create().status.success());
    let pid = b.state()["pid"].as_i64().unwrap();
    let out = b.cmd(&["delete", &b.id]);
    assert!(out.status.success(), "{}", stderr(&out));
    b.assert_nothing_left();
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    assert!(stat.is_empty() || stat.contains(") Z"), "init still alive: {stat}");
}

#[test]
fn delete_force_kills_running_container() {
    let mut b = Bundle::new("delforce");
    b.sh("sleep 300");
    let out = b.run_detached(&[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(b.status(), "running");
    assert!(b.cmd(&["delete", "--force", &b.id]).status.success());
    b.assert_nothing_left();
}

#[test]
fn kill_all_signals_every_process() {
    let mut b = Bundle::new("killall");
    b.sh("sleep 300 & sleep 300 & wait");
    assert!(b.run_detached(&[]).status.success());
    // The shell forks its two sleeps after `run -d` returns: wait for all three.
    let procs_file = b.cgroup_dir("pids").join("cgroup.procs");
    let count = || std::fs::read_to_string(&procs_file).unwrap().lines().count();
    for _ in 0..500 {
        if count() == 3 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert_eq!(count(), 3);
    assert!(b.cmd(&["kill", "--all", &b.id, "SIGKILL"]).status.success());
    b.wait_status("stopped");
}

#[test]
fn list_shows_containers() {
    let mut b = Bundle::new("list");
    b.sh("sleep 300");
    assert!(b.create().status.success());
    let quiet = stdout(&b.cmd(&["list", "-q"]));
    assert_eq!(quiet.trim(), b.id);
    let json: serde_json::Value = serde_json::from_slice(&b.cmd(&["list", "--format", "json"]).stdout).unwrap();
    assert_eq!(json[0]["id"], b.id.as_str());
    assert_eq!(json[0]["status"], "created");
    let table = stdout(&b.cmd(&["list"]));
    assert!(table.starts_with("ID") && table.contains(&b.id) && table.contains("created"), "{table}");
    // Columns as runc's tabwriter lays them out: every cell of a column starts where its
    // heading does, after at least one space.
    let header = table.lines().next().unwrap();
    let row = table.lines().find(|l| l.starts_with(&b.id)).unwrap().as_bytes();
    for heading in ["PID", "STATUS", "BUNDLE", "CREATED", "OWNER"] {
        let at = header.find(heading).unwrap();
        assert!(row[at - 1] == b' ' && row[at] != b' ', "{heading} column misaligned:\n{table}");
    }
}

#[test]
fn run_exit_codes() {
    // A process that never ran: 1, as runc; engines tell the causes apart by the message.
    let cases: [(&[&str], i32, bool); 6] = [
        (&["true"], 0, true),
        (&["sh", "-c", "exit 3"], 3, true),
        (&["/etc/passwd"], 1, true),
        (&["no-such-program"], 1, true),
        (&["sh", "-c", "kill -9 $$"], 137, false),
        (&["sh", "-c", "kill -TERM $$"], 143, false),
    ];
    for (args, code, pidns) in cases {
        let mut b = Bundle::new("exit");
        b.config["process"]["args"] = serde_json::json!(args);
        if !pidns {
            // A pid namespace's init ignores signals it has no handler for; outside one the
            // default actions apply.
            drop_namespace(&mut b.config, "pid");
        }
        let out = b.run();
        assert_eq!(out.status.code(), Some(code), "{args:?}: {}", stderr(&out));
        if args[0] == "no-such-program" {
            assert!(stderr(&out).contains("executable file not found"), "{}", stderr(&out));
        }
        if args[0] == "/etc/passwd" {
            assert!(stderr(&out).contains("permission denied"), "{}", stderr(&out));
        }
        b.assert_nothing_left();
    }
}

#[test]
fn stdio_pipes_reach_the_process_untouched() {
    let mut b = Bundle::new("stdio");
    b.sh("read line; echo got:$line; echo to-stderr >&2");
    b.save();
    let mut child = b
        .berth()
        .args(["run", "--bundle"])
        .arg(&b.dir)
        .arg(&b.id)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(b"hello\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(stdout(&out), "got:hello\n");
    assert_eq!(stderr(&out), "to-stderr\n");
}

#[test]
fn json_log_carries_the_error() {
    let b = Bundle::new("jsonlog");
    let log = b.dir.join("log.json");
    let out =
        b.berth().arg("--log").arg(&log).args(["--log-format", "json", "state", "nonexistent-id"]).output().unwrap();
    assert!(!out.status.success());
    let text = std::fs::read_to_string(&log).unwrap();
    let last: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert_eq!(last["level"], "error");
    assert!(last["msg"].as_str().unwrap().contains("does not exist"));
    assert!(last["time"].is_string());
}

#[test]
fn version_and_features() {
    let b = Bundle::new("version");
    let v = stdout(&b.cmd(&["--version"]));
    // runc's shape: "<name> version X", "commit: ...", "spec: 1.x".
    let name = if runtime_is_runc() { "runc" } else { "berth" };
    assert!(v.starts_with(&format!("{name} version ")) && v.contains("\ncommit: ") && v.contains("\nspec: 1."), "{v}");
    let f: serde_json::Value = serde_json::from_slice(&b.cmd(&["features"]).stdout).unwrap();
    assert_eq!(f["ociVersionMin"], "1.0.0");
    assert!(f["hooks"].as_array().unwrap().len() == 6);
    assert!(f["mountOptions"].as_array().unwrap().iter().any(|o| o == "rbind"));
    if runtime_is_runc() {
        return skip("features: idmapped mounts are berth only (runc 1.1.5 has none)");
    }
    assert_eq!(f["linux"]["mountExtensions"]["idmap"]["enabled"], true);
}

#[test]
fn flags_after_the_id_and_with_equals() {
    let mut b = Bundle::new("flagorder");
    b.sh("sleep 300");
    b.save();
    let mut cmd = std::process::Command::new(berth_bin());
    cmd.arg(format!("--root={}", b.root.display()))
        .arg("--log-format=json")
        .arg("create")
        .arg(&b.id)
        .arg(format!("--bundle={}", b.dir.display()))
        .arg("--pid-file")
        .arg(b.dir.join("pid"));
    let out = b.detached(cmd);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(b.status(), "created");
    assert!(b.cmd(&["delete", &b.id, "--force"]).status.success());
    b.assert_nothing_left();
}
