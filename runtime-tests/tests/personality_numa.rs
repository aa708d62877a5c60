//! linux.personality and linux.memoryPolicy: container-wide, so the init and every exec'd
//! process run under them; observed from inside with `uname -m`, /proc/self/personality and
//! /proc/self/numa_maps. Bad values are refused at create with nothing left behind.
//!
//! runc 1.1.5 ignores both (runc 1.2 added personality, 1.3 memoryPolicy).

use runtime_tests::*;
use serde_json::json;

fn sleeping(name: &str, linux_key: &str, value: serde_json::Value) -> Bundle {
    let mut b = Bundle::new(name);
    b.sh("sleep 300");
    b.config["linux"][linux_key] = value;
    let out = b.run_detached(&[]);
    assert!(out.status.success(), "run --detach: {}", stderr(&out));
    b
}

fn exec_ok(b: &Bundle, script: &str) -> String {
    let out = b.cmd(&["exec", &b.id, "sh", "-c", script]);
    assert!(out.status.success(), "exec: {}", stderr(&out));
    stdout(&out)
}

#[test]
fn linux32_personality_for_the_init_and_exec() {
    if runtime_is_runc() {
        return skip("runc 1.1.5 ignores linux.personality (runc 1.2 applies it)");
    }
    if std::env::consts::ARCH != "x86_64" {
        return skip("the i686 check is for x86_64 hosts");
    }
    let mut b = Bundle::new("linux32");
    b.sh("uname -m; cat /proc/self/personality");
    b.config["linux"]["personality"] = json!({"domain": "LINUX32", "flags": ["ADDR_NO_RANDOMIZE"]});
    assert_eq!(b.run_ok().split_whitespace().collect::<Vec<_>>(), ["i686", "00040008"]);
    let b = sleeping("linux32exec", "personality", json!({"domain": "LINUX32"}));
    assert_eq!(
        exec_ok(&b, "uname -m; cat /proc/self/personality").split_whitespace().collect::<Vec<_>>(),
        ["i686", "00000008"]
    );
    let mut plain = Bundle::new("linux64");
    plain.sh("uname -m");
    plain.config["linux"]["personality"] = json!({"domain": "LINUX"});
    assert_eq!(plain.run_ok().trim(), "x86_64");
}

/// The policy of the process's first mapping, as numa_maps prints it ("bind:0").
fn first_policy(numa_maps: &str) -> String {
    numa_maps
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or_else(|| panic!("{numa_maps}"))
        .to_string()
}

#[test]
fn memory_policy_for_the_init_and_exec() {
    if runtime_is_runc() {
        return skip("runc 1.1.5 ignores linux.memoryPolicy (runc 1.3 applies it)");
    }
    if !std::path::Path::new("/proc/self/numa_maps").exists() {
        return skip("this kernel has no NUMA support (no /proc/self/numa_maps)");
    }
    let cases = [
        (json!({"mode": "MPOL_BIND", "nodes": "0"}), "bind:0"),
        (json!({"mode": "MPOL_INTERLEAVE", "nodes": "0"}), "interleave:0"),
        (json!({"mode": "MPOL_PREFERRED", "nodes": "0"}), "prefer:0"),
        (json!({"mode": "MPOL_LOCAL"}), "local"),
        (json!({"mode": "MPOL_BIND", "nodes": "0", "flags": ["MPOL_F_STATIC_NODES"]}), "bind=static:0"),
        (json!({"mode": "MPOL_BIND", "nodes": "0", "flags": ["MPOL_F_RELATIVE_NODES"]}), "bind=relative:0"),
        (json!({"mode": "MPOL_BIND", "nodes": "0", "flags": ["MPOL_F_NUMA_BALANCING"]}), "bind=balancing:0"),
    ];
    for (policy, want) in cases {
        let mut b = Bundle::new("mempolicy");
        b.sh("cat /proc/self/numa_maps");
        b.config["linux"]["memoryPolicy"] = policy.clone();
        assert_eq!(first_policy(&b.run_ok()), want, "{policy}");
    }
    let b = sleeping("mempolicyexec", "memoryPolicy", json!({"mode": "MPOL_INTERLEAVE", "nodes": "0"}));
    assert_eq!(first_policy(&exec_ok(&b, "cat /proc/self/numa_maps")), "interleave:0");
}

#[test]
fn bad_values_are_refused_at_create() {
    if runtime_is_runc() {
        return skip("runc 1.1.5 ignores linux.personality and linux.memoryPolicy");
    }
    let cases = [
        ("personality", json!({"domain": "LINUX", "flags": ["NO_SUCH_FLAG"]}), "linux.personality.flags"),
        ("personality", json!({"domain": "LINUX16"}), "LINUX16"),
        ("memoryPolicy", json!({"mode": "MPOL_BIND"}), "linux.memoryPolicy: mode MPOL_BIND needs nodes"),
        ("memoryPolicy", json!({"mode": "MPOL_BIND", "nodes": "1000"}), "linux.memoryPolicy: the kernel refuses"),
        ("memoryPolicy", json!({"mode": "MPOL_LOCAL", "nodes": "0"}), "takes no nodes"),
        (
            "memoryPolicy",
            json!({"mode": "MPOL_BIND", "nodes": "0", "flags": ["MPOL_F_STATIC_NODES", "MPOL_F_RELATIVE_NODES"]}),
            "exclude each other",
        ),
        ("memoryPolicy", json!({"mode": "MPOL_NOPE"}), "MPOL_NOPE"),
    ];
    for (key, value, needle) in cases {
        let mut b = Bundle::new("linuxbad");
        b.config["linux"][key] = value;
        let out = b.create();
        assert!(!out.status.success(), "{key} accepted");
        let err = stderr(&out);
        assert_eq!(err.trim().lines().count(), 1, "want one error line: {err}");
        assert!(err.contains(needle), "error lacks {needle:?}: {err}");
        b.assert_nothing_left();
    }
}
