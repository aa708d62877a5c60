//! Bad input gets one clear error line and a non-zero exit, and leaves no state directory,
//! cgroup or process behind; an existing container is never touched.

use runtime_tests::*;
use serde_json::json;

/// Refused with one error line and nothing left behind, on either runtime; the line says
/// `needle` on berth (runc words its errors its own way).
fn assert_refused(b: &Bundle, out: &std::process::Output, needle: &str) {
    assert!(!out.status.success(), "{needle}: accepted: {}", stdout(out));
    let err = stderr(out);
    assert_eq!(err.trim().lines().count(), 1, "want one error line: {err}");
    if !runtime_is_runc() {
        assert!(err.contains(needle), "error lacks {needle:?}: {err}");
    }
    b.assert_nothing_left();
}

#[test]
fn malformed_json() {
    let b = Bundle::new("badjson");
    std::fs::write(b.dir.join("config.json"), "{ this is not json").unwrap();
    let out = b.berth().args(["create", "--bundle"]).arg(&b.dir).arg(&b.id).output().unwrap();
    assert_refused(&b, &out, "parse config");
}

/// What the error must say, and the change to an otherwise good config that causes it.
type Mistake = (&'static str, Box<dyn Fn(&mut serde_json::Value)>);

#[test]
fn config_mistakes() {
    let cases: Vec<Mistake> = vec![
        ("unsupported ociVersion", Box::new(|c| c["ociVersion"] = json!("2.0.0"))),
        ("does not exist", Box::new(|c| c["root"]["path"] = json!("no-such-rootfs"))),
        (
            "process is required",
            Box::new(|c| {
                c.as_object_mut().unwrap().remove("process");
            }),
        ),
        ("not in a separate kernel namespace", Box::new(|c| c["linux"]["sysctl"] = json!({"vm.swappiness": "10"}))),
        (
            "must be greater than zero",
            Box::new(|c| c["hooks"] = json!({"prestart": [{"path": "/bin/true", "timeout": 0}]})),
        ),
        (
            "need a user namespace",
            Box::new(|c| c["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 1000, "size": 1}])),
        ),
        (
            "needs uidMappings and gidMappings",
            Box::new(|c| c["linux"]["namespaces"].as_array_mut().unwrap().push(json!({"type": "user"}))),
        ),
    ];
    for (needle, mutate) in cases {
        if runtime_is_runc()
            && ["unsupported ociVersion", "need a user namespace", "must be greater than zero"].contains(&needle)
        {
            // runc 1.1.5 runs a config of spec 2.0.0, ignores id mappings without a user
            // namespace, and runs a hook of timeout 0 against a 0 s timer, which the hook wins
            // now and then: berth refuses all three (README, "Differences from runc").
            skip(&format!("case {needle:?}: deliberate difference, runc 1.1.5 does not refuse it"));
            continue;
        }
        let mut b = Bundle::new("badcfg");
        mutate(&mut b.config);
        let out = b.create();
        assert_refused(&b, &out, needle);
    }
}

/// config.md: a Linux mount destination "MAY be a relative path, in which case it MUST be
/// interpreted as relative to "/"" (runc warns, and mounts it there).
#[test]
fn a_relative_mount_destination_is_taken_from_the_root() {
    let mut b = Bundle::new("reldest");
    b.config["mounts"]
        .as_array_mut()
        .unwrap()
        .push(json!({"destination": "relative/dir", "type": "tmpfs", "source": "tmpfs"}));
    b.sh("grep ' /relative/dir ' /proc/self/mountinfo | sed 's/.* - //' | cut -d' ' -f1");
    assert_eq!(b.run_ok(), "tmpfs\n");
}

#[test]
fn failure_inside_the_init_is_reported_with_context() {
    let mut b = Bundle::new("badmount");
    b.config["mounts"].as_array_mut().unwrap().push(json!({"destination": "/x", "type": "nosuchfs", "source": "none"}));
    let out = b.create();
    assert_refused(&b, &out, "mount \"none\" on \"/x\" (type \"nosuchfs\"): ENODEV");
    // Either runtime names the mount that failed (runc's log line escapes the quotes).
    assert!(stderr(&out).contains("/x"), "{}", stderr(&out));
}

#[test]
fn invalid_ids() {
    let b = Bundle::new("badid");
    b.save();
    for id in ["a/b", "..", ""] {
        let out = b.berth().args(["create", "--bundle"]).arg(&b.dir).arg(id).output().unwrap();
        assert!(!out.status.success(), "{id:?} accepted");
        // runc: "invalid container ID format", and "container id cannot be empty"
        let err = stderr(&out).to_lowercase();
        assert!(err.contains("invalid container id") || id.is_empty() && err.contains("cannot be empty"), "{err}");
    }
    assert!(std::fs::read_dir(&b.root).map(|d| d.count() == 0).unwrap_or(true));
}

#[test]
fn taken_id_leaves_the_existing_container_alone() {
    let mut b = Bundle::new("taken");
    b.sh("sleep 300");
    assert!(b.create().status.success());
    let before = b.state();
    let out = b.create();
    assert!(!out.status.success());
    assert!(stderr(&out).contains("already exists"), "{}", stderr(&out));
    let after = b.state();
    assert_eq!(before, after);
    assert_eq!(after["status"], "created");
}

#[test]
fn unknown_container() {
    let b = Bundle::new("unknown");
    for cmd in [vec!["state", "ghost"], vec!["start", "ghost"], vec!["kill", "ghost"], vec!["delete", "ghost"]] {
        let out = b.cmd(&cmd);
        assert!(!out.status.success(), "{cmd:?}");
        assert!(stderr(&out).contains("does not exist"), "{cmd:?}: {}", stderr(&out));
    }
}
