//! process.scheduler, process.ioPriority and process.execCPUAffinity: observed from inside
//! the container by the probe (sched_getattr, ioprio_get) and /proc/self/status, for the init
//! and for exec'd processes; bad values refused at create with nothing left behind.
//!
//! runc 1.1.5 has none of them (it ignores scheduler and ioPriority, runc 1.2 added them).

use runtime_tests::*;
use serde_json::{json, Value};

const RUNC_LACKS: &str = "runc 1.1.5 ignores process.scheduler, ioPriority and execCPUAffinity (runc 1.2 applies them)";

fn probe_bundle(name: &str) -> Bundle {
    let b = Bundle::new(name);
    b.install(&probe(), "/probe");
    b
}

/// `key=value` from the probe's output.
fn field(out: &str, key: &str) -> String {
    out.split_whitespace()
        .find_map(|w| w.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("no {key}= in {out}"))
        .to_string()
}

/// The probe's `sched` line as (policy, flags, nice, priority).
fn sched(out: &str) -> (u32, u64, i32, u32) {
    let line = out.lines().find(|l| l.starts_with("sched ")).unwrap_or_else(|| panic!("no sched line: {out}"));
    (
        field(line, "policy").parse().unwrap(),
        field(line, "flags").parse().unwrap(),
        field(line, "nice").parse().unwrap(),
        field(line, "priority").parse().unwrap(),
    )
}

fn ioprio(out: &str) -> (u32, u32) {
    let line = out.lines().find(|l| l.starts_with("ioprio ")).unwrap_or_else(|| panic!("no ioprio line: {out}"));
    (field(line, "class").parse().unwrap(), field(line, "level").parse().unwrap())
}

/// Runs the probe as the init with `scheduler` and returns its output.
fn init_probe(process_key: &str, value: Value) -> String {
    let mut b = probe_bundle("sched");
    b.config["process"]["args"] = json!(["/probe"]);
    b.config["process"][process_key] = value;
    b.run_ok()
}

/// `exec --process FILE` of the probe with these extra process fields.
fn exec_probe(b: &Bundle, extra: Value) -> std::process::Output {
    let mut process = json!({"args": ["/probe"], "cwd": "/", "user": {"uid": 0, "gid": 0}, "env": ["PATH=/bin"]});
    process.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    let file = b.dir.join(format!("process-{}.json", std::process::id()));
    std::fs::write(&file, process.to_string()).unwrap();
    b.cmd(&["exec", "--process", file.to_str().unwrap(), &b.id])
}

fn running_probe_container(name: &str, process_extra: Value) -> Bundle {
    let mut b = probe_bundle(name);
    b.sh("sleep 300");
    b.config["process"].as_object_mut().unwrap().extend(process_extra.as_object().unwrap().clone());
    let out = b.run_detached(&[]);
    assert!(out.status.success(), "run --detach: {}", stderr(&out));
    b
}

#[test]
fn the_scheduler_reaches_the_init() {
    if runtime_is_runc() {
        return skip(RUNC_LACKS);
    }
    let batch = init_probe("scheduler", json!({"policy": "SCHED_BATCH", "nice": 7}));
    assert_eq!(sched(&batch), (libc::SCHED_BATCH as u32, 0, 7, 0), "{batch}");
    let idle = init_probe("scheduler", json!({"policy": "SCHED_IDLE"}));
    assert_eq!(sched(&idle).0, libc::SCHED_IDLE as u32, "{idle}");
    // The spec's spelling of the flag (oci-spec 0.10 spells it differently).
    let other =
        init_probe("scheduler", json!({"policy": "SCHED_OTHER", "nice": -5, "flags": ["SCHED_FLAG_RESET_ON_FORK"]}));
    assert_eq!(sched(&other), (libc::SCHED_OTHER as u32, libc::SCHED_FLAG_RESET_ON_FORK as u64, -5, 0), "{other}");
    let dl = init_probe(
        "scheduler",
        json!({"policy": "SCHED_DEADLINE", "runtime": 1_000_000, "deadline": 10_000_000, "period": 20_000_000}),
    );
    assert_eq!(sched(&dl).0, libc::SCHED_DEADLINE as u32, "{dl}");
    let line = dl.lines().find(|l| l.starts_with("sched ")).unwrap();
    assert_eq!(
        (field(line, "runtime"), field(line, "deadline"), field(line, "period")),
        ("1000000".into(), "10000000".into(), "20000000".into())
    );
}

#[test]
fn the_scheduler_reaches_exec_processes() {
    if runtime_is_runc() {
        return skip(RUNC_LACKS);
    }
    let b = running_probe_container("schedexec", json!({"scheduler": {"policy": "SCHED_BATCH", "nice": 3}}));
    // An exec built from the container's process (the CLI form) takes its scheduler.
    let cli = b.cmd(&["exec", &b.id, "/probe"]);
    assert!(cli.status.success(), "{}", stderr(&cli));
    assert_eq!(sched(&stdout(&cli)), (libc::SCHED_BATCH as u32, 0, 3, 0));
    // A process of its own (as engines pass it) takes its own.
    let own = exec_probe(&b, json!({"scheduler": {"policy": "SCHED_IDLE"}}));
    assert!(own.status.success(), "{}", stderr(&own));
    assert_eq!(sched(&stdout(&own)).0, libc::SCHED_IDLE as u32);
    let none = exec_probe(&b, json!({}));
    assert_eq!(sched(&stdout(&none)).0, libc::SCHED_OTHER as u32, "an exec without a scheduler took one");
}

#[test]
fn the_io_priority_reaches_the_init_and_exec_processes() {
    if runtime_is_runc() {
        return skip(RUNC_LACKS);
    }
    let be = init_probe("ioPriority", json!({"class": "IOPRIO_CLASS_BE", "priority": 4}));
    assert_eq!(ioprio(&be), (2, 4), "{be}");
    let rt = init_probe("ioPriority", json!({"class": "IOPRIO_CLASS_RT", "priority": 1}));
    assert_eq!(ioprio(&rt), (1, 1), "{rt}");
    let idle = init_probe("ioPriority", json!({"class": "IOPRIO_CLASS_IDLE", "priority": 0}));
    assert_eq!(ioprio(&idle).0, 3, "{idle}");
    let b = running_probe_container("ioexec", json!({"ioPriority": {"class": "IOPRIO_CLASS_IDLE", "priority": 0}}));
    let cli = b.cmd(&["exec", &b.id, "/probe"]);
    assert_eq!(ioprio(&stdout(&cli)).0, 3, "{}", stderr(&cli));
    let own = exec_probe(&b, json!({"ioPriority": {"class": "IOPRIO_CLASS_BE", "priority": 6}}));
    assert_eq!(ioprio(&stdout(&own)), (2, 6), "{}", stderr(&own));
}

fn two_cpus() -> bool {
    std::fs::read_to_string("/sys/devices/system/cpu/online").is_ok_and(|s| s.trim() != "0")
}

fn cpus_allowed(out: &std::process::Output) -> String {
    assert!(out.status.success(), "{}", stderr(out));
    status_field(&stdout(out), "Cpus_allowed_list")
}

/// `initial` is taken before the process joins the container's cgroup: a cpuset of CPU 0
/// cannot refuse CPU 1 there; `final` is what the process runs on.
#[test]
fn exec_cpu_affinity_initial_then_final() {
    if runtime_is_runc() {
        return skip(RUNC_LACKS);
    }
    if !two_cpus() {
        return skip("this host has one CPU");
    }
    let mut b = Bundle::new("affinity");
    b.sh("sleep 300");
    b.config["linux"]["resources"]["cpu"] = json!({"cpus": "0", "mems": "0"});
    let out = b.run_detached(&[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let grep = json!(["grep", "Cpus_allowed_list", "/proc/self/status"]);
    let process = |affinity: Value| json!({"args": grep, "cwd": "/", "user": {"uid": 0, "gid": 0}, "env": ["PATH=/bin"], "execCPUAffinity": affinity});
    let file = b.dir.join("affinity.json");
    std::fs::write(&file, process(json!({"initial": "1", "final": "0"})).to_string()).unwrap();
    let out = b.cmd(&["--debug", "exec", "--process", file.to_str().unwrap(), &b.id]);
    assert_eq!(cpus_allowed(&out), "0");
    assert!(stderr(&out).contains("running on CPUs 1 "), "initial was not taken: {}", stderr(&out));
    // Without `final`: the container's cpuset, not `initial`.
    std::fs::write(&file, process(json!({"initial": "1"})).to_string()).unwrap();
    assert_eq!(cpus_allowed(&b.cmd(&["exec", "--process", file.to_str().unwrap(), &b.id])), "0");
}

/// The init takes no execCPUAffinity (config.md: "not applicable to the container's init
/// process"); its exec'd processes do. Whatever berth itself was pinned to does not leak in.
#[test]
fn exec_cpu_affinity_is_for_exec_processes_only() {
    if runtime_is_runc() {
        return skip(RUNC_LACKS);
    }
    if !two_cpus() {
        return skip("this host has one CPU");
    }
    let mut b = Bundle::new("affinityinit");
    b.sh("grep Cpus_allowed_list /proc/self/status > /tmp/init; sleep 300");
    b.config["root"]["readonly"] = json!(false);
    b.config["process"]["execCPUAffinity"] = json!({"final": "1"});
    b.save();
    let mut cmd = std::process::Command::new("taskset");
    cmd.args(["-c", "0"]).arg(berth_bin()).arg("--root").arg(&b.root);
    cmd.args(["run", "--detach", "--bundle"]).arg(&b.dir).arg(&b.id);
    let out = b.detached(cmd);
    assert!(out.status.success(), "{}", stderr(&out));
    // Written by the shell's redirection first, by grep a moment later.
    let init = b.dir.join("rootfs/tmp/init");
    let mut text = String::new();
    for _ in 0..500 {
        text = std::fs::read_to_string(&init).unwrap_or_default();
        if text.ends_with('\n') {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let all = std::fs::read_to_string("/sys/devices/system/cpu/online").unwrap();
    assert_eq!(status_field(&text, "Cpus_allowed_list"), all.trim());
    let exec = b.cmd(&["exec", &b.id, "grep", "Cpus_allowed_list", "/proc/self/status"]);
    assert_eq!(cpus_allowed(&exec), "1");
}

#[test]
fn bad_values_are_refused_at_create() {
    if runtime_is_runc() {
        return skip(RUNC_LACKS);
    }
    let cases = [
        ("scheduler", json!({"policy": "SCHED_FIFO"}), "process.scheduler: priority 0"),
        ("scheduler", json!({"policy": "SCHED_ISO"}), "SCHED_ISO"),
        ("scheduler", json!({"policy": "SCHED_OTHER", "nice": 40}), "nice 40"),
        (
            "scheduler",
            json!({"policy": "SCHED_DEADLINE", "runtime": 5000, "deadline": 1000}),
            "SCHED_DEADLINE deadline",
        ),
        ("ioPriority", json!({"class": "IOPRIO_CLASS_BE", "priority": 9}), "process.ioPriority.priority 9"),
        ("ioPriority", json!({"priority": 1}), "process.ioPriority.class"),
        ("execCPUAffinity", json!({"final": "3-1"}), "process.execCPUAffinity.final"),
    ];
    for (key, value, needle) in cases {
        let mut b = Bundle::new("schedbad");
        b.config["process"][key] = value;
        let out = b.create();
        assert!(!out.status.success(), "{key} accepted");
        let err = stderr(&out);
        assert_eq!(err.trim().lines().count(), 1, "want one error line: {err}");
        assert!(err.contains(needle), "error lacks {needle:?}: {err}");
        b.assert_nothing_left();
    }
}

#[test]
fn bad_values_are_refused_at_exec() {
    if runtime_is_runc() {
        return skip(RUNC_LACKS);
    }
    let b = running_probe_container("schedbadexec", json!({}));
    let out = exec_probe(&b, json!({"scheduler": {"policy": "SCHED_RR", "priority": 200}}));
    assert!(!out.status.success());
    assert!(stderr(&out).contains("process.scheduler: priority 200"), "{}", stderr(&out));
    let out = exec_probe(&b, json!({"commandLine": "probe.exe"}));
    assert!(!out.status.success());
    assert!(stderr(&out).contains("process.commandLine"), "{}", stderr(&out));
    assert_eq!(b.status(), "running");
}

/// A real-time policy is applied, or, where the kernel schedules real-time tasks per cgroup
/// (CONFIG_RT_GROUP_SCHED, as on this VM) and the container's cgroup has no real-time
/// runtime, refused at create saying so; never run as SCHED_OTHER.
#[test]
fn a_real_time_policy_is_applied_or_refused() {
    if runtime_is_runc() {
        return skip(RUNC_LACKS);
    }
    let mut b = probe_bundle("rt");
    b.config["process"]["args"] = json!(["/probe"]);
    b.config["process"]["scheduler"] = json!({"policy": "SCHED_RR", "priority": 10});
    let out = b.run();
    if out.status.success() {
        assert_eq!(sched(&stdout(&out)), (libc::SCHED_RR as u32, 0, 0, 10));
    } else {
        let err = stderr(&out);
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(err.contains("sched_setattr") && err.contains("realtimeRuntime"), "{err}");
        b.assert_nothing_left();
    }
}
