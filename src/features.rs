//! `berth features`: the OCI features document (runtime-spec features.md), listing only what
//! berth really implements: engines decide from it what they may ask for.

use serde_json::{json, Value};

use crate::annotations::features as names;
use crate::process::{mempolicy, personality, sched};
use crate::rootfs::MOUNT_OPTION_NAMES;

pub fn features() -> Value {
    let caps: Vec<String> =
        caps::all().iter().map(|c| c.to_string()).collect::<std::collections::BTreeSet<_>>().into_iter().collect();
    json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": crate::OCI_VERSION,
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
        "mountOptions": MOUNT_OPTION_NAMES.to_vec(),
        "linux": {
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"],
            "capabilities": caps,
            "cgroup": { "v1": true, "v2": true, "systemd": true, "systemdUser": false, "rdma": true },
            "seccomp": {
                "enabled": true,
                "actions": ["SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS",
                            "SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY", "SCMP_ACT_TRACE", "SCMP_ACT_TRAP"],
                "operators": ["SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_LE", "SCMP_CMP_LT",
                              "SCMP_CMP_MASKED_EQ", "SCMP_CMP_NE"],
                "archs": crate::security::seccomp::SUPPORTED_ARCHES,
                "knownFlags": ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
                               "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
                "supportedFlags": ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
                                   "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]
            },
            "apparmor": { "enabled": true },
            "selinux": { "enabled": true },
            // Compiled in; a host without resctrl refuses the config at create.
            "intelRdt": { "enabled": true, "schemata": true, "monitoring": true },
            "memoryPolicy": { "modes": mempolicy::MODES, "flags": mempolicy::FLAGS },
            "netDevices": { "enabled": true },
            "mountExtensions": { "idmap": { "enabled": true } }
        },
        // What features.md has no field for yet, as lists: the scheduler policies and flags,
        // I/O priority classes, personality domains and flags berth applies, and that it
        // applies execCPUAffinity.
        "annotations": {
            names::VERSION: crate::VERSION,
            names::COMMIT: crate::COMMIT,
            names::SCHEDULER_POLICIES: sched::POLICIES.join(","),
            names::SCHEDULER_FLAGS: sched::FLAGS.join(","),
            names::IO_PRIORITY_CLASSES: sched::IO_CLASSES.join(","),
            names::EXEC_CPU_AFFINITY: "initial,final",
            names::PERSONALITY_DOMAINS: personality::DOMAINS.join(","),
            names::PERSONALITY_FLAGS: personality::FLAGS.map(|(name, _)| name).join(","),
            names::PIDFD_SOCKET: "true"
        }
    })
}
