//! linux.personality: the execution domain (LINUX, or LINUX32 so `uname -m` says i686 on
//! x86_64 and 32-bit software configures itself as on a 32-bit host) and its flags, set with
//! personality(2) before execve, which keeps them.
//!
//! config.md lists no flag values yet ("Currently no flag values are supported"); berth takes
//! the kernel's own persona flags by their <linux/personality.h> names, which any process may
//! set on itself, and refuses any other name.

use oci_spec::runtime::{LinuxPersonality, LinuxPersonalityDomain};

use crate::error::{Error, Result, SysContext};

pub const DOMAINS: [&str; 2] = ["LINUX", "LINUX32"];

/// <linux/personality.h>.
pub const FLAGS: [(&str, u32); 11] = [
    ("UNAME26", 0x0020000),
    ("ADDR_NO_RANDOMIZE", 0x0040000),
    ("FDPIC_FUNCPTRS", 0x0080000),
    ("MMAP_PAGE_ZERO", 0x0100000),
    ("ADDR_COMPAT_LAYOUT", 0x0200000),
    ("READ_IMPLIES_EXEC", 0x0400000),
    ("ADDR_LIMIT_32BIT", 0x0800000),
    ("SHORT_INODE", 0x1000000),
    ("WHOLE_SECONDS", 0x2000000),
    ("STICKY_TIMEOUTS", 0x4000000),
    ("ADDR_LIMIT_3GB", 0x8000000),
];

const PER_LINUX: u32 = 0x0000;
const PER_LINUX32: u32 = 0x0008;

/// The persona value, refusing flags the kernel has no name for.
pub fn persona(p: &LinuxPersonality) -> Result<u32> {
    let mut value = match p.domain() {
        LinuxPersonalityDomain::PerLinux => PER_LINUX,
        LinuxPersonalityDomain::PerLinux32 => PER_LINUX32,
    };
    for flag in p.flags().iter().flatten() {
        let bits = FLAGS.iter().find(|(name, _)| name == flag).map(|(_, b)| *b).ok_or_else(|| {
            Error::InvalidConfig(format!(
                "linux.personality.flags: {flag:?} is not a personality flag (known: {})",
                FLAGS.map(|(n, _)| n).join(", ")
            ))
        })?;
        value |= bits;
    }
    Ok(value)
}

/// In the container process, before execve.
pub fn apply(p: Option<&LinuxPersonality>) -> Result<()> {
    let Some(p) = p else { return Ok(()) };
    let value = persona(p)?;
    crate::sys::personality(value).ctx("personality", format!("linux.personality {:#x}", value)).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains_and_flags() {
        let p: LinuxPersonality =
            serde_json::from_str(r#"{"domain": "LINUX32", "flags": ["ADDR_NO_RANDOMIZE"]}"#).unwrap();
        assert_eq!(persona(&p).unwrap(), 0x0040008);
        let p: LinuxPersonality = serde_json::from_str(r#"{"domain": "LINUX"}"#).unwrap();
        assert_eq!(persona(&p).unwrap(), 0);
        let p: LinuxPersonality = serde_json::from_str(r#"{"domain": "LINUX", "flags": ["NOPE"]}"#).unwrap();
        assert!(persona(&p).unwrap_err().to_string().contains("\"NOPE\""));
    }
}
