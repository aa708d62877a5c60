//! How a container process is scheduled: process.scheduler (sched_setattr), process.ioPriority
//! (ioprio_set) and the CPUs it runs on (process.execCPUAffinity).
//!
//! Scheduler and I/O priority are set by the process itself in launch::prepare, while it is
//! still root with every capability (a real-time policy, a negative nice and the real-time
//! I/O class need CAP_SYS_NICE), and are inherited through execve.
//!
//! execCPUAffinity applies to exec'd processes only ("not applicable to the container's init
//! process", config.md; CRI-O pins exec'd processes to housekeeping CPUs this way, and the
//! workload must not follow them there). `initial` is where the runtime's side runs until the
//! process is in the container's cgroup: berth's own exec process moves there before it forks
//! anything (so a cpuset cgroup cannot refuse CPUs outside it), and the forked process
//! inherits it. Joining a cpuset resets the affinity to the cpuset's CPUs; `final` is then
//! set right before execve. Without `final` every container process, the init included, is
//! set to all CPUs (bounded by its cpuset by the kernel) so the affinity of whoever started
//! berth (`taskset … berth run`) does not leak into the container, as runc 1.2 does.

use nix::sched::{sched_getaffinity, sched_setaffinity, CpuSet};
use nix::unistd::Pid;
use oci_spec::runtime::{IOPriorityClass, LinuxSchedulerFlag, LinuxSchedulerPolicy, Process, Scheduler};

use crate::error::{Error, Result, SysContext};
use crate::sys::{self, SchedAttr};

/// The policies and flags berth applies (features.rs lists them).
pub const POLICIES: [&str; 6] =
    ["SCHED_OTHER", "SCHED_BATCH", "SCHED_IDLE", "SCHED_FIFO", "SCHED_RR", "SCHED_DEADLINE"];
pub const FLAGS: [&str; 5] = [
    "SCHED_FLAG_RESET_ON_FORK",
    "SCHED_FLAG_RECLAIM",
    "SCHED_FLAG_DL_OVERRUN",
    "SCHED_FLAG_KEEP_POLICY",
    "SCHED_FLAG_KEEP_PARAMS",
];
pub const IO_CLASSES: [&str; 3] = ["IOPRIO_CLASS_RT", "IOPRIO_CLASS_BE", "IOPRIO_CLASS_IDLE"];

fn invalid(msg: String) -> Error {
    Error::InvalidConfig(msg)
}

/// Before anything exists: the values the kernel would refuse for their form alone.
/// `path` names the process ("process").
pub fn check(process: &Process, path: &str) -> Result<()> {
    if let Some(s) = process.scheduler() {
        sched_attr(s).map_err(|e| invalid(format!("{path}.scheduler: {e}")))?;
    }
    if let Some(io) = process.io_priority() {
        if !(0..=7).contains(&io.priority()) {
            return Err(invalid(format!(
                "{path}.ioPriority.priority {}: want 0 (highest) to 7 (lowest)",
                io.priority()
            )));
        }
    }
    if let Some(a) = process.exec_cpu_affinity() {
        for (key, list) in [("initial", a.initial()), ("final", a.cpu_affinity_final())] {
            if let Some(list) = list {
                parse_cpus(list).map_err(|e| invalid(format!("{path}.execCPUAffinity.{key} {list:?}: {e}")))?;
            }
        }
    }
    Ok(())
}

fn policy_number(p: LinuxSchedulerPolicy) -> std::result::Result<u32, String> {
    use LinuxSchedulerPolicy as P;
    Ok(match p {
        P::SchedOther => libc::SCHED_OTHER as u32,
        P::SchedFifo => libc::SCHED_FIFO as u32,
        P::SchedRr => libc::SCHED_RR as u32,
        P::SchedBatch => libc::SCHED_BATCH as u32,
        P::SchedIdle => libc::SCHED_IDLE as u32,
        P::SchedDeadline => libc::SCHED_DEADLINE as u32,
        P::SchedIso => {
            return Err("policy SCHED_ISO is not a Linux scheduling policy (it came from out-of-tree patches)".into())
        }
    })
}

fn flag_bits(f: LinuxSchedulerFlag) -> std::result::Result<u64, String> {
    use LinuxSchedulerFlag as F;
    Ok(match f {
        F::SchedResetOnFork => libc::SCHED_FLAG_RESET_ON_FORK,
        F::SchedFlagReclaim => libc::SCHED_FLAG_RECLAIM,
        F::SchedFlagDLOverrun => libc::SCHED_FLAG_DL_OVERRUN,
        F::SchedFlagKeepPolicy => libc::SCHED_FLAG_KEEP_POLICY,
        F::SchedFlagKeepParams => libc::SCHED_FLAG_KEEP_PARAMS,
        // The kernel takes the clamp values with these flags, and the spec has no field for
        // them: applying the flag would clamp to a value nobody asked for.
        F::SchedFlagUtilClampMin | F::SchedFlagUtilClampMax => {
            return Err(format!("flag {f}: the runtime spec carries no utilization clamp value to apply with it"))
        }
    } as u64)
}

/// process.scheduler as sched_setattr takes it, refusing what the kernel would refuse for its
/// form (sched_setattr(2)) and what it would silently ignore.
fn sched_attr(s: &Scheduler) -> std::result::Result<SchedAttr, String> {
    use LinuxSchedulerPolicy as P;
    let policy = *s.policy();
    let mut attr = SchedAttr { policy: policy_number(policy)?, ..Default::default() };
    for f in s.flags().iter().flatten() {
        attr.flags |= flag_bits(*f)?;
    }
    let nice = s.nice().unwrap_or(0);
    if nice != 0 && !matches!(policy, P::SchedOther | P::SchedBatch) {
        return Err(format!("nice {nice} applies to SCHED_OTHER and SCHED_BATCH only, not {policy}"));
    }
    if !(-20..=19).contains(&nice) {
        return Err(format!("nice {nice}: want -20 to 19"));
    }
    attr.nice = nice;
    let priority = s.priority().unwrap_or(0);
    match policy {
        P::SchedFifo | P::SchedRr if !(1..=99).contains(&priority) => {
            return Err(format!("priority {priority}: {policy} wants 1 to 99"))
        }
        P::SchedFifo | P::SchedRr => {}
        _ if priority != 0 => return Err(format!("priority {priority} applies to SCHED_FIFO and SCHED_RR only")),
        _ => {}
    }
    attr.priority = priority as u32;
    let (runtime, deadline, period) = (s.runtime().unwrap_or(0), s.deadline().unwrap_or(0), s.period().unwrap_or(0));
    let dl_flags = (libc::SCHED_FLAG_RECLAIM | libc::SCHED_FLAG_DL_OVERRUN) as u64;
    if policy != P::SchedDeadline {
        if runtime != 0 || deadline != 0 || period != 0 {
            return Err(format!("runtime, deadline and period apply to SCHED_DEADLINE only, not {policy}"));
        }
        if attr.flags & dl_flags != 0 {
            return Err(format!(
                "SCHED_FLAG_RECLAIM and SCHED_FLAG_DL_OVERRUN apply to SCHED_DEADLINE only, not {policy}"
            ));
        }
        return Ok(attr);
    }
    // The kernel's own rules (__checkparam_dl): a runtime of at least 1024 ns, no longer
    // than the deadline, which is no longer than the period (0: the deadline).
    if runtime < 1024 {
        return Err(format!("SCHED_DEADLINE runtime {runtime} ns: want at least 1024"));
    }
    if deadline < runtime {
        return Err(format!("SCHED_DEADLINE deadline {deadline} ns is shorter than its runtime {runtime} ns"));
    }
    if period != 0 && period < deadline {
        return Err(format!("SCHED_DEADLINE period {period} ns is shorter than its deadline {deadline} ns"));
    }
    if deadline >= 1 << 63 || period >= 1 << 63 {
        return Err("SCHED_DEADLINE deadline and period must be below 2^63 ns".into());
    }
    attr.runtime = runtime;
    attr.deadline = deadline;
    attr.period = period;
    Ok(attr)
}

fn io_priority_value(class: IOPriorityClass, priority: i64) -> i32 {
    const IOPRIO_CLASS_SHIFT: i32 = 13;
    let class = match class {
        IOPriorityClass::IoprioClassRt => 1,
        IOPriorityClass::IoprioClassBe => 2,
        IOPriorityClass::IoprioClassIdle => 3,
    };
    class << IOPRIO_CLASS_SHIFT | priority as i32
}

/// In the container process, before its capabilities are dropped: the CPUs it ends up on,
/// then its scheduling policy and I/O priority. `exec`: an exec'd process (the init takes no
/// execCPUAffinity).
pub fn apply(process: &Process, exec: bool) -> Result<()> {
    let last = process.exec_cpu_affinity().as_ref().filter(|_| exec).and_then(|a| a.cpu_affinity_final().as_deref());
    match last {
        Some(list) => {
            let cpus = parse_cpus(list).map_err(|e| invalid(format!("process.execCPUAffinity.final {list:?}: {e}")))?;
            sched_setaffinity(Pid::from_raw(0), &cpus)
                .ctx("set CPU affinity to process.execCPUAffinity.final", list)?;
        }
        None => {
            // Every CPU: the kernel keeps what the cpuset allows (sched_setaffinity(2)).
            let mut all = CpuSet::new();
            for cpu in 0..CpuSet::count() {
                let _ = all.set(cpu);
            }
            sched_setaffinity(Pid::from_raw(0), &all)
                .ctx("reset CPU affinity", "all CPUs of the container's cpuset")?;
        }
    }
    if let Some(s) = process.scheduler() {
        let attr = sched_attr(s).map_err(|e| invalid(format!("process.scheduler: {e}")))?;
        let real_time = matches!(s.policy(), LinuxSchedulerPolicy::SchedFifo | LinuxSchedulerPolicy::SchedRr);
        sys::sched_setattr(&attr).map_err(|errno| {
            let hint = if real_time && errno == nix::errno::Errno::EPERM {
                " (a real-time policy needs CAP_SYS_NICE in the host's user namespace, and where the kernel schedules real-time tasks per cgroup, real-time runtime for the container's cgroup: linux.resources.cpu.realtimeRuntime)"
            } else {
                ""
            };
            Error::Scheduler { policy: s.policy().to_string(), errno, hint }
        })?;
    }
    if let Some(io) = process.io_priority() {
        sys::ioprio_set_self(io_priority_value(io.class(), io.priority()))
            .ctx("ioprio_set", format!("process.ioPriority {} {}", io.class(), io.priority()))?;
    }
    Ok(())
}

/// `exec`, in berth's own process before it forks the exec'd one: moves to
/// execCPUAffinity.initial (see the module comment). Returns the CPUs now in force, for the
/// debug log.
pub fn enter_initial_cpus(process: &Process) -> Result<Option<String>> {
    let Some(list) = process.exec_cpu_affinity().as_ref().and_then(|a| a.initial().as_deref()) else {
        return Ok(None);
    };
    let cpus = parse_cpus(list).map_err(|e| invalid(format!("process.execCPUAffinity.initial {list:?}: {e}")))?;
    sched_setaffinity(Pid::from_raw(0), &cpus).ctx("set CPU affinity to process.execCPUAffinity.initial", list)?;
    let now = sched_getaffinity(Pid::from_raw(0)).ctx("read CPU affinity", "berth")?;
    Ok(Some(format_cpus(&now)))
}

/// "0-3,7" (cpuset list format, as config.md writes CPU lists) to a CpuSet.
pub fn parse_cpus(list: &str) -> std::result::Result<CpuSet, String> {
    let mut set = CpuSet::new();
    let bad = || "want CPU numbers and ranges like 0-3,7".to_string();
    for part in list.split(',').map(str::trim) {
        let (lo, hi) = part.split_once('-').unwrap_or((part, part));
        let lo: usize = lo.trim().parse().map_err(|_| bad())?;
        let hi: usize = hi.trim().parse().map_err(|_| bad())?;
        if lo > hi {
            return Err(format!("range {part} runs backwards"));
        }
        for cpu in lo..=hi {
            set.set(cpu).map_err(|_| format!("CPU {cpu} is beyond the {} CPUs Linux can address", CpuSet::count()))?;
        }
    }
    Ok(set)
}

/// A CpuSet in list format, for messages.
pub fn format_cpus(set: &CpuSet) -> String {
    let cpus: Vec<usize> = (0..CpuSet::count()).filter(|c| set.is_set(*c).unwrap_or(false)).collect();
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < cpus.len() {
        let start = cpus[i];
        while i + 1 < cpus.len() && cpus[i + 1] == cpus[i] + 1 {
            i += 1;
        }
        out.push(if cpus[i] == start { start.to_string() } else { format!("{start}-{}", cpus[i]) });
        i += 1;
    }
    out.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn process(json: serde_json::Value) -> Process {
        let mut v = serde_json::json!({"cwd": "/", "user": {"uid": 0, "gid": 0}});
        v.as_object_mut().unwrap().extend(json.as_object().unwrap().clone());
        crate::spec::fields::normalize_process(&mut v);
        serde_json::from_value(v).unwrap()
    }

    fn scheduler_error(json: serde_json::Value) -> String {
        check(&process(serde_json::json!({ "scheduler": json })), "process").unwrap_err().to_string()
    }

    #[test]
    fn cpu_lists() {
        assert_eq!(format_cpus(&parse_cpus("0-3,7").unwrap()), "0-3,7");
        assert_eq!(format_cpus(&parse_cpus("1,0").unwrap()), "0-1");
        assert_eq!(format_cpus(&parse_cpus(" 2 - 3 ").unwrap()), "2-3");
        assert!(parse_cpus("3-1").is_err());
        assert!(parse_cpus("a").is_err());
        assert!(parse_cpus("").is_err());
        assert!(parse_cpus("0-100000").is_err());
    }

    #[test]
    fn schedulers_the_kernel_would_refuse_are_refused() {
        assert!(scheduler_error(serde_json::json!({"policy": "SCHED_ISO"})).contains("SCHED_ISO"));
        assert!(scheduler_error(serde_json::json!({"policy": "SCHED_FIFO"})).contains("1 to 99"));
        assert!(scheduler_error(serde_json::json!({"policy": "SCHED_OTHER", "priority": 5})).contains("priority"));
        assert!(scheduler_error(serde_json::json!({"policy": "SCHED_RR", "priority": 5, "nice": 3})).contains("nice"));
        assert!(scheduler_error(serde_json::json!({"policy": "SCHED_OTHER", "nice": 30})).contains("-20 to 19"));
        assert!(scheduler_error(serde_json::json!({"policy": "SCHED_BATCH", "runtime": 5})).contains("SCHED_DEADLINE"));
        assert!(scheduler_error(serde_json::json!({"policy": "SCHED_DEADLINE", "runtime": 10})).contains("1024"));
        let e = scheduler_error(serde_json::json!({"policy": "SCHED_DEADLINE", "runtime": 2000, "deadline": 1000}));
        assert!(e.contains("shorter"), "{e}");
        let e = scheduler_error(serde_json::json!({"policy": "SCHED_OTHER", "flags": ["SCHED_FLAG_UTIL_CLAMP_MAX"]}));
        assert!(e.contains("clamp"), "{e}");
        let e = scheduler_error(serde_json::json!({"policy": "SCHED_OTHER", "flags": ["SCHED_FLAG_RECLAIM"]}));
        assert!(e.contains("SCHED_DEADLINE only"), "{e}");
    }

    #[test]
    fn schedulers_map_to_sched_attr() {
        let p = process(
            serde_json::json!({"scheduler": {"policy": "SCHED_RR", "priority": 7, "flags": ["SCHED_FLAG_RESET_ON_FORK"]}}),
        );
        let a = sched_attr(p.scheduler().as_ref().unwrap()).unwrap();
        assert_eq!((a.policy, a.priority, a.flags), (libc::SCHED_RR as u32, 7, libc::SCHED_FLAG_RESET_ON_FORK as u64));
        let p = process(
            serde_json::json!({"scheduler": {"policy": "SCHED_DEADLINE", "runtime": 10000, "deadline": 20000, "period": 30000}}),
        );
        let a = sched_attr(p.scheduler().as_ref().unwrap()).unwrap();
        assert_eq!((a.runtime, a.deadline, a.period), (10000, 20000, 30000));
        let p = process(serde_json::json!({"scheduler": {"policy": "SCHED_BATCH", "nice": -5}}));
        assert_eq!(sched_attr(p.scheduler().as_ref().unwrap()).unwrap().nice, -5);
    }

    #[test]
    fn io_priorities() {
        assert_eq!(io_priority_value(IOPriorityClass::IoprioClassBe, 4), 2 << 13 | 4);
        assert_eq!(io_priority_value(IOPriorityClass::IoprioClassIdle, 0), 3 << 13);
        let e =
            check(&process(serde_json::json!({"ioPriority": {"class": "IOPRIO_CLASS_RT", "priority": 8}})), "process")
                .unwrap_err()
                .to_string();
        assert!(e.contains("process.ioPriority.priority 8"), "{e}");
    }
}
