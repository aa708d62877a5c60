//! Namespaces, the process's identity and limits, checked from inside the container (busybox)
//! and from the host (/proc).

use runtime_tests::*;
use serde_json::json;
use std::path::Path;

#[test]
fn own_hostname_pid_and_namespaces() {
    let mut b = Bundle::new("ns");
    b.config["hostname"] = json!("box");
    b.config["domainname"] = json!("example.org");
    let mut kinds = vec!["pid", "net", "ipc", "uts", "mnt", "cgroup"];
    if runtime_is_runc() {
        skip("time namespace: berth only (runc 1.1.5 has none)");
    } else {
        b.config["linux"]["namespaces"].as_array_mut().unwrap().push(json!({"type": "time"}));
        kinds.push("time");
    }
    // `runc spec` (which the harness's bundles come from on runc) asks for no cgroup namespace.
    if !b.config["linux"]["namespaces"].as_array().unwrap().iter().any(|n| n["type"] == "cgroup") {
        b.config["linux"]["namespaces"].as_array_mut().unwrap().push(json!({"type": "cgroup"}));
    }
    b.sh(&format!(
        "hostname; cat /proc/sys/kernel/domainname; echo $$; for n in {}; do readlink /proc/self/ns/$n; done",
        kinds.join(" ")
    ));
    let out = b.run_ok();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "box");
    if runtime_is_runc() {
        skip("domainname: berth only (runc 1.1.5 ignores it)");
    } else {
        assert_eq!(lines[1], "example.org");
    }
    assert_eq!(lines[2], "1");
    for (i, n) in kinds.iter().enumerate() {
        let host = std::fs::read_link(format!("/proc/self/ns/{n}")).unwrap();
        assert_ne!(lines[3 + i], host.to_str().unwrap(), "{n} namespace is the host's");
    }
}

#[test]
fn time_namespace_offsets() {
    if berth_only("time namespaces (runc 1.1.5 has none)") {
        return;
    }
    let mut b = Bundle::new("timens");
    b.config["linux"]["namespaces"].as_array_mut().unwrap().push(json!({"type": "time"}));
    b.config["linux"]["timeOffsets"] = json!({"boottime": {"secs": 8640000, "nanosecs": 0}});
    b.sh("cut -d. -f1 /proc/uptime");
    let uptime: u64 = b.run_ok().trim().parse().unwrap();
    assert!(uptime >= 8_640_000, "uptime {uptime} lacks the boottime offset");
}

#[test]
fn joins_a_namespace_by_path() {
    let mut a = Bundle::new("nsowner");
    a.sh("sleep 300");
    assert!(a.run_detached(&[]).status.success());
    let pid = a.state()["pid"].as_i64().unwrap();
    let mut b = Bundle::new("nsjoin");
    for ns in b.config["linux"]["namespaces"].as_array_mut().unwrap() {
        if ns["type"] == "network" || ns["type"] == "uts" {
            let file = if ns["type"] == "network" { "net" } else { "uts" };
            ns["path"] = json!(format!("/proc/{pid}/ns/{file}"));
        }
    }
    b.config.as_object_mut().unwrap().remove("hostname");
    b.sh("readlink /proc/self/ns/net; readlink /proc/self/ns/uts");
    let out = b.run_ok();
    let want_net = std::fs::read_link(format!("/proc/{pid}/ns/net")).unwrap();
    let want_uts = std::fs::read_link(format!("/proc/{pid}/ns/uts")).unwrap();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines, [want_net.to_str().unwrap(), want_uts.to_str().unwrap()]);
}

#[test]
fn capabilities_match_the_config() {
    let mut b = Bundle::new("caps");
    b.sh("grep -E '^Cap(Inh|Prm|Eff|Bnd|Amb)' /proc/self/status");
    let status = b.run_ok();
    // CAP_KILL=5, CAP_NET_BIND_SERVICE=10, CAP_AUDIT_WRITE=29: `berth spec`'s defaults.
    let defaults = cap_mask(&[5, 10, 29]);
    assert_eq!(status_field(&status, "CapEff"), defaults);
    assert_eq!(status_field(&status, "CapBnd"), defaults);
    assert_eq!(status_field(&status, "CapPrm"), defaults);
    assert_eq!(status_field(&status, "CapAmb"), cap_mask(&[]));
}

#[test]
fn non_root_user_with_ambient_caps_groups_umask() {
    let mut b = Bundle::new("user");
    b.config["process"]["user"] = json!({"uid": 1000, "gid": 1001, "additionalGids": [10, 20], "umask": 23});
    let only = json!(["CAP_NET_BIND_SERVICE"]);
    b.config["process"]["capabilities"] = json!({
        "bounding": only, "effective": only, "permitted": only, "inheritable": only, "ambient": only
    });
    b.sh("grep -E '^(Uid|Gid|Groups|CapEff|CapBnd|CapAmb|NoNewPrivs)' /proc/self/status; umask");
    let out = b.run_ok();
    assert_eq!(status_field(&out, "Uid"), "1000\t1000\t1000\t1000");
    assert_eq!(status_field(&out, "Gid"), "1001\t1001\t1001\t1001");
    assert_eq!(status_field(&out, "Groups"), "10 20");
    let nbs = cap_mask(&[10]);
    assert_eq!(status_field(&out, "CapEff"), nbs);
    assert_eq!(status_field(&out, "CapBnd"), nbs);
    assert_eq!(status_field(&out, "CapAmb"), nbs);
    assert_eq!(status_field(&out, "NoNewPrivs"), "1");
    assert_eq!(out.lines().last().unwrap(), "0027");
}

/// A process.env without HOME gets the user's home from the rootfs's /etc/passwd, or / for a
/// user it does not list, as runc (and crun) set it: programs expect HOME. A HOME the config
/// sets stays.
#[test]
fn home_comes_from_the_users_passwd_entry() {
    for (uid, env, want) in [
        (0, vec!["PATH=/bin"], "/root"),
        (1000, vec!["PATH=/bin"], "/"),
        (0, vec!["PATH=/bin", "HOME=/elsewhere"], "/elsewhere"),
    ] {
        let mut b = Bundle::new("home");
        b.config["process"]["user"] = json!({"uid": uid, "gid": uid});
        b.config["process"]["env"] = json!(env);
        b.sh("echo \"$HOME\"");
        assert_eq!(b.run_ok(), format!("{want}\n"), "uid {uid}, env {env:?}");
    }
}

#[test]
fn rlimits_env_cwd_oom_sysctl() {
    let mut b = Bundle::new("proc");
    b.config["process"]["rlimits"] = json!([
        {"type": "RLIMIT_NOFILE", "soft": 512, "hard": 1024},
        {"type": "RLIMIT_CORE", "soft": 0, "hard": 0}
    ]);
    b.config["process"]["env"] = json!(["PATH=/bin", "GREETING=hello world"]);
    b.config["process"]["cwd"] = json!("/tmp");
    b.config["process"]["oomScoreAdj"] = json!(500);
    b.config["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1", "kernel.shmmax": "123456789"});
    b.sh("grep -E 'Max (open files|core file size)' /proc/self/limits; echo \"$GREETING\"; pwd; cat /proc/self/oom_score_adj; cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shmmax");
    let host_shmmax = std::fs::read_to_string("/proc/sys/kernel/shmmax").unwrap();
    let out = b.run_ok();
    let lines: Vec<&str> = out.lines().collect();
    let words = |l: &str| l.split_whitespace().map(String::from).collect::<Vec<_>>();
    assert_eq!(words(lines[0])[4..7], ["0", "0", "bytes"]);
    assert_eq!(words(lines[1])[3..6], ["512", "1024", "files"]);
    assert_eq!(&lines[2..], ["hello world", "/tmp", "500", "1", "123456789"]);
    assert_eq!(std::fs::read_to_string("/proc/sys/kernel/shmmax").unwrap(), host_shmmax, "host sysctl changed");
}

#[test]
fn only_stdio_and_preserved_fds_reach_the_process() {
    let mut b = Bundle::new("fds");
    b.sh("ls /proc/self/fd | sort -n | tr '\\n' ' '; cat <&3");
    b.save();
    let script = format!(
        "exec 3<{}; exec {} --root {} run --preserve-fds 1 --bundle {} {}",
        b.dir.join("rootfs/etc/group").display(),
        berth_bin().display(),
        b.root.display(),
        b.dir.display(),
        b.id
    );
    let out = std::process::Command::new("bash").arg("-c").arg(script).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    // ls itself holds one more fd for the directory it reads.
    assert_eq!(stdout(&out), "0 1 2 3 4 root:x:0:\n");
}

/// Without `linux.cgroupsPath` berth puts the container in /berth/<id> (config-linux.md: "If
/// the value is not specified, the runtime MAY define the default cgroups path"; runc's is /<id>).
#[test]
fn default_cgroup_is_berth_id_and_removed() {
    if berth_only("berth's default cgroup path /berth/<id>") {
        return;
    }
    let mut b = Bundle::new("cg");
    b.config["linux"].as_object_mut().unwrap().remove("cgroupsPath");
    b.sh("cat /proc/self/cgroup");
    let out = b.run_ok();
    let expected = format!("/berth/{}", b.id);
    assert!(out.lines().any(|l| l.ends_with(":pids:/") || l.contains(&expected)), "{out}");
    b.assert_nothing_left();
}

#[test]
fn cgroup_is_joined_and_removed() {
    let mut c = Bundle::new("cgpath");
    c.sh("sleep 300");
    c.config["linux"]["cgroupsPath"] = json!(format!("/berth-test/{}", c.id));
    assert!(c.create().status.success());
    let pid = c.state()["pid"].as_i64().unwrap().to_string();
    let procs = std::fs::read_to_string(format!("/sys/fs/cgroup/pids/berth-test/{}/cgroup.procs", c.id)).unwrap();
    assert_eq!(procs.trim(), pid);
    assert!(c.cmd(&["delete", &c.id]).status.success());
    assert!(!std::path::Path::new(&format!("/sys/fs/cgroup/pids/berth-test/{}", c.id)).exists());
    let _ = std::fs::remove_dir("/sys/fs/cgroup/pids/berth-test");
    for ctrl in ["memory", "cpu", "cpuset", "devices", "freezer", "blkio", "cpuacct", "systemd", "unified"] {
        let _ = std::fs::remove_dir(format!("/sys/fs/cgroup/{ctrl}/berth-test"));
    }
}

#[test]
fn user_namespace_maps_root_to_an_unprivileged_id() {
    let mut b = Bundle::new("userns");
    let vol = b.dir.join("vol");
    std::fs::create_dir(&vol).unwrap();
    std::fs::set_permissions(&vol, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    // Mapped root cannot create directories in a rootfs that real root owns: the image
    // provides its mount points.
    std::fs::create_dir(b.dir.join("rootfs/vol")).unwrap();
    b.config["linux"]["namespaces"].as_array_mut().unwrap().push(json!({"type": "user"}));
    b.config["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    b.config["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    b.config["mounts"]
        .as_array_mut()
        .unwrap()
        .push(json!({"destination": "/vol", "type": "bind", "source": vol, "options": ["bind"]}));
    b.sh("id -u; cat /proc/self/uid_map; touch /vol/made-inside; sleep 300");
    let out = b.run_detached(&[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let pid = b.state()["pid"].as_i64().unwrap();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    assert_eq!(status_field(&status, "Uid").split('\t').next().unwrap(), "100000");
    let file = vol.join("made-inside");
    wait_for_file(&file);
    let meta = std::fs::metadata(&file).unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_eq!((meta.uid(), meta.gid()), (100000, 100000));
    let map = std::fs::read_to_string(format!("/proc/{pid}/uid_map")).unwrap();
    assert_eq!(map.split_whitespace().collect::<Vec<_>>(), ["0", "100000", "65536"]);
}

/// A bind source the container's root could not reach (below a 0700 directory of the host's
/// root) is still mounted: the runtime opens it before the init enters the user namespace, as
/// runc's init gets it as an fd.
#[test]
fn a_bind_source_the_mapped_root_cannot_reach_is_mounted() {
    use std::os::unix::fs::PermissionsExt;
    let mut b = Bundle::new("usernsbind");
    let private = b.dir.join("private");
    let vol = private.join("vol");
    std::fs::create_dir_all(&vol).unwrap();
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::fs::write(vol.join("file"), "from the host\n").unwrap();
    std::fs::set_permissions(vol.join("file"), std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::create_dir(b.dir.join("rootfs/vol")).unwrap();
    std::fs::write(b.dir.join("rootfs/one"), "").unwrap();
    std::fs::write(private.join("one"), "a file source\n").unwrap();
    std::fs::set_permissions(private.join("one"), std::fs::Permissions::from_mode(0o644)).unwrap();
    b.config["linux"]["namespaces"].as_array_mut().unwrap().push(json!({"type": "user"}));
    b.config["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    b.config["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    let mounts = b.config["mounts"].as_array_mut().unwrap();
    mounts.push(json!({"destination": "/vol", "type": "bind", "source": vol, "options": ["rbind", "ro"]}));
    mounts.push(json!({"destination": "/one", "type": "bind", "source": private.join("one"), "options": ["bind"]}));
    b.sh("cat /vol/file /one; touch /vol/x 2>/dev/null && echo writable; grep ' /vol ' /proc/self/mountinfo | grep -c shared || true");
    let out = b.run();
    assert!(out.status.success(), "{}", stderr(&out));
    // Read-only as asked, and not a peer of the host's mount (nothing it mounts reaches the host).
    assert_eq!(stdout(&out), "from the host\na file source\n0\n");
    b.assert_nothing_left();
}

#[test]
fn a_bad_mapping_is_refused_naming_it() {
    let mut b = Bundle::new("badmap");
    b.config["linux"]["namespaces"].as_array_mut().unwrap().push(json!({"type": "user"}));
    b.config["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 0}]);
    b.config["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    let out = b.create();
    assert!(!out.status.success());
    if !runtime_is_runc() {
        // runc: "User namespaces enabled, but no user mapping found."
        assert!(stderr(&out).contains("0 100000 0"), "{}", stderr(&out));
    }
    b.assert_nothing_left();
}

/// Joining a user namespace by path: the container's other namespaces are created inside it,
/// so it owns them (setting the hostname, mounting, being pid 1 all work).
///
/// config-linux.md: "The runtime MUST place the container process in the namespace associated
/// with that `path`"; the namespace has its mappings already. runc 1.1.5 refuses a joined user
/// namespace without uidMappings/gidMappings.
#[test]
fn joins_a_user_namespace_by_path() {
    if runtime_is_runc() {
        return skip("deliberate difference: runc 1.1.5 wants mappings for a user namespace it joins by path");
    }
    let mut owner = Bundle::new("userowner");
    let map = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    owner.config["linux"]["namespaces"].as_array_mut().unwrap().push(json!({"type": "user"}));
    owner.config["linux"]["uidMappings"] = map.clone();
    owner.config["linux"]["gidMappings"] = map;
    owner.sh("sleep 300");
    assert!(owner.run_detached(&[]).status.success());
    let pid = owner.state()["pid"].as_i64().unwrap();
    let owner_userns = std::fs::read_link(format!("/proc/{pid}/ns/user")).unwrap();

    let mut b = Bundle::new("userjoin");
    b.config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "user", "path": format!("/proc/{pid}/ns/user")}));
    b.config["hostname"] = json!("joined");
    b.sh("id -u; hostname; echo $$; readlink /proc/self/ns/user");
    let out = b.run_ok();
    assert_eq!(out, format!("0\njoined\n1\n{}\n", owner_userns.display()));

    // Detached, the recorded pid is the real init (the intermediate child is gone).
    b.sh("sleep 300");
    assert!(b.run_detached(&[]).status.success());
    let init = b.state()["pid"].as_i64().unwrap();
    let status = std::fs::read_to_string(format!("/proc/{init}/status")).unwrap();
    assert_eq!(status_field(&status, "NSpid").split('\t').next_back().unwrap(), "1");
    assert_eq!(status_field(&status, "Uid").split('\t').next().unwrap(), "100000");
    assert!(b.cmd(&["delete", "--force", &b.id]).status.success());
    b.assert_nothing_left();
}

/// A read-only /dev is made read-only after the devices, /dev/pts and the symlinks are in it.
#[test]
fn a_read_only_dev_still_gets_its_devices() {
    let mut b = Bundle::new("rodev");
    for m in b.config["mounts"].as_array_mut().unwrap() {
        if m["destination"] == "/dev" {
            m["options"].as_array_mut().unwrap().push(json!("ro"));
        }
    }
    b.sh("echo hi > /dev/null && test -c /dev/zero && test -L /dev/fd && test -d /dev/pts/ && echo devices; \
          touch /dev/new 2>/dev/null || echo read-only; grep -c ' /dev/pts ' /proc/self/mountinfo");
    let out = b.run();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "devices\nread-only\n1\n");
    b.assert_nothing_left();

    // With a terminal the console is bound onto /dev/console, also before /dev turns read-only.
    let socket = b.dir.join("console.sock");
    let listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    b.config["process"]["terminal"] = json!(true);
    b.sh("test -c /dev/console && echo console");
    b.save();
    let out = b
        .berth()
        .args(["run", "-d", "--bundle"])
        .arg(&b.dir)
        .arg("--console-socket")
        .arg(&socket)
        .arg(&b.id)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    drop(listener);
    assert!(b.cmd(&["delete", "--force", &b.id]).status.success());
    b.assert_nothing_left();
}

/// /proc may be a bind of a procfs (runc checks the source's filesystem type), not of
/// anything else.
#[test]
fn proc_may_be_a_bind_of_a_procfs_only() {
    let mut b = Bundle::new("procbind");
    for m in b.config["mounts"].as_array_mut().unwrap() {
        if m["destination"] == "/proc" {
            *m = json!({"destination": "/proc", "type": "bind", "source": "/proc", "options": ["rbind", "nosuid", "nodev", "noexec"]});
        }
    }
    b.sh("test -r /proc/self/status && echo proc");
    let out = b.run();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "proc\n");
    b.assert_nothing_left();

    let mut bad = Bundle::new("procbindtmp");
    for m in bad.config["mounts"].as_array_mut().unwrap() {
        if m["destination"] == "/proc" {
            *m = json!({"destination": "/proc", "type": "bind", "source": "/tmp", "options": ["rbind"]});
        }
    }
    bad.sh("true");
    let out = bad.run();
    assert!(!out.status.success());
    if !runtime_is_runc() {
        assert!(stderr(&out).contains("not a procfs"), "{}", stderr(&out));
    }
    bad.assert_nothing_left();
}

/// A config without a mount namespace shares the runtime's (config-linux.md: the container
/// "inherits the runtime namespace of that type"): its mounts are made there, below the
/// rootfs, the process is chrooted into the rootfs, exec gets the same root, and delete
/// unmounts what the container mounted.
#[test]
fn without_a_mount_namespace_the_mounts_are_made_below_the_rootfs_until_delete() {
    if runtime_is_runc() {
        // runc 1.1.5 sets it up in the host's namespace too, but leaves every mount behind
        // after delete and changes the host's /dev/null on the way.
        return skip("deliberate difference: runc leaves such a container's mounts on the host");
    }
    let mut b = Bundle::new("nomntns");
    drop_namespace(&mut b.config, "mount");
    std::fs::write(b.dir.join("rootfs/marker"), "the container's root\n").unwrap();
    b.sh("cat /marker; test -r /proc/self/status && test -c /dev/null && echo mounted; sleep 300");
    let out = b.run_detached(&[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let rootfs = b.dir.join("rootfs");
    let below_rootfs = || {
        let table = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        table.lines().filter(|l| l.split(' ').nth(4).is_some_and(|p| Path::new(p).starts_with(&rootfs))).count()
    };
    assert!(below_rootfs() >= 3, "the container's mounts are not in the runtime's namespace");
    let out = b.cmd(&["exec", &b.id, "cat", "/marker"]);
    assert_eq!(stdout(&out), "the container's root\n", "{}", stderr(&out));
    let host_ns = std::fs::read_link("/proc/self/ns/mnt").unwrap();
    let pid = b.state()["pid"].as_i64().unwrap();
    assert_eq!(std::fs::read_link(format!("/proc/{pid}/ns/mnt")).unwrap(), host_ns);
    assert!(b.cmd(&["delete", "--force", &b.id]).status.success());
    assert_eq!(below_rootfs(), 0, "delete left the container's mounts behind");
    b.assert_nothing_left();
}
