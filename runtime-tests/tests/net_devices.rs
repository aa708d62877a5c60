//! linux.netDevices: a host interface moves into the container's network namespace, renamed
//! when asked, with its permanent addresses and up; a create that fails puts it back. The
//! tests make a veth pair of their own (this VM has veth, not dummy) and remove what is left
//! of it; when the container's namespace goes, the kernel destroys the moved end and with it
//! the pair (config-linux.md: the runtime does not move devices out on delete).
//!
//! runc 1.1.5 ignores netDevices (runc 1.3 moves them).

use std::process::Command;

use runtime_tests::*;
use serde_json::json;

const RUNC_LACKS: &str = "runc 1.1.5 ignores linux.netDevices (runc 1.3 moves them)";

/// A veth pair made for one test, deleted when dropped (deleting either end deletes both).
struct Veth {
    host: String,
    peer: String,
}

impl Veth {
    fn new(tag: &str) -> Option<Veth> {
        if Command::new("ip").arg("-V").output().is_err() {
            return None;
        }
        let n = std::process::id() % 100_000;
        let v = Veth { host: format!("bv{tag}{n}a"), peer: format!("bv{tag}{n}b") };
        let ok = Command::new("ip")
            .args(["link", "add", &v.host, "type", "veth", "peer", "name", &v.peer])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "ip link add {} type veth failed", v.host);
        Some(v)
    }

    fn add_address(&self, cidr: &str) {
        assert!(Command::new("ip").args(["addr", "add", cidr, "dev", &self.host]).status().unwrap().success());
    }

    fn on_host(name: &str) -> bool {
        Command::new("ip").args(["link", "show", "dev", name]).output().is_ok_and(|o| o.status.success())
    }
}

impl Drop for Veth {
    fn drop(&mut self) {
        for name in [&self.host, &self.peer] {
            if Veth::on_host(name) {
                let _ = Command::new("ip").args(["link", "del", name]).status();
            }
        }
    }
}

fn no_ip() {
    skip("iproute2's ip is not installed on the host (Debian package iproute2)")
}

#[test]
fn a_device_moves_in_renamed_with_its_address_and_up() {
    if runtime_is_runc() {
        return skip(RUNC_LACKS);
    }
    let Some(veth) = Veth::new("m") else { return no_ip() };
    veth.add_address("10.231.7.1/24");
    let mut b = Bundle::new("netdev");
    b.sh("ip -o addr show dev ctr0; ip -o link show dev ctr0; sleep 300");
    b.config["linux"]["netDevices"] = json!({ &veth.host: {"name": "ctr0"} });
    let out = b.run_detached(&[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!Veth::on_host(&veth.host), "the device is still on the host");
    let exec = b.cmd(&["exec", &b.id, "sh", "-c", "ip -o addr show dev ctr0; ip -o link show dev ctr0"]);
    let text = stdout(&exec);
    assert!(text.contains("inet 10.231.7.1/24"), "address not carried over: {text}{}", stderr(&exec));
    let link = text.lines().find(|l| l.contains(": ctr0") && l.contains('<')).unwrap_or_else(|| panic!("{text}"));
    assert!(link.split(['<', '>']).nth(1).is_some_and(|flags| flags.split(',').any(|f| f == "UP")), "not up: {link}");
    let out = b.cmd(&["delete", "--force", &b.id]);
    assert!(out.status.success(), "{}", stderr(&out));
    // The namespace went with the container, and the veth with it: both ends.
    for _ in 0..100 {
        if !Veth::on_host(&veth.peer) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(!Veth::on_host(&veth.peer) && !Veth::on_host(&veth.host), "the veth pair outlived the container");
}

#[test]
fn a_device_keeps_its_name_or_takes_a_template() {
    if runtime_is_runc() {
        return skip(RUNC_LACKS);
    }
    let Some(plain) = Veth::new("k") else { return no_ip() };
    let Some(templated) = Veth::new("t") else { return no_ip() };
    let mut b = Bundle::new("netdevname");
    b.sh("ip -o link show | cut -d: -f2 | tr -d ' ' | sort");
    b.config["linux"]["netDevices"] = json!({ &plain.host: {}, &templated.host: {"name": "eth%d"} });
    let names = b.run_ok();
    let mut names: Vec<&str> = names.lines().map(|l| l.split('@').next().unwrap()).collect();
    names.sort();
    let mut want = vec!["eth0", plain.host.as_str(), "lo"];
    want.sort();
    assert_eq!(names, want);
}

#[test]
fn a_failed_create_puts_the_device_back() {
    if runtime_is_runc() {
        return skip(RUNC_LACKS);
    }
    let Some(veth) = Veth::new("f") else { return no_ip() };
    veth.add_address("10.231.8.1/24");
    let mut b = Bundle::new("netdevfail");
    b.sh("true");
    b.config["linux"]["netDevices"] = json!({ &veth.host: {"name": "ctr0"} });
    // createRuntime hooks run on the host after the devices moved in: this one fails exactly
    // when the device has left the host, so create fails after the move.
    let script = format!("ip link show dev {} >/dev/null 2>&1 && exit 0; exit 1", veth.host);
    b.config["hooks"] = json!({"createRuntime": [{"path": "/bin/sh", "args": ["sh", "-c", script]}]});
    let out = b.create();
    assert!(!out.status.success(), "create with a failing hook succeeded");
    b.assert_nothing_left();
    assert!(Veth::on_host(&veth.host), "the device was not moved back");
    let addr = Command::new("ip").args(["-o", "addr", "show", "dev", &veth.host]).output().unwrap();
    assert!(stdout(&addr).contains("10.231.8.1/24"), "address lost: {}", stdout(&addr));
}

#[test]
fn bad_devices_are_refused_at_create() {
    if runtime_is_runc() {
        return skip(RUNC_LACKS);
    }
    let Some(veth) = Veth::new("b") else { return no_ip() };
    let cases: Vec<(serde_json::Value, bool, &str)> = vec![
        (json!({"nosuchdev0": {}}), true, "linux.netDevices: host device \"nosuchdev0\""),
        (json!({ &veth.host: {"name": "a/b"} }), true, "not a valid interface name"),
        (json!({ &veth.host: {"name": "way-too-long-name0"} }), true, "1 to 15 bytes"),
        (json!({"lo": {}}), true, "lo cannot"),
        (json!({ &veth.host: {} }), false, "no network namespace"),
    ];
    for (devices, netns, needle) in cases {
        let mut b = Bundle::new("netdevbad");
        b.config["linux"]["netDevices"] = devices;
        if !netns {
            drop_namespace(&mut b.config, "network");
        }
        let out = b.create();
        assert!(!out.status.success(), "accepted: {needle}");
        let err = stderr(&out);
        assert_eq!(err.trim().lines().count(), 1, "want one error line: {err}");
        assert!(err.contains(needle), "error lacks {needle:?}: {err}");
        b.assert_nothing_left();
        assert!(Veth::on_host(&veth.host));
    }
}
