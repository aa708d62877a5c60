//! Every property of runtime-spec 1.3's config is applied or refused, none accepted and
//! dropped: the properties berth does not apply are refused at create naming the field, and
//! what `features` lists is what the runtime tests exercise.

use runtime_tests::*;
use serde_json::{json, Value};

fn assert_refused(b: &Bundle, out: &std::process::Output, needle: &str) {
    assert!(!out.status.success(), "accepted: {needle}");
    let err = stderr(out);
    assert_eq!(err.trim().lines().count(), 1, "want one error line: {err}");
    assert!(err.contains(needle), "error lacks {needle:?}: {err}");
    b.assert_nothing_left();
}

/// Sets `path` ("process.user.username") in the config.
fn set(config: &mut Value, path: &str, value: Value) {
    let (parents, last) = path.rsplit_once('.').map_or((None, path), |(p, l)| (Some(p), l));
    let mut at = config;
    for key in parents.into_iter().flat_map(|p| p.split('.')) {
        at = &mut at[key];
    }
    at[last] = value;
}

/// The properties of runtime-spec 1.3's config schema (schema/config-schema.json and the
/// platform schemas it refers to) that berth's `features` does not cover, each with a value
/// that asks for something: the other platforms' sections and the Windows-only fields.
fn not_applied() -> Vec<(&'static str, Value)> {
    vec![
        ("process.commandLine", json!("cmd.exe /c dir")),
        ("process.user.username", json!("ContainerAdministrator")),
        ("windows", json!({"layerFolders": ["C:\\layers\\base"]})),
        ("solaris", json!({"milestone": "svc:/milestone/container:default", "limitpriv": "default"})),
        ("zos", json!({"namespaces": [{"type": "pid"}]})),
        ("freebsd", json!({"jail": {"host": "new"}})),
        ("vm", json!({"hypervisor": {"path": "/usr/bin/qemu-system-x86_64"}, "kernel": {"path": "/boot/vmlinuz"}})),
    ]
}

#[test]
fn what_berth_does_not_apply_is_refused_by_name() {
    if runtime_is_runc() {
        return skip("runc 1.1.5 ignores other platforms' sections and Windows-only fields");
    }
    for (path, value) in not_applied() {
        let mut b = Bundle::new("notapplied");
        b.sh("true");
        set(&mut b.config, path, value);
        let out = b.create();
        assert_refused(&b, &out, &format!("{path}:"));
    }
}

/// Engines send empty sections and empty strings for what they leave alone: not a request.
#[test]
fn empty_values_ask_for_nothing() {
    let mut b = Bundle::new("emptyfields");
    b.sh("echo ran");
    b.config["process"]["commandLine"] = json!("");
    b.config["windows"] = json!({});
    b.config["vm"] = json!(null);
    b.config["linux"]["intelRdt"] = json!({});
    assert_eq!(b.run_ok().trim(), "ran");
}

/// linux.intelRdt goes to resctrl where the host has it; where it does not (this VM), the
/// config is refused rather than the container left unpartitioned.
#[test]
fn intel_rdt_is_applied_or_refused() {
    if runtime_is_runc() {
        return skip("runc 1.1.5 runs a container that asks for intelRdt unpartitioned on a host without resctrl");
    }
    let resctrl = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .find(|l| l.split(" - ").nth(1).is_some_and(|r| r.starts_with("resctrl ")))
        .map(|l| l.split(' ').nth(4).unwrap().to_string());
    let mut b = Bundle::new("rdt");
    b.sh("sleep 300");
    b.config["linux"]["intelRdt"] = json!({"closID": format!("berth-test-{}", std::process::id())});
    let Some(root) = resctrl else {
        let out = b.create();
        return assert_refused(&b, &out, "linux.intelRdt: this host has no resctrl");
    };
    let out = b.run_detached(&[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let group = std::path::Path::new(&root).join(format!("berth-test-{}", std::process::id()));
    let tasks = std::fs::read_to_string(group.join("tasks")).unwrap();
    let pid = b.state()["pid"].as_i64().unwrap().to_string();
    assert!(tasks.lines().any(|t| t == pid), "the init is not in the resctrl group: {tasks}");
    assert!(b.cmd(&["delete", "--force", &b.id]).status.success());
    assert!(!group.exists(), "the resctrl group berth made outlived the container");
}

#[test]
fn a_1_3_config_loads_and_state_reports_the_runtimes_spec() {
    let mut b = Bundle::new("v13");
    b.sh("sleep 300");
    b.config["ociVersion"] = json!("1.3.0");
    // Not a property of any spec: ignored, as config.md's extensibility rule requires.
    b.config["linux"]["notASpecProperty"] = json!({"x": 1});
    let out = b.run_detached(&[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let features: Value = serde_json::from_slice(&b.cmd(&["features"]).stdout).unwrap();
    assert_eq!(b.state()["ociVersion"], features["ociVersionMax"], "state reports another spec than features");
}

/// A config of a newer spec than berth's may carry fields of that spec berth cannot know:
/// those are refused; a property outside the spec in a config of berth's spec is ignored.
#[test]
fn unknown_properties_of_a_newer_spec_are_refused() {
    if runtime_is_runc() {
        return skip("runc 1.1.5 ignores every unknown property, of any spec version");
    }
    let mut b = Bundle::new("v19");
    b.sh("echo ran");
    b.config["ociVersion"] = json!("1.9.0");
    assert_eq!(b.run_ok().trim(), "ran", "a newer config that asks for nothing new was refused");
    let mut b = Bundle::new("v19field");
    b.sh("echo ran");
    b.config["ociVersion"] = json!("1.9.0");
    b.config["process"]["someFutureField"] = json!(true);
    let out = b.create();
    assert_refused(&b, &out, "process.someFutureField");
}

fn features(b: &Bundle) -> Value {
    let out = b.cmd(&["features"]);
    assert!(out.status.success());
    serde_json::from_slice(&out.stdout).unwrap()
}

fn list(v: &Value) -> Vec<String> {
    match v {
        Value::Array(a) => a.iter().map(|s| s.as_str().unwrap().to_string()).collect(),
        Value::String(s) => s.split(',').map(String::from).collect(),
        other => panic!("not a list: {other}"),
    }
}

/// Every memory policy mode and flag `features` lists runs here (node 0 exists everywhere).
#[test]
fn features_memory_policies_all_run() {
    if runtime_is_runc() {
        return skip("runc 1.1.5 lists no memoryPolicy in its features");
    }
    if !std::path::Path::new("/proc/self/numa_maps").exists() {
        return skip("this kernel has no NUMA support");
    }
    let b = Bundle::new("featmpol");
    let f = features(&b);
    let modes = list(&f["linux"]["memoryPolicy"]["modes"]);
    assert!(modes.len() >= 7, "{modes:?}");
    for mode in modes {
        let nodes = if mode == "MPOL_DEFAULT" || mode == "MPOL_LOCAL" { json!(null) } else { json!("0") };
        let mut c = Bundle::new("featmode");
        c.sh("true");
        c.config["linux"]["memoryPolicy"] = json!({"mode": mode, "nodes": nodes});
        let out = c.run();
        assert!(out.status.success(), "{mode}: {}", stderr(&out));
    }
    for flag in list(&f["linux"]["memoryPolicy"]["flags"]) {
        let mut c = Bundle::new("featflag");
        c.sh("true");
        c.config["linux"]["memoryPolicy"] = json!({"mode": "MPOL_BIND", "nodes": "0", "flags": [flag]});
        let out = c.run();
        assert!(out.status.success(), "{flag}: {}", stderr(&out));
    }
}

/// The scheduler policies, I/O classes and personality domains `features` lists are applied
/// (the scheduling and personality suites check their values from inside).
#[test]
fn features_process_settings_all_apply() {
    if runtime_is_runc() {
        return skip("runc 1.1.5 lists none of these in its features");
    }
    let b = Bundle::new("featproc");
    let f = features(&b);
    let a = &f["annotations"];
    assert_eq!(f["linux"]["netDevices"]["enabled"], true);
    assert_eq!(f["linux"]["intelRdt"]["enabled"], true);
    assert_eq!(list(&a["org.berth.process.execCPUAffinity"]), ["initial", "final"]);
    let mut runs: Vec<(String, Value, Value)> = Vec::new();
    for policy in list(&a["org.berth.process.scheduler.policies"]) {
        let s = match policy.as_str() {
            "SCHED_FIFO" | "SCHED_RR" => json!({"policy": policy, "priority": 1}),
            "SCHED_DEADLINE" => json!({"policy": policy, "runtime": 100_000, "deadline": 1_000_000}),
            _ => json!({"policy": policy}),
        };
        runs.push((policy, json!({"scheduler": s}), json!({})));
    }
    for class in list(&a["org.berth.process.ioPriority.classes"]) {
        runs.push((class.clone(), json!({"ioPriority": {"class": class, "priority": 0}}), json!({})));
    }
    for domain in list(&a["org.berth.linux.personality.domains"]) {
        runs.push((domain.clone(), json!({}), json!({"personality": {"domain": domain}})));
    }
    for flag in list(&a["org.berth.linux.personality.flags"]) {
        runs.push((flag.clone(), json!({}), json!({"personality": {"domain": "LINUX", "flags": [flag]}})));
    }
    for (name, process, linux) in runs {
        let mut c = Bundle::new("featrun");
        c.sh("true");
        c.config["process"].as_object_mut().unwrap().extend(process.as_object().unwrap().clone());
        c.config["linux"].as_object_mut().unwrap().extend(linux.as_object().unwrap().clone());
        let out = c.run();
        let real_time_refused = stderr(&out).contains("realtimeRuntime");
        assert!(out.status.success() || real_time_refused, "{name}: {}", stderr(&out));
    }
}
