//! spec/ promises that everything a bad bundle can get wrong is caught before any state
//! directory, cgroup or process exists. These configs are wrong in ways the config alone
//! shows, so `create` must refuse them without one mkdir or clone: strace watches.

use std::process::Command;

use runtime_tests::*;
use serde_json::json;

type Mutation = Box<dyn Fn(&mut serde_json::Value)>;

fn push(config: &mut serde_json::Value, pointer: &str, item: serde_json::Value) {
    let parent = pointer.rsplit_once('/').map_or("", |(p, _)| p);
    let key = pointer.rsplit_once('/').map_or(pointer, |(_, k)| k);
    let node = config.pointer_mut(parent).unwrap();
    let list = &mut node[key];
    if !list.is_array() {
        *list = json!([]);
    }
    list.as_array_mut().unwrap().push(item);
}

fn cases() -> Vec<(&'static str, Mutation)> {
    vec![
        (
            "which only device cgroup rules may use",
            Box::new(|c| push(c, "/linux/devices", json!({"path": "/dev/all", "type": "a", "major": 1, "minor": 3}))),
        ),
        (
            "device rule access 'x' is not r, w or m",
            Box::new(|c| {
                push(
                    c,
                    "/linux/resources/devices",
                    json!({"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rx"}),
                )
            }),
        ),
        ("is not a number or a range", Box::new(|c| c["linux"]["resources"]["cpu"] = json!({"cpus": "0-x"}))),
        (
            "clock \"realtime\" is not monotonic or boottime",
            Box::new(|c| {
                push(c, "/linux/namespaces", json!({"type": "time"}));
                c["linux"]["timeOffsets"] = json!({"realtime": {"secs": 1, "nanosecs": 0}});
            }),
        ),
        (
            "linux.uidMappings[1] \"5 200000 10\" overlaps linux.uidMappings[0] \"0 100000 10\"",
            Box::new(|c| {
                push(c, "/linux/namespaces", json!({"type": "user"}));
                c["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 10},
                                                   {"containerID": 5, "hostID": 200000, "size": 10}]);
                c["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
            }),
        ),
        ("is not a propagation mode", Box::new(|c| c["linux"]["rootfsPropagation"] = json!("sideways"))),
        (
            "has no source",
            Box::new(|c| push(c, "/mounts", json!({"destination": "/mnt", "type": "bind", "options": ["rbind"]}))),
        ),
        (
            "must be a bind mount",
            Box::new(|c| {
                push(
                    c,
                    "/mounts",
                    json!({"destination": "/mnt", "type": "tmpfs", "source": "tmpfs", "options": ["idmap"]}),
                )
            }),
        ),
        ("unknown variant `nope`", Box::new(|c| push(c, "/linux/namespaces", json!({"type": "nope"})))),
        ("is listed twice", Box::new(|c| push(c, "/linux/namespaces", json!({"type": "pid"})))),
        (
            "RLIMIT_NOPE",
            Box::new(|c| push(c, "/process/rlimits", json!({"type": "RLIMIT_NOPE", "soft": 1, "hard": 1}))),
        ),
        (
            "process.rlimits: RLIMIT_NPROC is listed twice",
            Box::new(|c| {
                push(c, "/process/rlimits", json!({"type": "RLIMIT_NPROC", "soft": 10, "hard": 10}));
                push(c, "/process/rlimits", json!({"type": "RLIMIT_NPROC", "soft": 20, "hard": 20}));
            }),
        ),
        (
            "RLIMIT_NPROC: soft limit 20 is above the hard limit 10",
            Box::new(|c| push(c, "/process/rlimits", json!({"type": "RLIMIT_NPROC", "soft": 20, "hard": 10}))),
        ),
        ("CAP_NOPE", Box::new(|c| push(c, "/process/capabilities/bounding", json!("CAP_NOPE")))),
        (
            "SCMP_ACT_NOPE",
            Box::new(|c| c["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_NOPE", "syscalls": []})),
        ),
        (
            "argument index 6",
            Box::new(|c| {
                c["linux"]["seccomp"] = json!({
                    "defaultAction": "SCMP_ACT_ALLOW",
                    "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_AARCH64"],
                    "syscalls": [{"names": ["personality"], "action": "SCMP_ACT_ERRNO",
                                  "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]
                })
            }),
        ),
        ("contains a NUL byte", Box::new(|c| c["process"]["args"] = json!(["sh", "-c", "true\u{0}"]))),
    ]
}

/// The mkdir, mkdirat, clone and clone3 calls strace saw berth make: none may happen for a
/// config that is wrong on its face. Every process and directory of a container starts with
/// one of them in berth itself, so its children are not followed (strace -f would wait for the
/// init of a config that was wrongly accepted).
fn made(trace: &str) -> Vec<&str> {
    let calls = ["mkdir(", "mkdirat(", "clone(", "clone3("];
    trace.lines().filter(|l| calls.iter().any(|c| l.contains(c))).collect()
}

/// `create` of the saved bundle under strace: its output, and the calls that made something.
fn create_traced(b: &Bundle) -> (std::process::Output, Vec<String>) {
    let trace = b.dir.join("strace.out");
    let mut cmd = Command::new("strace");
    cmd.args(["-qq", "-e", "trace=mkdir,mkdirat,clone,clone3", "-o"]).arg(&trace).arg(berth_bin());
    if systemd_cgroup() {
        cmd.arg("--systemd-cgroup");
    }
    cmd.arg("--root").arg(&b.root).arg("create").arg("--bundle").arg(&b.dir).arg(&b.id);
    let out = b.detached(cmd);
    let trace = std::fs::read_to_string(&trace).unwrap();
    (out, made(&trace).into_iter().map(String::from).collect())
}

#[test]
fn a_bad_config_is_refused_before_anything_is_made() {
    if berth_only("a bad config is refused before any mkdir or clone (runc makes its state directory first)") {
        return;
    }
    let mut failures = Vec::new();
    for (needle, mutate) in cases() {
        let mut b = Bundle::new("validate");
        mutate(&mut b.config);
        b.save();
        let (out, calls) = create_traced(&b);
        let err = stderr(&out);
        if out.status.success() {
            // Dropping the bundle deletes the container.
            failures.push(format!("{needle}: accepted"));
            continue;
        }
        if err.trim().lines().count() != 1 || !err.contains(needle) {
            failures.push(format!("{needle}: want one error line saying so, got: {err}"));
        } else if !calls.is_empty() {
            failures.push(format!("{needle}: refused only after making something: {}", calls.join("; ")));
        }
        b.assert_nothing_left();
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// overlayfs splits its layer list on ':' and its options on ',': a rootfs path with either
/// cannot be a lower layer, which is known before anything is made.
#[test]
fn an_overlay_layer_path_overlayfs_cannot_take_is_refused_before_anything_is_made() {
    if berth_only("the overlay rootfs") {
        return;
    }
    let mut b = Bundle::new("validate-overlay");
    std::fs::rename(b.dir.join("rootfs"), b.dir.join("root:fs")).unwrap();
    b.config["root"]["path"] = json!("root:fs");
    b.config["annotations"] = json!({"org.berth.rootfs.overlay": "true"});
    b.save();
    let (out, calls) = create_traced(&b);
    let err = stderr(&out);
    assert!(!out.status.success(), "accepted");
    assert_eq!(err.trim().lines().count(), 1, "want one error line: {err}");
    assert!(err.contains("contains ',' or ':'"), "{err}");
    assert!(calls.is_empty(), "refused only after making something: {}", calls.join("; "));
    b.assert_nothing_left();
}
