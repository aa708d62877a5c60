//! Idmapped bind mounts: ownership seen through a mapping, without chown on the host.

use std::os::unix::fs::chown;

use runtime_tests::*;
use serde_json::json;

fn volume(b: &Bundle) -> std::path::PathBuf {
    let dir = b.dir.join("volume");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("file"), "data").unwrap();
    chown(dir.join("file"), Some(1000), Some(1000)).unwrap();
    dir
}

#[test]
fn idmapped_bind_shows_mapped_owners() {
    if berth_only("idmapped mounts (runc 1.1.5 has none)") {
        return;
    }
    let mut b = Bundle::new("idmap");
    let dir = volume(&b);
    // As runc writes them: the mapping's containerID is the id on disk, its hostID the id
    // the mount shows (which a container user namespace would then translate).
    let map = json!([{"containerID": 1000, "hostID": 2000, "size": 1}]);
    let mounts = b.config["mounts"].as_array_mut().unwrap();
    mounts.push(json!({"destination": "/mapped", "type": "bind", "source": dir, "options": ["rbind", "idmap"],
                       "uidMappings": map, "gidMappings": map}));
    mounts.push(json!({"destination": "/plain", "type": "bind", "source": dir, "options": ["rbind"]}));
    b.sh("stat -c '%u:%g' /mapped/file /plain/file");
    assert_eq!(b.run_ok(), "2000:2000\n1000:1000\n");
    let meta = std::fs::metadata(dir.join("file")).unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_eq!((meta.uid(), meta.gid()), (1000, 1000), "the host file was chowned");
}

#[test]
fn idmapped_mounts_need_a_mapping_and_a_bind() {
    if berth_only("idmapped mounts (runc 1.1.5 has none)") {
        return;
    }
    let mut b = Bundle::new("idmapbad");
    let dir = volume(&b);
    b.config["mounts"]
        .as_array_mut()
        .unwrap()
        .push(json!({"destination": "/m", "type": "bind", "source": dir, "options": ["bind", "idmap"]}));
    let out = b.create();
    assert!(!out.status.success());
    assert!(stderr(&out).contains("needs non-empty uidMappings"), "{}", stderr(&out));
    b.assert_nothing_left();
}

#[test]
fn features_report_idmap() {
    if berth_only("idmapped mounts (runc 1.1.5 has none)") {
        return;
    }
    let b = Bundle::new("idmapfeat");
    let f: serde_json::Value = serde_json::from_slice(&b.cmd(&["features"]).stdout).unwrap();
    assert_eq!(f["linux"]["mountExtensions"]["idmap"]["enabled"], true);
    assert!(f["mountOptions"].as_array().unwrap().iter().any(|o| o == "ridmap"));
}
