//! Mounts with their flags, devices, masked and read-only paths, the read-only root, and
//! destinations that try to leave the rootfs through a symlink.

use std::os::unix::fs::symlink;

use runtime_tests::*;
use serde_json::json;

/// mountinfo line for `dest` inside the container: (mount options, fstype, super options).
fn mount_of<'a>(mountinfo: &'a str, dest: &str) -> (&'a str, &'a str, &'a str) {
    let line = mountinfo
        .lines()
        .filter(|l| l.split(' ').nth(4) == Some(dest))
        .next_back()
        .unwrap_or_else(|| panic!("{dest} is not mounted:\n{mountinfo}"));
    let (left, right) = line.split_once(" - ").unwrap();
    let right: Vec<&str> = right.split(' ').collect();
    (left.split(' ').nth(5).unwrap(), right[0], right[2])
}

#[test]
fn mounts_have_their_flags() {
    let mut b = Bundle::new("mounts");
    let host_dir = b.dir.join("volume");
    std::fs::create_dir_all(host_dir.join("sub")).unwrap();
    std::fs::write(host_dir.join("file"), "from host").unwrap();
    let mounts = b.config["mounts"].as_array_mut().unwrap();
    mounts.push(json!({"destination": "/data", "type": "tmpfs", "source": "tmpfs",
        "options": ["noexec", "nosuid", "nodev", "size=1m", "mode=700", "noatime"]}));
    mounts.push(
        json!({"destination": "/vol", "type": "bind", "source": host_dir, "options": ["rbind", "ro", "rprivate"]}),
    );
    mounts.push(json!({"destination": "/rw", "type": "bind", "source": host_dir, "options": ["bind", "rw"]}));
    mounts.push(
        json!({"destination": "/rro", "type": "bind", "source": host_dir, "options": ["rbind", "rro", "rnoexec"]}),
    );
    b.sh("cat /proc/self/mountinfo; echo ===; cat /vol/file; echo; touch /vol/x 2>/dev/null && echo vol-writable; touch /rw/from-container && echo rw-ok; touch /newfile 2>/dev/null && echo root-writable; touch /rro/x 2>/dev/null && echo rro-writable; stat -c %a /data");
    let out = b.run_ok();
    let (mountinfo, rest) = out.split_once("===\n").unwrap();
    let (opts, fstype, sopts) = mount_of(mountinfo, "/data");
    assert_eq!(fstype, "tmpfs");
    for f in ["noexec", "nosuid", "nodev", "noatime"] {
        assert!(opts.split(',').any(|o| o == f), "/data lacks {f}: {opts}");
    }
    assert!(sopts.contains("size=1024k"), "{sopts}");
    let (opts, _, _) = mount_of(mountinfo, "/vol");
    assert!(opts.starts_with("ro"), "/vol not read-only: {opts}");
    let (opts, _, _) = mount_of(mountinfo, "/rro");
    assert!(opts.starts_with("ro") && opts.contains("noexec"), "/rro lacks recursive ro,noexec: {opts}");
    let (opts, fstype, _) = mount_of(mountinfo, "/proc");
    assert_eq!(fstype, "proc");
    assert!(opts.starts_with("rw"), "{opts}");
    let (opts, _, sopts) = mount_of(mountinfo, "/dev/pts");
    assert!(opts.contains("noexec") && sopts.contains("ptmxmode=666"), "{opts} {sopts}");
    let (opts, fstype, _) = mount_of(mountinfo, "/dev/shm");
    assert_eq!(fstype, "tmpfs");
    assert!(opts.contains("nodev") && opts.contains("noexec"), "{opts}");
    assert_eq!(mount_of(mountinfo, "/dev/mqueue").1, "mqueue");
    let (opts, fstype, _) = mount_of(mountinfo, "/sys");
    assert_eq!(fstype, "sysfs");
    assert!(opts.starts_with("ro"), "{opts}");
    let (opts, _, _) = mount_of(mountinfo, "/");
    assert!(opts.starts_with("ro"), "root not read-only: {opts}");
    assert!(mountinfo.lines().any(|l| l.contains(" /sys/fs/cgroup/pids ")), "no pids cgroup mount");
    assert_eq!(rest.lines().collect::<Vec<_>>(), ["from host", "rw-ok", "700"]);
    assert!(host_dir.join("from-container").exists());
}

#[test]
fn default_and_configured_devices() {
    let mut b = Bundle::new("devices");
    b.config["linux"]["devices"] = json!([
        {"path": "/dev/mynull", "type": "c", "major": 1, "minor": 3, "fileMode": 384, "uid": 1000, "gid": 1000}
    ]);
    b.sh("for d in null zero full random urandom tty mynull; do stat -c '%n %F %t %T %a %u' /dev/$d; done; for l in fd stdin ptmx; do readlink /dev/$l; done");
    let out = b.run_ok();
    let want = [
        "/dev/null character special file 1 3 666 0",
        "/dev/zero character special file 1 5 666 0",
        "/dev/full character special file 1 7 666 0",
        "/dev/random character special file 1 8 666 0",
        "/dev/urandom character special file 1 9 666 0",
        "/dev/tty character special file 5 0 666 0",
        "/dev/mynull character special file 1 3 600 1000",
        "/proc/self/fd",
        "/proc/self/fd/0",
        "pts/ptmx",
    ];
    assert_eq!(out.lines().collect::<Vec<_>>(), want);
}

/// What masks a file is the container's own /dev/null: no mount of the host's devtmpfs (whose
/// options tell the host's memory size) shows in the container, as with runc.
#[test]
fn masked_files_are_covered_by_the_containers_own_dev_null() {
    let mut b = Bundle::new("maskednull");
    b.config["linux"]["maskedPaths"] = json!(["/proc/kcore", "/proc/keys", "/proc/timer_list"]);
    b.sh("grep -c ' - devtmpfs ' /proc/self/mountinfo; [ \"$(stat -c %d:%i /proc/keys)\" = \"$(stat -c %d:%i /dev/null)\" ] && echo same-as-dev-null");
    assert_eq!(stdout(&b.run()), "0\nsame-as-dev-null\n");
}

#[test]
fn masked_and_readonly_paths() {
    let mut b = Bundle::new("masked");
    b.sh("wc -c < /proc/keys; ls /sys/firmware | wc -l; echo 1 > /proc/sysrq-trigger 2>/dev/null && echo sysrq-writable; echo x > /proc/sys/kernel/domainname 2>/dev/null && echo sys-writable; echo done");
    let out = b.run_ok();
    assert_eq!(out.lines().collect::<Vec<_>>(), ["0", "0", "done"]);
}

#[test]
fn symlinks_in_the_rootfs_cannot_lead_mounts_outside() {
    let mut b = Bundle::new("escape");
    let outside = b.dir.join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    symlink(&outside, b.dir.join("rootfs/evil")).unwrap();
    symlink("../../../../../../../..", b.dir.join("rootfs/up")).unwrap();
    let mounts = b.config["mounts"].as_array_mut().unwrap();
    mounts.push(json!({"destination": "/evil/mnt", "type": "tmpfs", "source": "tmpfs"}));
    mounts.push(json!({"destination": "/up/tmp/climb", "type": "tmpfs", "source": "tmpfs"}));
    b.sh("touch /evil/mnt/inside /up/tmp/climb/inside && echo ok");
    assert_eq!(b.run_ok().trim(), "ok");
    // Both destinations were taken inside the rootfs: nothing appeared on the host.
    assert!(!outside.join("mnt").exists(), "mount destination followed a symlink out of the rootfs");
    assert!(b.dir.join("rootfs").join(outside.strip_prefix("/").unwrap()).join("mnt").is_dir());
    assert!(!std::path::Path::new("/tmp/climb").exists());
    assert!(b.dir.join("rootfs/tmp/climb").is_dir());
}

/// --no-pivot moves the rootfs onto / and chroots into it. A private root there would pin the
/// host's mounts under it for the container's life (runc #1602), so, as runc does, a private
/// rootfsPropagation is refused with --no-pivot; a slave one runs.
#[test]
fn no_pivot_and_propagation() {
    let mut b = Bundle::new("nopivot");
    b.config["linux"]["rootfsPropagation"] = json!("slave");
    b.sh("cat /proc/self/mountinfo | grep ' / / '; ls /");
    b.save();
    let out = b.berth().args(["run", "--no-pivot", "--bundle"]).arg(&b.dir).arg(&b.id).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("bin"), "{}", stdout(&out));
    for propagation in ["private", "rprivate"] {
        let mut b = Bundle::new("nopivotprivate");
        b.config["linux"]["rootfsPropagation"] = json!(propagation);
        b.sh("echo ran");
        b.save();
        let out = b.berth().args(["run", "--no-pivot", "--bundle"]).arg(&b.dir).arg(&b.id).output().unwrap();
        assert!(!out.status.success(), "--no-pivot with a {propagation} root ran: {}", stdout(&out));
        assert!(!stdout(&out).contains("ran"));
        b.assert_nothing_left();
    }
}

/// The rootfs bound onto itself and shared, as engines leave it on a systemd host.
struct SharedMountPoint(std::path::PathBuf);

impl SharedMountPoint {
    fn new(rootfs: std::path::PathBuf) -> SharedMountPoint {
        let mount =
            |args: &[&std::ffi::OsStr]| std::process::Command::new("mount").args(args).status().unwrap().success();
        assert!(mount(&["--bind".as_ref(), rootfs.as_os_str(), rootfs.as_os_str()]));
        assert!(mount(&["--make-shared".as_ref(), rootfs.as_os_str()]));
        SharedMountPoint(rootfs)
    }
}

impl Drop for SharedMountPoint {
    /// Recursively and lazily: on a runtime that leaks the container's mounts to the host,
    /// they are below this one.
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").args(["-R", "-l"]).arg(&self.0).status();
    }
}

/// Every rootfsPropagation runc accepts runs, on a plain rootfs and on one that is a shared
/// mount point of its own (Kubernetes asks for rshared for Bidirectional mounts): shared used
/// to fail pivot_root, unbindable the rootfs bind. Whether / then shows a peer group or a
/// master depends on the host's own propagation; unbindable does not.
#[test]
fn every_rootfs_propagation_with_the_rootfs_a_mount_point_or_not() {
    let mut all = vec!["shared", "rshared", "slave", "rslave", "private", "rprivate", "unbindable", "runbindable"];
    if runtime_is_runc() {
        skip("unbindable: runc 1.1.5 cannot bind the rootfs from under an unbindable / (EINVAL)");
        all.retain(|p| !p.ends_with("unbindable"));
    }
    for mount_point in [false, true] {
        for propagation in all.iter() {
            let mut b = Bundle::new("rootprop");
            let _shared = mount_point.then(|| SharedMountPoint::new(b.dir.join("rootfs")));
            b.config["linux"]["rootfsPropagation"] = json!(propagation);
            b.sh("awk '$5 == \"/\"' /proc/self/mountinfo");
            let out = b.run();
            let line = stdout(&out);
            assert!(out.status.success(), "{propagation} (mount point: {mount_point}): {}", stderr(&out));
            if propagation.ends_with("unbindable") {
                assert!(line.contains(" unbindable "), "{propagation}: / is not unbindable: {line}");
            }
            // Nothing the container mounted may show on the host under its rootfs.
            let rootfs = b.dir.join("rootfs");
            let host = std::fs::read_to_string("/proc/self/mounts").unwrap();
            let under = host
                .lines()
                .filter(|l| l.split(' ').nth(1).is_some_and(|m| m.starts_with(rootfs.to_str().unwrap())))
                .count();
            assert_eq!(
                under,
                usize::from(mount_point),
                "{propagation}: the container's mounts reached the host:\n{host}"
            );
        }
    }
}

/// runc's tmpcopyup (podman puts it on every tmpfs it asks for): the tmpfs starts with what
/// the image has there, and writes stay in the tmpfs.
#[test]
fn tmpfs_copy_up_seeds_the_tmpfs() {
    let mut b = Bundle::new("copyup");
    let seed = b.dir.join("rootfs/seed");
    std::fs::create_dir_all(seed.join("sub")).unwrap();
    std::fs::write(seed.join("sub/file"), "from the image").unwrap();
    std::os::unix::fs::symlink("sub/file", seed.join("link")).unwrap();
    b.config["mounts"].as_array_mut().unwrap().push(json!({"destination": "/seed", "type": "tmpfs", "source": "tmpfs",
        "options": ["rw", "nosuid", "nodev", "tmpcopyup"]}));
    b.sh("cat /seed/link; echo; echo new > /seed/sub/file; cat /seed/sub/file; mount | grep ' /seed '");
    let out = b.run_ok();
    assert!(out.starts_with("from the image\nnew\ntmpfs on /seed type tmpfs"), "{out}");
    assert_eq!(std::fs::read_to_string(seed.join("sub/file")).unwrap(), "from the image", "the image changed");
}
