//! The container layer: many containers over one read-only bundle.

use std::collections::BTreeMap;
use std::path::Path;

use runtime_tests::*;
use serde_json::json;

/// Every path under `dir` with its type, mode and content: equal snapshots, equal trees.
fn snapshot(dir: &Path) -> BTreeMap<String, (u32, Vec<u8>)> {
    use std::os::unix::fs::MetadataExt;
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let m = std::fs::symlink_metadata(&p).unwrap();
            let content = if m.file_type().is_file() {
                std::fs::read(&p).unwrap()
            } else if m.file_type().is_symlink() {
                std::fs::read_link(&p).unwrap().into_os_string().into_encoded_bytes()
            } else {
                Vec::new()
            };
            if m.is_dir() {
                stack.push(p.clone());
            }
            out.insert(p.strip_prefix(dir).unwrap().display().to_string(), (m.mode(), content));
        }
    }
    out
}

#[test]
fn containers_share_a_bundle_without_changing_it() {
    if berth_only("the overlay rootfs (--rootfs-overlay, org.berth.rootfs.overlay)") {
        return;
    }
    let mut b = Bundle::new("overlay");
    b.config["root"]["readonly"] = json!(false);
    b.sh("sleep 300");
    b.save();
    let rootfs = b.dir.join("rootfs");
    let before = snapshot(&rootfs);
    let ids = [format!("{}-a", b.id), format!("{}-b", b.id)];
    for id in &ids {
        let mut cmd = b.berth();
        cmd.args(["run", "--detach", "--rootfs-overlay", "--bundle"]).arg(&b.dir).arg(id);
        let out = b.detached(cmd);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    for id in &ids {
        let script = format!("echo {id} > /written-by-me; mkdir -p /etc/extra; rm /bin/vi; ls /");
        let out = b.cmd(&["exec", id, "sh", "-c", &script]);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    for (me, other) in [(&ids[0], &ids[1]), (&ids[1], &ids[0])] {
        let out = b.cmd(&["exec", me, "sh", "-c", "cat /written-by-me; ls /bin/vi 2>&1"]);
        let text = stdout(&out);
        assert!(text.starts_with(&format!("{me}\n")), "{me} sees {text}");
        assert!(!text.contains(other.as_str()), "{me} sees {other}'s file");
        assert!(text.contains("No such file"), "{text}");
        let state: serde_json::Value = serde_json::from_slice(&b.cmd(&["state", me]).stdout).unwrap();
        let layer = state["annotations"]["org.berth.rootfs.layer"].as_str().unwrap().to_string();
        assert!(Path::new(&layer).join("written-by-me").exists(), "the write is not in {layer}");
    }
    assert_eq!(snapshot(&rootfs), before, "the bundle's rootfs changed");
    for id in &ids {
        let state_dir = b.root.join(id);
        assert!(state_dir.join("upper").exists() && state_dir.join("work").exists());
        assert!(b.cmd(&["delete", "--force", id]).status.success());
        assert!(!state_dir.exists(), "delete left the container layer");
    }
    assert_eq!(snapshot(&rootfs), before);
}

#[test]
fn the_annotation_asks_for_the_overlay_too() {
    if berth_only("the overlay rootfs (--rootfs-overlay, org.berth.rootfs.overlay)") {
        return;
    }
    let mut b = Bundle::new("overlayann");
    b.config["annotations"] = json!({"org.berth.rootfs.overlay": "true"});
    b.config["root"]["readonly"] = json!(false);
    b.sh("touch /new-file && mount | grep ' / '");
    let out = b.run_ok();
    assert!(out.starts_with("overlay on / type overlay"), "{out}");
    assert!(!b.dir.join("rootfs/new-file").exists(), "the write reached the bundle");
    b.assert_nothing_left();
}

/// With a user namespace the init mounts the overlay itself (no parent-made mount), and the
/// container's root, mapped to an unprivileged host id, owns what it writes in its layer.
#[test]
fn an_overlay_under_a_user_namespace_is_owned_by_mapped_root() {
    if berth_only("the overlay rootfs (--rootfs-overlay, org.berth.rootfs.overlay)") {
        return;
    }
    let mut b = Bundle::new("overlayuserns");
    b.config["root"]["readonly"] = json!(false);
    b.config["linux"]["namespaces"].as_array_mut().unwrap().push(json!({"type": "user"}));
    b.config["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    b.config["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    b.sh("echo inside > /new-file && grep -c ' / overlay ' /proc/self/mountinfo && sleep 300");
    b.save();
    let mut cmd = b.berth();
    cmd.args(["run", "--detach", "--rootfs-overlay", "--bundle"]).arg(&b.dir).arg(&b.id);
    let out = b.detached(cmd);
    assert!(out.status.success(), "{}", stderr(&out));
    let layer = b.state()["annotations"]["org.berth.rootfs.layer"].as_str().unwrap().to_string();
    let written = Path::new(&layer).join("new-file");
    wait_for_file(&written);
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(&written).unwrap();
    assert_eq!((meta.uid(), meta.gid()), (100000, 100000));
    assert!(!b.dir.join("rootfs/new-file").exists(), "the write reached the bundle");
    assert!(b.cmd(&["delete", "--force", &b.id]).status.success());
    assert!(!Path::new(&layer).exists(), "delete left the container layer");
}
