//! Architectures: which ones a profile covers, their syscall tables, and the dispatcher that
//! sends each call to the body compiled for its architecture. seccompiler compiles bodies for
//! one architecture at a time and opens each with an arch check that kills on mismatch; that
//! check is cut off here and replaced by one that knows every covered architecture.

use oci_spec::runtime::Arch;
use seccompiler::{sock_filter, BpfProgram, SeccompCmpArgLen, SeccompFilter, TargetArch};

use super::{invalid, rules_for, tables, Action, Rule, NOTIFY_MARK, SECCOMP_RET_TRACE, SECCOMP_RET_USER_NOTIF};
use crate::error::Result;

const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
const AUDIT_ARCH_I386: u32 = 0x4000_0003;
const AUDIT_ARCH_AARCH64: u32 = 0xc000_00b7;
/// x32 shares x86_64's audit value and marks its syscall numbers with this bit.
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// What `features` reports: the architectures berth has syscall tables for.
pub const SUPPORTED_ARCHES: [&str; 4] = ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32", "SCMP_ARCH_AARCH64"];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Which {
    X86_64,
    X86,
    X32,
    Aarch64,
}

impl Which {
    fn audit(self) -> u32 {
        match self {
            Which::X86_64 | Which::X32 => AUDIT_ARCH_X86_64,
            Which::X86 => AUDIT_ARCH_I386,
            Which::Aarch64 => AUDIT_ARCH_AARCH64,
        }
    }

    fn table(self) -> &'static [(&'static str, u32)] {
        match self {
            Which::X86_64 => tables::X86_64,
            Which::X86 => tables::I386,
            Which::X32 => tables::X32,
            Which::Aarch64 => tables::AARCH64,
        }
    }

    fn number(self, name: &str) -> Option<i64> {
        let nr = self.table().iter().find(|(n, _)| *n == name)?.1;
        Some(i64::from(if self == Which::X32 { nr | X32_SYSCALL_BIT } else { nr }))
    }

    /// A 32-bit process's arguments are 32 bits wide: compare only those.
    fn arg_len(self) -> SeccompCmpArgLen {
        if self == Which::X86 {
            SeccompCmpArgLen::Dword
        } else {
            SeccompCmpArgLen::Qword
        }
    }
}

fn native() -> Which {
    if cfg!(target_arch = "aarch64") {
        Which::Aarch64
    } else {
        Which::X86_64
    }
}

/// Whether a process on this host can make system calls as `arch`: the native architecture
/// and its compat modes (x86_64 also runs i386 and x32 calls, aarch64 also 32-bit ARM).
fn runs_here(arch: &Arch) -> bool {
    if cfg!(target_arch = "aarch64") {
        matches!(arch, Arch::ScmpArchAarch64 | Arch::ScmpArchArm)
    } else {
        matches!(arch, Arch::ScmpArchX86_64 | Arch::ScmpArchX86 | Arch::ScmpArchX32)
    }
}

/// The profile's architectures plus the native one, always. Engines' profiles list every
/// architecture they know (SCMP_ARCH_ARM on x86_64): one no process here can use needs no
/// filter, and is skipped as libseccomp's filters would never reach it either. One that can
/// run here but berth has no syscall table for is refused.
pub(crate) fn resolve(requested: &[Arch]) -> Result<Vec<Which>> {
    let mut out = vec![native()];
    for a in requested {
        let w = match a {
            Arch::ScmpArchNative => native(),
            Arch::ScmpArchX86_64 => Which::X86_64,
            Arch::ScmpArchX86 => Which::X86,
            Arch::ScmpArchX32 => Which::X32,
            Arch::ScmpArchAarch64 => Which::Aarch64,
            other if !runs_here(other) => {
                crate::logging::debug(&format!("seccomp: architecture {other:?} cannot run on this host, skipped"));
                continue;
            }
            other => {
                return Err(invalid(&format!(
                    "architecture {other:?} is not supported (berth knows {SUPPORTED_ARCHES:?})"
                )))
            }
        };
        if !out.contains(&w) {
            out.push(w);
        }
    }
    Ok(out)
}

const LD_W_ABS: u16 = 0x20;
const JEQ_K: u16 = 0x15;
const JSET_K: u16 = 0x45;
const JA: u16 = 0x05;
const RET_K: u16 = 0x06;
const SECCOMP_DATA_NR: u32 = 0;
const SECCOMP_DATA_ARCH: u32 = 4;
const BPF_MAXINSNS: usize = 4096;

fn stmt(code: u16, k: u32) -> sock_filter {
    sock_filter { code, jt: 0, jf: 0, k }
}

fn jump(code: u16, k: u32, jt: u8, jf: u8) -> sock_filter {
    sock_filter { code, jt, jf, k }
}

/// The filters for one action: `matched` for calls a rule matches, `unmatched` for the rest,
/// `unlisted` for calls from an architecture the profile does not cover. A filter holds a
/// body per architecture while the kernel's size limit allows; when the bodies need several
/// filters, each lets other architectures' calls through and a small gate filter of its own
/// gives unlisted architectures their verdict.
pub(crate) fn build(
    arches: &[Which],
    rules: &[&Rule],
    matched: Action,
    unmatched: Action,
    unlisted: Action,
) -> Result<Vec<Vec<sock_filter>>> {
    let bodies: Vec<(Which, Vec<sock_filter>)> =
        arches.iter().map(|a| Ok((*a, body(*a, rules, matched, unmatched)?))).collect::<Result<_>>()?;
    if let Ok(single) = assemble(&bodies, unlisted) {
        return Ok(vec![single]);
    }
    let mut filters = Vec::new();
    for (which, body) in bodies {
        filters.push(assemble(&[(which, body)], Action::Allow)?);
    }
    if unlisted != Action::Allow {
        let gates: Vec<(Which, Vec<sock_filter>)> =
            arches.iter().map(|a| (*a, vec![stmt(RET_K, Action::Allow.ret())])).collect();
        filters.push(assemble(&gates, unlisted)?);
    }
    Ok(filters)
}

/// A dispatcher over `bodies` by architecture; calls from any other architecture get `other`.
/// Short conditional jumps only reach nearby `ja` trampolines, which reach bodies at any
/// distance.
fn assemble(bodies: &[(Which, Vec<sock_filter>)], other: Action) -> Result<Vec<sock_filter>> {
    enum Target {
        Body(usize),
        Other,
    }
    let index_of = |w: Which| bodies.iter().position(|(a, _)| *a == w);
    let mut head: Vec<(sock_filter, Option<Target>)> = vec![(stmt(LD_W_ABS, SECCOMP_DATA_ARCH), None)];
    let mut audits: Vec<u32> = bodies.iter().map(|(a, _)| a.audit()).collect();
    audits.sort_unstable();
    audits.dedup();
    for audit in audits {
        if audit == AUDIT_ARCH_X86_64 {
            let x64 = index_of(Which::X86_64).map(Target::Body).unwrap_or(Target::Other);
            let x32 = index_of(Which::X32).map(Target::Body).unwrap_or(Target::Other);
            head.push((jump(JEQ_K, audit, 0, 5), None));
            head.push((stmt(LD_W_ABS, SECCOMP_DATA_NR), None));
            head.push((jump(JSET_K, X32_SYSCALL_BIT, 0, 1), None));
            head.push((stmt(JA, 0), Some(x32)));
            head.push((stmt(JA, 0), Some(x64)));
            // The arch is reloaded for the next check, since the accumulator now holds nr.
            head.push((stmt(LD_W_ABS, SECCOMP_DATA_ARCH), None));
        } else {
            let which = bodies.iter().position(|(a, _)| a.audit() == audit).map(Target::Body).unwrap_or(Target::Other);
            head.push((jump(JEQ_K, audit, 0, 1), None));
            head.push((stmt(JA, 0), Some(which)));
        }
    }
    let other_at = head.len();
    let mut starts = Vec::new();
    let mut pos = other_at + 1;
    for (_, b) in bodies {
        starts.push(pos);
        pos += b.len();
    }
    if pos > BPF_MAXINSNS {
        return Err(invalid(&format!(
            "the profile compiles to {pos} instructions, more than the kernel's {BPF_MAXINSNS}"
        )));
    }
    let mut out: Vec<sock_filter> = Vec::with_capacity(pos);
    for (i, (mut ins, target)) in head.into_iter().enumerate() {
        if let Some(t) = target {
            let to = match t {
                Target::Body(b) => starts[b],
                Target::Other => other_at,
            };
            ins.k = (to - i - 1) as u32;
        }
        out.push(ins);
    }
    out.push(stmt(RET_K, other.ret()));
    for (_, b) in bodies {
        out.extend(b.iter().cloned());
    }
    Ok(out)
}

/// A syscall newer than every one the profile names gets ENOSYS rather than the default
/// action, as runc does: the profile predates it, and a program (glibc trying clone3 or
/// faccessat2) falls back to an older call on ENOSYS but gives up on EPERM.
fn enosys_above(
    map: &std::collections::BTreeMap<i64, Vec<seccompiler::SeccompRule>>,
    unmatched: Action,
) -> Vec<sock_filter> {
    const JGT_K: u16 = 0x25;
    let stub_needed = !matches!(unmatched, Action::Allow | Action::Log | Action::Errno(38));
    match map.keys().next_back() {
        Some(&last) if stub_needed => vec![
            stmt(LD_W_ABS, SECCOMP_DATA_NR),
            jump(JGT_K, last as u32, 0, 1),
            stmt(RET_K, Action::Errno(libc::ENOSYS as u32).ret()),
        ],
        _ => Vec::new(),
    }
}

/// seccompiler's program for one architecture, without its arch check.
fn body(arch: Which, rules: &[&Rule], matched: Action, unmatched: Action) -> Result<Vec<sock_filter>> {
    if matched == unmatched {
        return Ok(vec![stmt(RET_K, unmatched.ret())]);
    }
    let map = rules_for(rules, |n| arch.number(n), arch.arg_len())?;
    if map.is_empty() {
        return Ok(vec![stmt(RET_K, unmatched.ret())]);
    }
    let mut out = enosys_above(&map, unmatched);
    let filter = SeccompFilter::new(map, unmatched.seccompiler(), matched.seccompiler(), TargetArch::x86_64)
        .map_err(|e| invalid(&e.to_string()))?;
    let program: BpfProgram = filter.try_into().map_err(|e: seccompiler::BackendError| invalid(&e.to_string()))?;
    // seccompiler opens with: load arch; jump if equal over the next; kill.
    let prologue_ok = program.len() > 3
        && program[0].code == LD_W_ABS
        && program[0].k == SECCOMP_DATA_ARCH
        && program[2].code == RET_K;
    if !prologue_ok {
        return Err(invalid("seccompiler's program does not start with the expected architecture check"));
    }
    out.extend_from_slice(&program[3..]);
    for ins in &mut out {
        if ins.code == RET_K && ins.k == SECCOMP_RET_TRACE | NOTIFY_MARK {
            ins.k = SECCOMP_RET_USER_NOTIF;
        }
    }
    Ok(out)
}
