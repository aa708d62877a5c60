//! linux.netDevices: host network devices moved into the container's network namespace,
//! renamed when the entry names a new name, with their permanent global addresses and up
//! (config-linux.md, "Network Devices").
//!
//! The parent moves them once the init's network namespace exists and before any create-time
//! hook runs, so a hook can configure them further. A create that fails afterwards moves them
//! back under their host names (a new namespace would otherwise take a physical device back
//! to the host under its container name, and destroy a virtual one). `delete` leaves them
//! alone, as the spec requires ("MUST NOT attempt to move the interface out of the namespace
//! before deletion"): when the namespace goes, the kernel returns physical devices to the
//! host and destroys virtual ones (veth, macvlan); a namespace joined by path keeps them for
//! its owner.

mod netlink;

use std::collections::HashSet;
use std::fs::File;

use nix::unistd::Pid;
use oci_spec::runtime::{LinuxNamespaceType, Spec};

use crate::error::{Error, Result};
pub use netlink::Address;

/// A device moved into a container, with what it takes to move it back.
pub struct Moved {
    pub host_name: String,
    pub container_name: String,
    index: i32,
    addresses: Vec<Address>,
}

fn invalid(msg: String) -> Error {
    Error::InvalidConfig(format!("linux.netDevices: {msg}"))
}

/// (host name, name in the container) for each entry.
fn entries(spec: &Spec) -> Vec<(String, String)> {
    let devices = spec.linux().as_ref().and_then(|l| l.net_devices().as_ref());
    let mut out: Vec<(String, String)> = devices
        .into_iter()
        .flatten()
        .map(|(host, d)| (host.clone(), d.name().clone().filter(|n| !n.is_empty()).unwrap_or_else(|| host.clone())))
        .collect();
    out.sort();
    out
}

/// The kernel's rule for interface names (dev_valid_name): 1 to 15 bytes, not . or .., no
/// '/', ':' or white space. A container name may end in a `%d` template the kernel fills in.
fn check_name(name: &str, template_ok: bool) -> std::result::Result<(), String> {
    if name.is_empty() || name.len() > 15 {
        return Err(format!("{name:?} is not 1 to 15 bytes long"));
    }
    if name == "." || name == ".." || name.chars().any(|c| c == '/' || c == ':' || c.is_whitespace()) {
        return Err(format!("{name:?} is not a valid interface name"));
    }
    let percents = name.matches('%').count();
    if percents > 0 && !(template_ok && percents == 1 && name.contains("%d")) {
        return Err(format!("{name:?}: only one %d template is allowed, in a name inside the container"));
    }
    Ok(())
}

/// Before anything exists: the container gets a network namespace of its own (new or by
/// path), each name is valid, no two devices end up with one name, and each device is on
/// this host now.
pub fn check(spec: &Spec) -> Result<()> {
    let wanted = entries(spec);
    if wanted.is_empty() {
        return Ok(());
    }
    let has_netns = spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|ns| ns.iter().any(|n| n.typ() == LinuxNamespaceType::Network));
    if !has_netns {
        return Err(invalid(
            "the container has no network namespace of its own: its devices are the host's already".into(),
        ));
    }
    let socket = netlink::Socket::open().map_err(|e| Error::sys("open rtnetlink socket", "linux.netDevices", e))?;
    let mut names = HashSet::new();
    for (host, inside) in &wanted {
        check_name(host, false).map_err(|e| invalid(format!("host device {e}")))?;
        check_name(inside, true).map_err(|e| invalid(format!("{host}.name {e}")))?;
        if host == "lo" {
            return Err(invalid("lo cannot leave its network namespace".into()));
        }
        if !inside.contains('%') && !names.insert(inside.clone()) {
            return Err(invalid(format!("two devices would be named {inside:?} in the container")));
        }
    }
    for (host, _) in &wanted {
        socket.link_index(host).map_err(|e| invalid(format!("host device {host:?}: {e}")))?;
    }
    Ok(())
}

/// In the parent, once the init's network namespace exists: moves every device in, re-adds
/// its permanent global addresses and brings it up. On failure the devices moved so far go
/// back.
pub fn move_into(spec: &Spec, init: Pid) -> Result<Vec<Moved>> {
    let wanted = entries(spec);
    if wanted.is_empty() {
        return Ok(Vec::new());
    }
    let ns_path = format!("/proc/{init}/ns/net");
    let netns = File::open(&ns_path).map_err(|e| Error::io("open", &ns_path, e))?;
    let host = netlink::Socket::open().map_err(|e| Error::sys("open rtnetlink socket", "host", e))?;
    let inside = netlink::Socket::open_in(&netns).map_err(|e| Error::sys("open rtnetlink socket in", &ns_path, e))?;
    let mut moved = Vec::new();
    for (host_name, name) in wanted {
        if let Err(e) = move_one(&host, &inside, &netns, &host_name, &name, &mut moved) {
            restore(&moved, &netns);
            return Err(e);
        }
    }
    Ok(moved)
}

/// Moves one device and records it in `moved` as soon as it is in the container, so a later
/// failure takes it back too.
fn move_one(
    host: &netlink::Socket,
    inside: &netlink::Socket,
    netns: &File,
    host_name: &str,
    name: &str,
    moved: &mut Vec<Moved>,
) -> Result<()> {
    let what = || format!("network device {host_name:?}");
    let index = host.link_index(host_name).map_err(|e| Error::sys("look up", what(), e))?;
    // Moving a device drops its addresses; the permanent global ones are carried over.
    let addresses: Vec<Address> = host
        .addresses(index)
        .map_err(|e| Error::sys("read addresses of", what(), e))?
        .into_iter()
        .filter(|a| a.flags & netlink::IFA_F_PERMANENT != 0 && a.scope == netlink::RT_SCOPE_UNIVERSE)
        .collect();
    host.move_link(index, netns, name).map_err(|e| match e {
        nix::errno::Errno::EEXIST => {
            invalid(format!("{host_name}: a device named {name:?} exists in the container's network namespace already"))
        }
        e => Error::sys("move into the container's network namespace", what(), e),
    })?;
    moved.push(Moved { host_name: host_name.to_string(), container_name: name.to_string(), index, addresses });
    let m = moved.last_mut().ok_or_else(|| invalid("lost track of a moved device".into()))?;
    // The kernel keeps the index unless the namespace has it taken (a namespace joined by
    // path may): then the name finds it. A %d name is what the kernel made of it.
    match inside.link_name(index) {
        Ok(actual) if !name.contains('%') && actual != name => {
            m.index = inside
                .link_index(name)
                .map_err(|e| Error::sys("find after the move", format!("network device {name:?}"), e))?
        }
        Ok(actual) => m.container_name = actual,
        Err(e) => return Err(Error::sys("find after the move", format!("network device {name:?}"), e)),
    }
    for a in &m.addresses {
        inside
            .add_address(m.index, a)
            .map_err(|e| Error::sys("add address", format!("{} to {name:?}", a.display()), e))?;
    }
    inside.set_up(m.index).map_err(|e| Error::sys("bring up", format!("network device {name:?}"), e))
}

/// A failed create: the devices go back to this process's namespace under their host names,
/// with their addresses (best effort: what fails is logged).
pub fn move_back(moved: &[Moved], init: Pid) {
    if moved.is_empty() {
        return;
    }
    let ns_path = format!("/proc/{init}/ns/net");
    match File::open(&ns_path) {
        Ok(netns) => restore(moved, &netns),
        Err(e) => crate::logging::warn(&format!("move network devices back to the host: open {ns_path}: {e}")),
    }
}

fn restore(moved: &[Moved], netns: &File) {
    if moved.is_empty() {
        return;
    }
    let result = (|| -> Result<()> {
        let own =
            File::open("/proc/thread-self/ns/net").map_err(|e| Error::io("open", "/proc/thread-self/ns/net", e))?;
        let inside = netlink::Socket::open_in(netns)
            .map_err(|e| Error::sys("open rtnetlink socket in", "the container's network namespace", e))?;
        let host = netlink::Socket::open().map_err(|e| Error::sys("open rtnetlink socket", "host", e))?;
        for m in moved {
            let back = inside.move_link(m.index, &own, &m.host_name).and_then(|()| {
                let index = host.link_index(&m.host_name)?;
                for a in &m.addresses {
                    host.add_address(index, a)?;
                }
                Ok(())
            });
            if let Err(e) = back {
                crate::logging::warn(&format!("move network device {:?} back to the host: {e}", m.container_name));
            }
        }
        Ok(())
    })();
    if let Err(e) = result {
        crate::logging::warn(&format!("move network devices back to the host: {e}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interface_names() {
        assert!(check_name("eth0", false).is_ok());
        assert!(check_name("ctr%d", true).is_ok());
        assert!(check_name("ctr%d", false).is_err());
        assert!(check_name("a%d%d", true).is_err());
        assert!(check_name("a%s", true).is_err());
        assert!(check_name("", false).is_err());
        assert!(check_name("sixteen-chars-xx", false).is_err());
        assert!(check_name("a/b", false).is_err());
        assert!(check_name("a b", false).is_err());
        assert!(check_name("..", false).is_err());
    }

    fn spec(json: serde_json::Value) -> Spec {
        let mut base = serde_json::json!({"ociVersion": "1.3.0", "linux": {"namespaces": [{"type": "mount"}]}});
        base["linux"].as_object_mut().unwrap().extend(json.as_object().unwrap().clone());
        serde_json::from_value(base).unwrap()
    }

    #[test]
    fn needs_a_network_namespace_and_real_devices() {
        let e = check(&spec(serde_json::json!({"netDevices": {"lo": {}}}))).unwrap_err().to_string();
        assert!(e.contains("no network namespace"), "{e}");
        let ns = serde_json::json!([{"type": "mount"}, {"type": "network"}]);
        let e = check(&spec(serde_json::json!({"namespaces": ns, "netDevices": {"lo": {}}}))).unwrap_err().to_string();
        assert!(e.contains("lo cannot"), "{e}");
        let e = check(&spec(serde_json::json!({"namespaces": ns, "netDevices": {"nosuchdev0": {}}})))
            .unwrap_err()
            .to_string();
        assert!(e.contains("nosuchdev0"), "{e}");
        let two = serde_json::json!({"namespaces": ns, "netDevices": {"a0": {"name": "x"}, "b0": {"name": "x"}}});
        let e = check(&spec(two)).unwrap_err().to_string();
        assert!(e.contains("two devices"), "{e}");
    }
}
