//! AppArmor and SELinux: a profile or label the config asks for confines the process, and a
//! host without the module refuses the config instead of running the container unconfined.

use runtime_tests::*;
use serde_json::json;

fn apparmor_enabled() -> bool {
    std::fs::read_to_string("/sys/module/apparmor/parameters/enabled").is_ok_and(|s| s.starts_with('Y'))
}

fn selinux_enabled() -> bool {
    std::path::Path::new("/sys/fs/selinux/enforce").exists()
}

#[test]
fn a_module_the_host_lacks_is_refused_at_create() {
    let mut asked = Vec::new();
    if !apparmor_enabled() {
        asked.push(("apparmorProfile", "docker-default"));
    }
    if !selinux_enabled() {
        asked.push(("selinuxLabel", "system_u:system_r:container_t:s0"));
    }
    for (field, value) in asked {
        let mut b = Bundle::new("lsmmissing");
        b.config["process"][field] = json!(value);
        b.sh("echo ran");
        let out = b.create();
        assert!(!out.status.success(), "{field} accepted on a host without its module");
        b.assert_nothing_left();
    }
}

/// Where the host runs AppArmor (the systemd test host's Debian kernel does): a profile that
/// denies writes under /tmp confines the container's process, and its exec'd processes.
#[test]
fn an_apparmor_profile_confines_the_process() {
    if !apparmor_enabled() || !std::path::Path::new("/sbin/apparmor_parser").exists() {
        return skip("this host has no AppArmor (or no apparmor_parser to load a profile)");
    }
    let name = format!("berth-test-{}", std::process::id());
    let profile = format!(
        "profile {name} flags=(attach_disconnected,mediate_deleted) {{\n  file,\n  capability,\n  network,\n  \
         mount,\n  umount,\n  pivot_root,\n  signal,\n  ptrace,\n  unix,\n  deny /tmp/** w,\n}}\n"
    );
    let load =
        std::process::Command::new("/sbin/apparmor_parser").arg("-r").stdin(std::process::Stdio::piped()).spawn();
    let mut load = load.unwrap();
    std::io::Write::write_all(load.stdin.as_mut().unwrap(), profile.as_bytes()).unwrap();
    drop(load.stdin.take());
    assert!(load.wait().unwrap().success(), "apparmor_parser refused the test profile");
    let mut b = Bundle::new("apparmor");
    b.config["process"]["apparmorProfile"] = json!(name);
    b.config["root"]["readonly"] = json!(false);
    b.sh("cat /proc/self/attr/current; touch /tmp/x 2>&1 && echo wrote; sleep 300");
    b.save();
    let out = b.run_detached(&[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let exec = b.cmd(&["exec", &b.id, "sh", "-c", "cat /proc/self/attr/current; touch /tmp/y 2>&1 && echo wrote"]);
    let text = stdout(&exec);
    let _ = b.cmd(&["delete", "--force", &b.id]);
    let mut unload = std::process::Command::new("/sbin/apparmor_parser")
        .arg("-R")
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(unload.stdin.as_mut().unwrap(), profile.as_bytes()).unwrap();
    drop(unload.stdin.take());
    let _ = unload.wait();
    assert!(text.starts_with(&format!("{name} (enforce)")), "exec not confined: {text}");
    assert!(!text.contains("wrote"), "the profile did not deny the write: {text}");
}
