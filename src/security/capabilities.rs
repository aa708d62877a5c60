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

/// Sets inheritable, effective and permitted, then raises the ambient ones that are both
/// permitted and inheritable (the kernel's rule; the others are skipped, as runc skips them:
/// `runc spec` itself lists ambient capabilities without inheritable ones, and `create` says at
/// --debug which were skipped). With `hold_sys_admin`, CAP_SYS_ADMIN is added to effective and
/// permitted for a while: the seccomp filter of a process without no_new_privileges can only
/// be loaded with it, and loading the filter as late as possible means after this.
pub fn apply(config: &LinuxCapabilities, hold_sys_admin: bool) -> Result<()> {
    let mut permitted = to_caps(config.permitted());
    let inheritable = to_caps(config.inheritable());
    let mut effective = to_caps(config.effective());
    if hold_sys_admin {
        permitted.insert(Cap::CAP_SYS_ADMIN);
        effective.insert(Cap::CAP_SYS_ADMIN);
    }
    caps::set(None, CapSet::Inheritable, &inheritable).map_err(|e| caps_err("set inheritable capabilities", e))?;
    // Effective must stay a subset of permitted at every step, so it shrinks first.
    caps::set(None, CapSet::Effective, &effective).map_err(|e| caps_err("set effective capabilities", e))?;
    caps::set(None, CapSet::Permitted, &permitted).map_err(|e| caps_err("set permitted capabilities", e))?;
    caps::clear(None, CapSet::Ambient).map_err(|e| caps_err("clear ambient capabilities", e))?;
    for cap in raisable_ambient(config) {
        caps::raise(None, CapSet::Ambient, cap).map_err(|e| caps_err("raise ambient capability", e))?;
    }
    Ok(())
}

/// Gives back the CAP_SYS_ADMIN `apply` held for loading the seccomp filter.
pub fn release_sys_admin() -> Result<()> {
    caps::drop(None, CapSet::Effective, Cap::CAP_SYS_ADMIN).map_err(|e| caps_err("drop effective capability", e))?;
    caps::drop(None, CapSet::Permitted, Cap::CAP_SYS_ADMIN).map_err(|e| caps_err("drop permitted capability", e))
}

/// Whether the configured sets already give the process CAP_SYS_ADMIN in effect.
pub fn grants_sys_admin(config: &LinuxCapabilities) -> bool {
    to_caps(config.effective()).contains(&Cap::CAP_SYS_ADMIN)
        && to_caps(config.permitted()).contains(&Cap::CAP_SYS_ADMIN)
}

/// Ambient capabilities the kernel will raise: those also permitted and inheritable.
fn raisable_ambient(config: &LinuxCapabilities) -> HashSet<Cap> {
    let (permitted, inheritable) = (to_caps(config.permitted()), to_caps(config.inheritable()));
    to_caps(config.ambient()).into_iter().filter(|c| permitted.contains(c) && inheritable.contains(c)).collect()
}

/// The ambient capabilities `apply` will skip, by name, for `create` to mention at --debug.
pub fn unraisable_ambient(config: &LinuxCapabilities) -> Vec<String> {
    let raisable = raisable_ambient(config);
    let mut skipped: Vec<String> =
        to_caps(config.ambient()).into_iter().filter(|c| !raisable.contains(c)).map(|c| c.to_string()).collect();
    skipped.sort();
    skipped
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

    #[test]
    fn ambient_without_inheritable_is_skipped_not_refused() {
        // What `runc spec` writes: ambient and permitted, no inheritable.
        let config: LinuxCapabilities = serde_json::from_str(
            r#"{"permitted":["CAP_KILL","CAP_CHOWN"],"inheritable":["CAP_CHOWN"],"ambient":["CAP_KILL","CAP_CHOWN"]}"#,
        )
        .unwrap();
        assert_eq!(raisable_ambient(&config), [Cap::CAP_CHOWN].into_iter().collect());
        assert_eq!(unraisable_ambient(&config), ["CAP_KILL"]);
    }
}
