//! The five capability sets of process.capabilities.

use std::collections::HashSet;

use caps::{CapSet, Capability as Cap, CapsHashSet};
use oci_spec::runtime::{Capabilities, LinuxCapabilities};

use crate::error::{Error, Result};

fn to_caps(set: &Option<Capabilities>) -> CapsHashSet {
    set.iter()
        .flatten()
        .filter_map(|c| {
            let name = format!("CAP_{c}");
            name.parse::<Cap>().ok()
        })
        .collect()
}

fn caps_err(what: &'static str, e: caps::errors::CapsError) -> Error {
    Error::Capabilities { op: what, reason: e.to_string() }
}

/// The bounding set is dropped while the process still has CAP_SETPCAP, i.e. before the uid
/// changes; caps the kernel does not know are skipped.
pub fn drop_bounding(config: &LinuxCapabilities) -> Result<()> {
    let keep = to_caps(config.bounding());
    let supported = caps::runtime::thread_all_supported();
    for cap in supported.iter().filter(|c| !keep.contains(c)) {
        caps::drop(None, CapSet::Bounding, *cap).map_err(|e| caps_err("drop bounding capability", e))?;
    }
    Ok(())
}

/// Sets inheritable, effective and permitted, then raises the ambient ones (which must already
/// be both permitted and inheritable).
pub fn apply(config: &LinuxCapabilities) -> Result<()> {
    let permitted = to_caps(config.permitted());
    let inheritable = to_caps(config.inheritable());
    let effective = to_caps(config.effective());
    caps::set(None, CapSet::Inheritable, &inheritable).map_err(|e| caps_err("set inheritable capabilities", e))?;
    // Effective must stay a subset of permitted at every step, so it shrinks first.
    caps::set(None, CapSet::Effective, &effective).map_err(|e| caps_err("set effective capabilities", e))?;
    caps::set(None, CapSet::Permitted, &permitted).map_err(|e| caps_err("set permitted capabilities", e))?;
    caps::clear(None, CapSet::Ambient).map_err(|e| caps_err("clear ambient capabilities", e))?;
    let ambient: HashSet<Cap> = to_caps(config.ambient());
    for cap in ambient {
        caps::raise(None, CapSet::Ambient, cap).map_err(|e| caps_err("raise ambient capability", e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::Capability;

    #[test]
    fn names_map_to_caps() {
        let set: Capabilities = [Capability::NetBindService, Capability::SysAdmin].into_iter().collect();
        let caps = to_caps(&Some(set));
        assert!(caps.contains(&Cap::CAP_NET_BIND_SERVICE));
        assert!(caps.contains(&Cap::CAP_SYS_ADMIN));
        assert_eq!(caps.len(), 2);
    }
}
