//! The compiled filters run through a small classic-BPF interpreter, so verdicts are checked
//! per architecture, syscall and argument without loading anything into the kernel.

use super::*;

const AUDIT_X86_64: u32 = 0xc000_003e;
const AUDIT_I386: u32 = 0x4000_0003;
const AUDIT_AARCH64: u32 = 0xc000_00b7;

/// seccomp_data: nr, arch, instruction pointer, six arguments.
fn data(nr: u32, arch: u32, args: [u64; 6]) -> Vec<u8> {
    let mut d = Vec::new();
    d.extend_from_slice(&nr.to_ne_bytes());
    d.extend_from_slice(&arch.to_ne_bytes());
    d.extend_from_slice(&0u64.to_ne_bytes());
    for a in args {
        d.extend_from_slice(&a.to_ne_bytes());
    }
    d
}

fn run(prog: &[sock_filter], d: &[u8]) -> u32 {
    let (mut acc, mut pc) = (0u32, 0usize);
    loop {
        let i = &prog[pc];
        pc += 1;
        match i.code {
            0x20 => acc = u32::from_ne_bytes(d[i.k as usize..i.k as usize + 4].try_into().unwrap()),
            0x54 => acc &= i.k,
            0x05 => pc += i.k as usize,
            0x15 | 0x25 | 0x35 | 0x45 => {
                let hit = match i.code {
                    0x15 => acc == i.k,
                    0x25 => acc > i.k,
                    0x35 => acc >= i.k,
                    _ => acc & i.k != 0,
                };
                pc += if hit { i.jt } else { i.jf } as usize;
            }
            0x06 => return i.k,
            other => panic!("interpreter lacks opcode {other:#x}"),
        }
    }
}

/// The kernel's combination: the most severe verdict of all filters.
fn verdict(c: &Compiled, nr: u32, arch: u32, args: [u64; 6]) -> u32 {
    let d = data(nr, arch, args);
    let rank = |r: u32| match r & 0xffff_0000 {
        0x8000_0000 => 0,
        0x0000_0000 => 1,
        0x0003_0000 => 2,
        0x0005_0000 => 3,
        0x7fc0_0000 => 4,
        0x7ff0_0000 => 5,
        0x7ffc_0000 => 6,
        _ => 7,
    };
    c.filters.iter().map(|f| run(&f.program, &d)).min_by_key(|r| rank(*r)).unwrap()
}

fn profile(json: &str) -> LinuxSeccomp {
    serde_json::from_str(json).unwrap()
}

const ALLOW: u32 = 0x7fff_0000;
const ERRNO: u32 = 0x0005_0000;
const KILL_PROCESS: u32 = 0x8000_0000;

#[test]
fn allow_list_with_default_errno_and_conditions() {
    let c = compile(&profile(
        r#"{"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38,
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
            "syscalls": [
              {"names": ["read", "write", "no_such_syscall"], "action": "SCMP_ACT_ALLOW"},
              {"names": ["personality"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]},
              {"names": ["personality"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 4294967295, "op": "SCMP_CMP_EQ"}]},
              {"names": ["clone"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 2114060288, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]},
              {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}
            ]}"#,
    ))
    .unwrap();
    let a = [0; 6];
    assert_eq!(verdict(&c, 0, AUDIT_X86_64, a), ALLOW, "read on x86_64");
    assert_eq!(verdict(&c, 3, AUDIT_I386, a), ALLOW, "read on i386");
    assert_eq!(verdict(&c, 0x4000_0000, AUDIT_X86_64, a), ALLOW, "read on x32");
    assert_eq!(verdict(&c, 59, AUDIT_X86_64, a), ERRNO | 38, "execve gets the default");
    assert_eq!(verdict(&c, 135, AUDIT_X86_64, [8, 0, 0, 0, 0, 0]), ALLOW, "personality(8)");
    assert_eq!(verdict(&c, 135, AUDIT_X86_64, [0xffff_ffff, 0, 0, 0, 0, 0]), ALLOW, "personality(0xffffffff)");
    assert_eq!(verdict(&c, 135, AUDIT_X86_64, [9, 0, 0, 0, 0, 0]), ERRNO | 38, "personality(9)");
    assert_eq!(verdict(&c, 56, AUDIT_X86_64, [0x0001_1200, 0, 0, 0, 0, 0]), ALLOW, "clone without namespace flags");
    assert_eq!(verdict(&c, 56, AUDIT_X86_64, [0x1000_0000, 0, 0, 0, 0, 0]), ERRNO | 38, "clone(CLONE_NEWUSER)");
    assert_eq!(verdict(&c, 83, AUDIT_X86_64, a), ERRNO | 1, "mkdir gets its own errno");
    assert_eq!(verdict(&c, 63, AUDIT_AARCH64, a), KILL_PROCESS, "an architecture the profile does not list");
}

#[test]
fn numbers_above_the_profiles_last_syscall_get_enosys() {
    let c = compile(&profile(
        r#"{"defaultAction": "SCMP_ACT_ERRNO",
            "syscalls": [{"names": ["read", "write", "openat"], "action": "SCMP_ACT_ALLOW"}]}"#,
    ))
    .unwrap();
    let a = [0; 6];
    assert_eq!(verdict(&c, 1, AUDIT_X86_64, a), ALLOW, "write");
    assert_eq!(verdict(&c, 2, AUDIT_X86_64, a), ERRNO | 1, "open, below the last named, gets the default");
    assert_eq!(verdict(&c, 1000, AUDIT_X86_64, a), ERRNO | 38, "an unknown number gets ENOSYS");
    let allow = compile(&profile(
        r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO"}]}"#,
    ))
    .unwrap();
    assert_eq!(verdict(&allow, 1000, AUDIT_X86_64, a), ALLOW, "no stub under a default that allows");
}

#[test]
fn conditions_on_one_argument_are_alternatives() {
    let c = compile(&profile(
        r#"{"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["kill"], "action": "SCMP_ACT_ERRNO", "errnoRet": 22,
                          "args": [{"index": 0, "value": 100, "op": "SCMP_CMP_EQ"}, {"index": 0, "value": 9001, "op": "SCMP_CMP_EQ"}]},
                         {"names": ["tkill"], "action": "SCMP_ACT_ERRNO", "errnoRet": 22,
                          "args": [{"index": 0, "value": 100, "op": "SCMP_CMP_EQ"}, {"index": 1, "value": 9, "op": "SCMP_CMP_EQ"}]}]}"#,
    ))
    .unwrap();
    let with = |a0, a1| [a0, a1, 0, 0, 0, 0];
    assert_eq!(verdict(&c, 62, AUDIT_X86_64, with(100, 0)), ERRNO | 22);
    assert_eq!(verdict(&c, 62, AUDIT_X86_64, with(9001, 0)), ERRNO | 22);
    assert_eq!(verdict(&c, 62, AUDIT_X86_64, with(5, 0)), ALLOW);
    // Different arguments: all must hold.
    assert_eq!(verdict(&c, 200, AUDIT_X86_64, with(100, 9)), ERRNO | 22);
    assert_eq!(verdict(&c, 200, AUDIT_X86_64, with(100, 1)), ALLOW);
}

#[test]
fn default_allow_with_a_deny_list() {
    let c = compile(&profile(
        r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
              {"names": ["mount", "umount2"], "action": "SCMP_ACT_ERRNO"},
              {"names": ["reboot"], "action": "SCMP_ACT_KILL_PROCESS"}
            ]}"#,
    ))
    .unwrap();
    let a = [0; 6];
    assert_eq!(verdict(&c, 0, AUDIT_X86_64, a), ALLOW);
    assert_eq!(verdict(&c, 165, AUDIT_X86_64, a), ERRNO | 1, "mount: EPERM by default");
    assert_eq!(verdict(&c, 169, AUDIT_X86_64, a), KILL_PROCESS, "reboot");
    assert_eq!(verdict(&c, 3, AUDIT_I386, a), KILL_PROCESS, "only the native arch is listed");
    assert_eq!(verdict(&c, 0x4000_0000, AUDIT_X86_64, a), KILL_PROCESS, "x32 is not listed");
}

#[test]
fn notify_rules_return_user_notif() {
    let c = compile(&profile(
        r#"{"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/run/listener.sock",
            "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]}"#,
    ))
    .unwrap();
    assert!(c.has_notify());
    assert_eq!(verdict(&c, 83, AUDIT_X86_64, [0; 6]), 0x7fc0_0000);
    let missing = compile(&profile(
        r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]}"#,
    ));
    assert!(missing.is_err());
}

#[test]
fn malformed_profiles_are_refused() {
    assert!(compile(&profile(
        r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]}"#
    ))
    .is_err());
    // An architecture no process here can use is skipped, as runc skips it; one that can run
    // here without a table would be refused (none on x86_64: all three have tables).
    assert!(compile(&profile(r#"{"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_PPC64"]}"#)).is_ok());
    assert!(serde_json::from_str::<LinuxSeccomp>(r#"{"defaultAction": "SCMP_ACT_BOGUS"}"#).is_err());
}

#[test]
fn podmans_default_profile_compiles_when_installed() {
    let Ok(text) = std::fs::read_to_string("/usr/share/containers/seccomp.json") else { return };
    // containers-common's file is a superset of the OCI section (archMap, includes, excludes);
    // the engine resolves it for the container's capabilities before writing config.json.
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let caps = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"];
    let list = |e: &serde_json::Value, key: &str| -> Vec<String> {
        e[key].as_array().map(|a| a.iter().filter_map(|c| c.as_str().map(String::from)).collect()).unwrap_or_default()
    };
    let applies = |s: &&serde_json::Value| {
        let (inc, exc) = (&s["includes"], &s["excludes"]);
        list(inc, "caps").iter().all(|c| caps.contains(&c.as_str()))
            && (list(inc, "arches").is_empty() || list(inc, "arches").iter().any(|a| a == "amd64"))
            && !list(exc, "caps").iter().any(|c| caps.contains(&c.as_str()))
            && !list(exc, "arches").iter().any(|a| a == "amd64")
    };
    let syscalls: Vec<serde_json::Value> = v["syscalls"].as_array().unwrap().iter().filter(applies).cloned().collect();
    let oci = serde_json::json!({
        "defaultAction": v["defaultAction"], "defaultErrnoRet": v["defaultErrnoRet"],
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": syscalls,
    });
    let c = compile(&serde_json::from_value(oci).unwrap()).unwrap();
    assert!(c.filters.len() > 2, "podman's profile needs the split into several filters");
    assert!(c.filters.iter().all(|f| f.program.len() <= 4096));
    assert_eq!(verdict(&c, 0, AUDIT_X86_64, [0; 6]), ALLOW, "read");
    assert_eq!(verdict(&c, 3, AUDIT_I386, [0; 6]), ALLOW, "read on i386");
    assert_eq!(verdict(&c, 0x4000_0000, AUDIT_X86_64, [0; 6]), ALLOW, "read on x32");
    assert_eq!(verdict(&c, 135, AUDIT_X86_64, [8, 0, 0, 0, 0, 0]), ALLOW, "personality(PER_LINUX32)");
    assert_eq!(verdict(&c, 135, AUDIT_X86_64, [0x40000, 0, 0, 0, 0, 0]), ERRNO | 38, "personality(ADDR_NO_RANDOMIZE)");
    assert_eq!(verdict(&c, 248, AUDIT_X86_64, [0; 6]), ERRNO | 38, "add_key: not in the profile");
    assert_eq!(verdict(&c, 167, AUDIT_X86_64, [0; 6]), ERRNO | 1, "swapon: denied with EPERM");
    assert_eq!(verdict(&c, 170, AUDIT_X86_64, [0; 6]), ERRNO | 1, "sethostname without CAP_SYS_ADMIN");
    assert_eq!(verdict(&c, 63, AUDIT_AARCH64, [0; 6]), KILL_PROCESS, "an unlisted architecture");
}
