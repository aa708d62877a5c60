//! linux.memoryPolicy: the NUMA policy every process of the container allocates memory under,
//! set with set_mempolicy(2) before execve, which keeps it (as fork does).
//!
//! Checked before anything exists: by its form (which modes take nodes, which flags go
//! together), then by the kernel itself, which berth asks by setting the policy on its own
//! thread and putting its own back. A kernel too old for a mode, or nodes this host lacks, are
//! refused there with the field named. A container whose cpuset allows fewer nodes than berth
//! can still be refused later, inside the init, and create undoes itself.

use oci_spec::runtime::{LinuxMemoryPolicy, MemoryPolicyFlagType, MemoryPolicyModeType};

use crate::error::{Error, Result, SysContext};
use crate::sys::{self, NodeMask, NODE_MASK_BITS};

pub const MODES: [&str; 7] = [
    "MPOL_DEFAULT",
    "MPOL_PREFERRED",
    "MPOL_BIND",
    "MPOL_INTERLEAVE",
    "MPOL_LOCAL",
    "MPOL_PREFERRED_MANY",
    "MPOL_WEIGHTED_INTERLEAVE",
];
pub const FLAGS: [&str; 3] = ["MPOL_F_NUMA_BALANCING", "MPOL_F_RELATIVE_NODES", "MPOL_F_STATIC_NODES"];

fn invalid(msg: String) -> Error {
    Error::InvalidConfig(format!("linux.memoryPolicy: {msg}"))
}

/// The mode with its flags, and the node mask, as set_mempolicy takes them.
fn policy(p: &LinuxMemoryPolicy) -> Result<(i32, NodeMask)> {
    use MemoryPolicyModeType as M;
    let mode = match p.mode() {
        M::MpolDefault => libc::MPOL_DEFAULT,
        M::MpolPreferred => libc::MPOL_PREFERRED,
        M::MpolBind => libc::MPOL_BIND,
        M::MpolInterleave => libc::MPOL_INTERLEAVE,
        M::MpolLocal => libc::MPOL_LOCAL,
        M::MpolPreferredMany => 5,
        M::MpolWeightedInterleave => 6,
    };
    let nodes = p.nodes().as_deref().map(str::trim).filter(|n| !n.is_empty());
    let mask = match nodes {
        Some(list) => parse_nodes(list).map_err(|e| invalid(format!("nodes {list:?}: {e}")))?,
        None => [0; NODE_MASK_BITS / libc::c_ulong::BITS as usize],
    };
    let flags = p.flags().clone().unwrap_or_default();
    let has = |f: MemoryPolicyFlagType| flags.contains(&f);
    match p.mode() {
        M::MpolDefault | M::MpolLocal => {
            if nodes.is_some() {
                return Err(invalid(format!("mode {} takes no nodes", p.mode())));
            }
            if !flags.is_empty() {
                return Err(invalid(format!("mode {} takes no flags", p.mode())));
            }
        }
        // No nodes: allocate on the local node (set_mempolicy(2)), but only without flags.
        M::MpolPreferred if nodes.is_none() && !flags.is_empty() => {
            return Err(invalid("mode MPOL_PREFERRED with flags needs nodes".into()))
        }
        M::MpolPreferred => {}
        _ if nodes.is_none() => return Err(invalid(format!("mode {} needs nodes", p.mode()))),
        _ => {}
    }
    if has(MemoryPolicyFlagType::MpolFStaticNodes) && has(MemoryPolicyFlagType::MpolFRelativeNodes) {
        return Err(invalid("flags MPOL_F_STATIC_NODES and MPOL_F_RELATIVE_NODES exclude each other".into()));
    }
    if has(MemoryPolicyFlagType::MpolFNumaBalancing) && !matches!(p.mode(), M::MpolBind | M::MpolPreferredMany) {
        return Err(invalid(format!(
            "flag MPOL_F_NUMA_BALANCING goes with MPOL_BIND or MPOL_PREFERRED_MANY, not {}",
            p.mode()
        )));
    }
    let mut mode = mode;
    for f in &flags {
        mode |= match f {
            MemoryPolicyFlagType::MpolFNumaBalancing => libc::MPOL_F_NUMA_BALANCING,
            MemoryPolicyFlagType::MpolFRelativeNodes => libc::MPOL_F_RELATIVE_NODES,
            MemoryPolicyFlagType::MpolFStaticNodes => libc::MPOL_F_STATIC_NODES,
        };
    }
    Ok((mode, mask))
}

fn parse_nodes(list: &str) -> std::result::Result<NodeMask, String> {
    let mut mask: NodeMask = [0; NODE_MASK_BITS / libc::c_ulong::BITS as usize];
    let bits = libc::c_ulong::BITS as usize;
    for part in list.split(',').map(str::trim) {
        let (lo, hi) = part.split_once('-').unwrap_or((part, part));
        let parse =
            |s: &str| s.trim().parse::<usize>().map_err(|_| "want node numbers and ranges like 0-1,3".to_string());
        let (lo, hi) = (parse(lo)?, parse(hi)?);
        if lo > hi {
            return Err(format!("range {part} runs backwards"));
        }
        if hi >= NODE_MASK_BITS {
            return Err(format!("node {hi} is beyond the {NODE_MASK_BITS} nodes Linux can address"));
        }
        for n in lo..=hi {
            mask[n / bits] |= 1 << (n % bits);
        }
    }
    Ok(mask)
}

/// Before anything exists: the form, then the kernel's verdict on this thread, which gets
/// its own policy back.
pub fn check(p: Option<&LinuxMemoryPolicy>) -> Result<()> {
    let Some(p) = p else { return Ok(()) };
    let (mode, mask) = policy(p)?;
    let (own_mode, own_mask) = sys::get_mempolicy().ctx("get_mempolicy", "berth's own NUMA policy")?;
    if let Err(e) = sys::set_mempolicy(mode, &mask) {
        return Err(invalid(format!(
            "the kernel refuses mode {}{} with nodes {:?}: {e}",
            p.mode(),
            p.flags().iter().flatten().map(|f| format!("|{f}")).collect::<String>(),
            p.nodes().as_deref().unwrap_or("")
        )));
    }
    sys::set_mempolicy(own_mode, &own_mask).ctx("set_mempolicy", "berth's own NUMA policy back")
}

/// In the container process, before execve.
pub fn apply(p: Option<&LinuxMemoryPolicy>) -> Result<()> {
    let Some(p) = p else { return Ok(()) };
    let (mode, mask) = policy(p)?;
    sys::set_mempolicy(mode, &mask).ctx("set_mempolicy", format!("linux.memoryPolicy {}", p.mode()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(json: &str) -> LinuxMemoryPolicy {
        serde_json::from_str(json).unwrap()
    }

    fn form_error(json: &str) -> String {
        policy(&parsed(json)).unwrap_err().to_string()
    }

    #[test]
    fn modes_flags_and_nodes() {
        let (mode, mask) =
            policy(&parsed(r#"{"mode": "MPOL_BIND", "nodes": "0,2-3", "flags": ["MPOL_F_STATIC_NODES"]}"#)).unwrap();
        assert_eq!(mode, libc::MPOL_BIND | libc::MPOL_F_STATIC_NODES);
        assert_eq!(mask[0], 0b1101);
        assert!(form_error(r#"{"mode": "MPOL_BIND"}"#).contains("needs nodes"));
        assert!(form_error(r#"{"mode": "MPOL_LOCAL", "nodes": "0"}"#).contains("takes no nodes"));
        assert!(form_error(r#"{"mode": "MPOL_DEFAULT", "flags": ["MPOL_F_STATIC_NODES"]}"#).contains("no flags"));
        assert!(form_error(
            r#"{"mode": "MPOL_INTERLEAVE", "nodes": "0", "flags": ["MPOL_F_STATIC_NODES", "MPOL_F_RELATIVE_NODES"]}"#
        )
        .contains("exclude"));
        assert!(form_error(r#"{"mode": "MPOL_INTERLEAVE", "nodes": "0", "flags": ["MPOL_F_NUMA_BALANCING"]}"#)
            .contains("MPOL_F_NUMA_BALANCING"));
        assert!(form_error(r#"{"mode": "MPOL_BIND", "nodes": "1-0"}"#).contains("backwards"));
        assert!(form_error(r#"{"mode": "MPOL_BIND", "nodes": "5000"}"#).contains("beyond"));
        assert!(form_error(r#"{"mode": "MPOL_BIND", "nodes": "x"}"#).contains("node numbers"));
        policy(&parsed(r#"{"mode": "MPOL_PREFERRED"}"#)).unwrap();
    }

    /// The kernel's verdict is asked on this thread, which keeps its own policy.
    #[test]
    fn the_kernel_is_asked_and_the_policy_put_back() {
        let before = sys::get_mempolicy().unwrap();
        check(Some(&parsed(r#"{"mode": "MPOL_BIND", "nodes": "0"}"#))).unwrap();
        let e = check(Some(&parsed(r#"{"mode": "MPOL_BIND", "nodes": "1000"}"#))).unwrap_err().to_string();
        assert!(e.contains("kernel refuses"), "{e}");
        assert_eq!(sys::get_mempolicy().unwrap(), before);
    }
}
