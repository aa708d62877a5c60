//! Device rules on cgroup v2: an eBPF program of type BPF_PROG_TYPE_CGROUP_DEVICE, attached to
//! the container's cgroup, that the kernel runs on every open and mknod of a device node. The
//! rules are those of v1's devices.allow/deny (later rules win); berth compiles them into a
//! chain of blocks, last rule first, each ending in "return allow|deny" when it matches.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

use oci_spec::runtime::LinuxDeviceCgroup;

use crate::error::{Error, Result};

/// One eBPF instruction (struct bpf_insn): opcode, dst and src registers, offset, immediate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Insn {
    pub code: u8,
    pub regs: u8,
    pub off: i16,
    pub imm: i32,
}

const LDX_MEM_W: u8 = 0x61; // dst = *(u32 *)(src + off)
const ALU32_AND_K: u8 = 0x54; // dst &= imm
const ALU32_RSH_K: u8 = 0x74; // dst >>= imm
const ALU64_MOV_K: u8 = 0xb7; // dst = imm
const ALU64_MOV_X: u8 = 0xbf; // dst = src
const JMP_JNE_K: u8 = 0x55; // if dst != imm goto pc + off
const JMP_EXIT: u8 = 0x95;

// struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; }
// access_type = (access << 16) | type
const DEV_BLOCK: i32 = 1;
const DEV_CHAR: i32 = 2;
const ACC_MKNOD: i32 = 1;
const ACC_READ: i32 = 2;
const ACC_WRITE: i32 = 4;

fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn { code, regs: (src << 4) | dst, off, imm }
}

impl Insn {
    /// The 8 bytes of struct bpf_insn as a little-endian u64 (x86_64, aarch64): code,
    /// dst:4|src:4, off, imm.
    fn encoded(&self) -> u64 {
        u64::from(self.code)
            | u64::from(self.regs) << 8
            | u64::from(self.off as u16) << 16
            | u64::from(self.imm as u32) << 32
    }
}

/// A rule as the filter sees it: None means "any".
struct Rule {
    kind: Option<i32>,
    major: Option<i32>,
    minor: Option<i32>,
    access: i32,
    allow: bool,
}

fn rule_of(r: &LinuxDeviceCgroup) -> Result<Rule> {
    let kind = match r.typ().map(|t| t.as_str().to_string()).as_deref() {
        None | Some("a") => None,
        Some("c") => Some(DEV_CHAR),
        Some("b") => Some(DEV_BLOCK),
        Some(other) => return Err(Error::InvalidConfig(format!("device rule type {other:?} is not a, b or c"))),
    };
    let mut access = 0;
    for c in r.access().as_deref().unwrap_or("rwm").chars() {
        access |= match c {
            'r' => ACC_READ,
            'w' => ACC_WRITE,
            'm' => ACC_MKNOD,
            other => return Err(Error::InvalidConfig(format!("device rule access {other:?} is not r, w or m"))),
        };
    }
    let num = |n: Option<i64>| n.filter(|n| *n >= 0).map(|n| n as i32);
    Ok(Rule { kind, major: num(r.major()), minor: num(r.minor()), access, allow: r.allow() })
}

/// The filter for `rules` (v1 semantics: the last matching rule decides; no match denies).
pub fn program(rules: &[LinuxDeviceCgroup]) -> Result<Vec<Insn>> {
    let rules: Vec<Rule> = rules.iter().map(rule_of).collect::<Result<_>>()?;
    // r2 = type, r3 = requested access, r4 = major, r5 = minor
    let mut prog = vec![
        insn(LDX_MEM_W, 2, 1, 0, 0),
        insn(ALU32_AND_K, 2, 0, 0, 0xffff),
        insn(LDX_MEM_W, 3, 1, 0, 0),
        insn(ALU32_RSH_K, 3, 0, 0, 16),
        insn(LDX_MEM_W, 4, 1, 4, 0),
        insn(LDX_MEM_W, 5, 1, 8, 0),
    ];
    for rule in rules.iter().rev() {
        let b = block(rule);
        let matches_all = b.len() == 2;
        prog.extend(b);
        // The verifier refuses unreachable code: nothing may follow a rule that matches all.
        if matches_all {
            return Ok(prog);
        }
    }
    prog.push(insn(ALU64_MOV_K, 0, 0, 0, 0));
    prog.push(insn(JMP_EXIT, 0, 0, 0, 0));
    Ok(prog)
}

/// "if the request matches this rule, return its verdict; else fall through to the next".
fn block(rule: &Rule) -> Vec<Insn> {
    // Each check is a jump over the rest of the block; offsets are patched once its length
    // is known.
    let mut checks: Vec<Vec<Insn>> = Vec::new();
    if let Some(kind) = rule.kind {
        checks.push(vec![insn(JMP_JNE_K, 2, 0, 0, kind)]);
    }
    if rule.access != ACC_READ | ACC_WRITE | ACC_MKNOD {
        // Requested access must be a subset of the rule's: (r3 & ~access) == 0.
        checks.push(vec![
            insn(ALU64_MOV_X, 6, 3, 0, 0),
            insn(ALU32_AND_K, 6, 0, 0, !rule.access & 0x7),
            insn(JMP_JNE_K, 6, 0, 0, 0),
        ]);
    }
    if let Some(major) = rule.major {
        checks.push(vec![insn(JMP_JNE_K, 4, 0, 0, major)]);
    }
    if let Some(minor) = rule.minor {
        checks.push(vec![insn(JMP_JNE_K, 5, 0, 0, minor)]);
    }
    let mut out: Vec<Insn> = checks.into_iter().flatten().collect();
    out.push(insn(ALU64_MOV_K, 0, 0, 0, i32::from(rule.allow)));
    out.push(insn(JMP_EXIT, 0, 0, 0, 0));
    let len = out.len();
    for (i, ins) in out.iter_mut().enumerate() {
        if ins.code == JMP_JNE_K {
            // Jump to the first instruction after this block.
            ins.off = (len - i - 1) as i16;
        }
    }
    out
}

/// Loads the filter and attaches it to the cgroup directory, replacing one attached before
/// (a single, non-multi attachment: `update` swaps it).
pub fn attach(dir: &Path, rules: &[LinuxDeviceCgroup]) -> Result<()> {
    let insns: Vec<u64> = program(rules)?.iter().map(Insn::encoded).collect();
    let prog_fd = crate::sys::bpf_prog_load_cgroup_device(&insns)
        .map_err(|(errno, log)| Error::sys("load eBPF device filter", log, errno))?;
    let cgroup: OwnedFd = std::fs::File::open(dir).map_err(|e| Error::io("open cgroup", dir.display(), e))?.into();
    crate::sys::bpf_prog_attach_cgroup_device(&prog_fd, cgroup.as_raw_fd())
        .map_err(|e| Error::sys("attach eBPF device filter to", dir.display(), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(json: &str) -> Vec<LinuxDeviceCgroup> {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn deny_all_then_allow_one() {
        let p = program(&rules(r#"[{"allow": false, "access": "rwm"}, {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rw"}]"#)).unwrap();
        // prologue (6), then the allow rule (type, access x3, major, minor, mov, exit = 8),
        // then deny-all (mov, exit = 2), and no default after a rule that matches all.
        assert_eq!(p.len(), 6 + 8 + 2);
        let allow = &p[6..14];
        assert_eq!(allow[0], insn(JMP_JNE_K, 2, 0, 7, DEV_CHAR));
        assert_eq!(allow[1], insn(ALU64_MOV_X, 6, 3, 0, 0));
        assert_eq!(allow[2], insn(ALU32_AND_K, 6, 0, 0, ACC_MKNOD));
        assert_eq!(allow[3], insn(JMP_JNE_K, 6, 0, 4, 0));
        assert_eq!(allow[4], insn(JMP_JNE_K, 4, 0, 3, 1));
        assert_eq!(allow[5], insn(JMP_JNE_K, 5, 0, 2, 3));
        assert_eq!(allow[6], insn(ALU64_MOV_K, 0, 0, 0, 1));
        assert_eq!(allow[7].code, JMP_EXIT);
        assert_eq!(&p[14..16], &[insn(ALU64_MOV_K, 0, 0, 0, 0), insn(JMP_EXIT, 0, 0, 0, 0)]);
    }

    #[test]
    fn no_match_denies() {
        let p = program(&rules(r#"[{"allow": true, "type": "c", "major": 1, "minor": 3}]"#)).unwrap();
        assert_eq!(&p[p.len() - 2..], &[insn(ALU64_MOV_K, 0, 0, 0, 0), insn(JMP_EXIT, 0, 0, 0, 0)]);
    }

    #[test]
    fn wildcards_emit_no_checks() {
        let p = program(&rules(r#"[{"allow": true, "type": "c", "major": 136, "access": "rwm"}]"#)).unwrap();
        let block = &p[6..p.len() - 2];
        assert_eq!(block.len(), 4, "type and major only: {block:?}");
    }

    #[test]
    fn bad_rules_are_refused() {
        assert!(program(&rules(r#"[{"allow": true, "access": "rwz"}]"#)).is_err());
    }
}
