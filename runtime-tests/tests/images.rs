//! OCI images run directly: images built here (a busybox base layer, a layer adding files, a
//! layer deleting with whiteouts and an opaque directory), run through the layer cache, and
//! every hostile-archive case refused with nothing left behind.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use runtime_tests::*;
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};

fn sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

#[derive(Clone, Copy)]
enum Compression {
    Plain,
    Gzip,
    Zstd,
}

fn compress(tar: &[u8], how: Compression) -> (Vec<u8>, &'static str) {
    use std::io::Write;
    match how {
        Compression::Plain => (tar.to_vec(), "application/vnd.oci.image.layer.v1.tar"),
        Compression::Gzip => {
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            gz.write_all(tar).unwrap();
            (gz.finish().unwrap(), "application/vnd.oci.image.layer.v1.tar+gzip")
        }
        Compression::Zstd => (
            ruzstd::encoding::compress_to_vec(tar, ruzstd::encoding::CompressionLevel::Fastest),
            "application/vnd.oci.image.layer.v1.tar+zstd",
        ),
    }
}

/// A layer tar written entry by entry. `raw` writes the path bytes unchecked, as a hostile
/// archive would.
struct LayerTar(tar::Builder<Vec<u8>>);

impl LayerTar {
    fn new() -> Self {
        LayerTar(tar::Builder::new(Vec::new()))
    }

    fn raw(&mut self, path: &[u8], kind: tar::EntryType, link: &[u8], data: &[u8], size: u64) -> &mut Self {
        let mut h = tar::Header::new_gnu();
        h.as_old_mut().name[..path.len()].copy_from_slice(path);
        h.as_old_mut().linkname[..link.len()].copy_from_slice(link);
        h.set_entry_type(kind);
        h.set_mode(if kind == tar::EntryType::Directory { 0o755 } else { 0o644 });
        h.set_size(size);
        h.set_mtime(1_700_000_000);
        h.set_cksum();
        self.0.append(&h, data).unwrap();
        self
    }

    fn file(&mut self, path: &str, data: &str) -> &mut Self {
        self.raw(path.as_bytes(), tar::EntryType::Regular, b"", data.as_bytes(), data.len() as u64)
    }

    fn dir(&mut self, path: &str) -> &mut Self {
        self.raw(path.as_bytes(), tar::EntryType::Directory, b"", b"", 0)
    }

    fn from_dir(dir: &Path) -> Self {
        let mut t = LayerTar::new();
        t.0.follow_symlinks(false);
        t.0.append_dir_all(".", dir).unwrap();
        t
    }

    fn finish(self) -> Vec<u8> {
        self.0.into_inner().unwrap()
    }
}

/// An image on disk: the OCI layout directory and, beside it, a `docker save` archive of it.
struct Image {
    layout: PathBuf,
    blobs: Vec<PathBuf>,
}

fn build_image(dir: &Path, layers: &[(Vec<u8>, Compression)], config: Value, tag: &str) -> Image {
    let blobs_dir = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs_dir).unwrap();
    let put = |bytes: &[u8]| {
        let d = sha256(bytes);
        std::fs::write(blobs_dir.join(&d), bytes).unwrap();
        (format!("sha256:{d}"), bytes.len())
    };
    let mut descriptors = Vec::new();
    let mut diff_ids = Vec::new();
    let mut blobs = Vec::new();
    for (tar, how) in layers {
        diff_ids.push(format!("sha256:{}", sha256(tar)));
        let (blob, media) = compress(tar, *how);
        let (digest, size) = put(&blob);
        blobs.push(blobs_dir.join(&digest[7..]));
        descriptors.push(json!({"mediaType": media, "digest": digest, "size": size}));
    }
    let config = json!({"architecture": "amd64", "os": "linux", "config": config,
                        "rootfs": {"type": "layers", "diff_ids": diff_ids}});
    let (config_digest, config_size) = put(&serde_json::to_vec(&config).unwrap());
    let manifest = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config_size},
        "layers": descriptors});
    let (manifest_digest, manifest_size) = put(&serde_json::to_vec(&manifest).unwrap());
    let index = json!({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": manifest_digest, "size": manifest_size,
        "annotations": {"org.opencontainers.image.ref.name": tag}}]});
    std::fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    Image { layout: dir.to_path_buf(), blobs }
}

/// The same image as `docker save` writes it: manifest.json, config and layer tars in one tar.
fn docker_archive(image: &Image, layers: &[(Vec<u8>, Compression)], config: Value, tag: &str, out: &Path) {
    let mut archive = tar::Builder::new(std::fs::File::create(out).unwrap());
    let mut add = |name: &str, bytes: &[u8]| {
        let mut h = tar::Header::new_ustar();
        h.set_size(bytes.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        archive.append_data(&mut h, name, bytes).unwrap();
    };
    let diff_ids: Vec<String> = layers.iter().map(|(t, _)| format!("sha256:{}", sha256(t))).collect();
    let config = json!({"architecture": "amd64", "os": "linux", "config": config,
                        "rootfs": {"type": "layers", "diff_ids": diff_ids}});
    let config_bytes = serde_json::to_vec(&config).unwrap();
    let config_name = format!("{}.json", sha256(&config_bytes));
    add(&config_name, &config_bytes);
    let mut names = Vec::new();
    for (i, (tar, _)) in layers.iter().enumerate() {
        let name = format!("layer{i}/layer.tar");
        add(&name, tar);
        names.push(name);
    }
    let manifest = json!([{"Config": config_name, "RepoTags": [format!("localhost/test:{tag}")], "Layers": names}]);
    add("manifest.json", &serde_json::to_vec(&manifest).unwrap());
    archive.finish().unwrap();
    let _ = image;
}

/// A state root and a scratch directory of the test's own, removed (containers first) on drop.
struct Scratch {
    dir: PathBuf,
    root: PathBuf,
}

impl Scratch {
    fn new(name: &str) -> Scratch {
        require_root();
        let dir = std::env::temp_dir().join(format!("berth-img-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch { root: dir.join("state"), dir }
    }

    fn berth(&self) -> Command {
        let mut cmd = Command::new(berth_bin());
        cmd.arg("--root").arg(&self.root).stdin(Stdio::null());
        cmd
    }

    fn run(&self, args: &[&str]) -> Output {
        self.berth().args(args).output().unwrap()
    }

    fn cached_layers(&self) -> Vec<String> {
        let dir = self.root.join("@images/layers/sha256");
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
            .unwrap_or_default();
        names.sort();
        names
    }

    fn assert_cache_clean(&self) {
        assert!(self.cached_layers().is_empty(), "layers left in the cache: {:?}", self.cached_layers());
        let tmp = self.root.join("@images/tmp");
        let left: Vec<_> = std::fs::read_dir(&tmp).map(|d| d.flatten().map(|e| e.path()).collect()).unwrap_or_default();
        assert!(left.is_empty(), "scratch left: {left:?}");
        // Every image container mounts its overlay here inside its own mount namespace; the
        // host's side of it stays empty.
        let mountpoint = self.root.join("@images/rootfs");
        let left: Vec<_> =
            std::fs::read_dir(&mountpoint).map(|d| d.flatten().map(|e| e.path()).collect()).unwrap_or_default();
        assert!(left.is_empty(), "the shared mountpoint is not empty: {left:?}");
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Ok(out) = self.berth().args(["list", "-q"]).output() {
            for id in String::from_utf8_lossy(&out.stdout).lines() {
                let _ = self.run(&["delete", "--force", id]);
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// busybox, then a layer adding files, then one deleting /data/a (whiteout) and replacing
/// /data/dir's contents (opaque); one layer each plain, gzip and zstd.
fn three_layers() -> Vec<(Vec<u8>, Compression)> {
    let base_dir = tempfile_dir("base");
    make_rootfs(&base_dir);
    std::fs::write(base_dir.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/data:/bin/sh\n")
        .unwrap();
    let base = LayerTar::from_dir(&base_dir).finish();
    std::fs::remove_dir_all(&base_dir).unwrap();
    let mut add = LayerTar::new();
    add.dir("data").file("data/a", "a\n").file("data/b", "b\n").dir("data/dir").file("data/dir/old", "old\n");
    add.file("etc/motd", "layer two\n");
    let mut delete = LayerTar::new();
    delete.dir("data").file("data/.wh.a", "").dir("data/dir").file("data/dir/.wh..wh..opq", "");
    delete.file("data/dir/new", "new\n");
    vec![(base, Compression::Gzip), (add.finish(), Compression::Zstd), (delete.finish(), Compression::Plain)]
}

fn tempfile_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "berth-img-src-{name}-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn image_config() -> Value {
    json!({"Cmd": ["sh", "-c", "echo default-cmd"], "Env": ["GREETING=from-image"], "WorkingDir": "/data",
           "User": "app", "Volumes": {"/scratch": {}}, "StopSignal": "SIGINT"})
}

const MERGED: &str =
    "find /data | sort; cat /etc/motd; id -u; pwd; echo $GREETING; grep -c ' /scratch tmpfs' /proc/mounts";
const EXPECTED: &str = "/data\n/data/b\n/data/dir\n/data/dir/new\nlayer two\n1000\n/data\nfrom-image\n1\n";

#[test]
fn layers_merge_exactly_from_layout_and_docker_archive() {
    if berth_only("OCI images (run --image, images, gc, the layer cache)") {
        return;
    }
    let s = Scratch::new("merge");
    let layers = three_layers();
    let image = build_image(&s.dir.join("layout"), &layers, image_config(), "v1");
    let layout_ref = format!("{}:v1", image.layout.display());
    let out = s.run(&["run", "--image", &layout_ref, "--name", "merge-oci", "--", "sh", "-c", MERGED]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), EXPECTED);
    // Without a command the image's Cmd runs.
    let out = s.run(&["run", "--image", &layout_ref]);
    assert_eq!(stdout(&out), "default-cmd\n", "{}", stderr(&out));

    let archive = s.dir.join("saved.tar");
    docker_archive(&image, &layers, image_config(), "v1", &archive);
    let archive_ref = format!("{}:v1", archive.display());
    let out = s.run(&["run", "--image", &archive_ref, "--name", "merge-docker", "--", "sh", "-c", MERGED]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), EXPECTED);
    // Both formats name layers by their uncompressed digest: one cache entry per layer.
    assert_eq!(s.cached_layers().len(), 3);

    // unpack flattens the same tree into an ordinary bundle, whiteouts applied.
    let bundle = s.dir.join("flat");
    let out = s.run(&["unpack", "--image", &layout_ref, bundle.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let rootfs = bundle.join("rootfs");
    assert!(rootfs.join("data/b").exists() && rootfs.join("data/dir/new").exists());
    assert!(!rootfs.join("data/a").exists() && !rootfs.join("data/dir/old").exists());
    let config: Value = serde_json::from_slice(&std::fs::read(bundle.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["process"]["args"], json!(["sh", "-c", "echo default-cmd"]));
    assert_eq!(config["process"]["user"], json!({"uid": 1000, "gid": 1000}));
    assert_eq!(config["annotations"]["org.berth.image"], json!(layout_ref));
    let out = s.run(&["run", "--bundle", bundle.to_str().unwrap(), "flat-run"]);
    assert_eq!(stdout(&out), "default-cmd\n", "{}", stderr(&out));
}

#[test]
fn images_lists_users_and_gc_keeps_what_is_used() {
    if berth_only("OCI images (run --image, images, gc, the layer cache)") {
        return;
    }
    let s = Scratch::new("gc");
    let image = build_image(&s.dir.join("layout"), &three_layers(), image_config(), "latest");
    let reference = image.layout.display().to_string();
    // A detached container keeps its stdio: give it a file, not the pipe output() waits on.
    let log = std::fs::File::create(s.dir.join("user1.log")).unwrap();
    let status = s
        .berth()
        .args(["run", "--detach", "--image", &reference, "--name", "user1", "--", "sleep", "300"])
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .status()
        .unwrap();
    assert!(status.success(), "{}", std::fs::read_to_string(s.dir.join("user1.log")).unwrap());
    let listed: Value = serde_json::from_slice(&s.run(&["images", "--format", "json"]).stdout).unwrap();
    let layers = listed.as_array().unwrap();
    assert_eq!(layers.len(), 3);
    assert!(layers.iter().all(|l| l["containers"] == json!(["user1"])), "{listed}");
    let state: Value = serde_json::from_slice(&s.run(&["state", "user1"]).stdout).unwrap();
    assert_eq!(state["annotations"][STOP_SIGNAL], json!("SIGINT"));
    // No bundle is written for an image: the config's copy in the state directory is it.
    let bundle = std::path::PathBuf::from(state["bundle"].as_str().unwrap());
    assert!(bundle.join("config.json").is_file(), "state's bundle {bundle:?} has no config.json");
    assert_eq!(stdout(&s.run(&["gc"])), "", "gc removed a layer in use");
    assert_eq!(s.cached_layers().len(), 3);
    assert!(s.run(&["delete", "--force", "user1"]).status.success());
    let removed = stdout(&s.run(&["gc"]));
    assert_eq!(removed.lines().count(), 3, "{removed}");
    s.assert_cache_clean();
}

const STOP_SIGNAL: &str = "org.opencontainers.image.stopSignal";

#[test]
fn a_corrupt_blob_is_refused_and_nothing_is_cached() {
    if berth_only("OCI images (run --image, images, gc, the layer cache)") {
        return;
    }
    let s = Scratch::new("corrupt");
    // Byte 4 is in gzip's mtime field: the layer still decompresses, and only its digest
    // tells. A byte in the middle breaks the stream itself.
    for (case, offset) in [("digest", Some(4)), ("stream", None)] {
        let image = build_image(&s.dir.join(case), &three_layers(), image_config(), "latest");
        let blob = &image.blobs[0];
        let mut bytes = std::fs::read(blob).unwrap();
        let at = offset.unwrap_or(bytes.len() / 2);
        bytes[at] ^= 0x55;
        std::fs::write(blob, bytes).unwrap();
        let out = s.run(&["run", "--image", image.layout.to_str().unwrap(), "--name", case, "--", "true"]);
        assert_eq!(out.status.code(), Some(1), "{case}: {}", stderr(&out));
        let err = stderr(&out);
        assert_eq!(err.trim().lines().count(), 1, "{case}: one error line: {err}");
        if case == "digest" {
            assert!(err.contains("corrupt: its blob hashes to"), "{err}");
        }
        assert!(!s.root.join(case).exists());
        s.assert_cache_clean();
    }
}

#[test]
fn hostile_layers_are_refused_with_nothing_left() {
    if berth_only("OCI images (run --image, images, gc, the layer cache)") {
        return;
    }
    let s = Scratch::new("hostile");
    use tar::EntryType::{Block, Char, Link, Regular, Symlink};
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("dotdot", LayerTar::new().raw(b"../escaped", Regular, b"", b"x", 1).0.get_ref().clone(), "\"..\""),
        ("absolute", LayerTar::new().raw(b"/etc/escaped", Regular, b"", b"x", 1).0.get_ref().clone(), "absolute"),
        (
            "symlink-out",
            LayerTar::new().raw(b"usr/evil", Symlink, b"../../../etc/shadow", b"", 0).0.get_ref().clone(),
            "points outside the layer",
        ),
        (
            "through-symlink",
            LayerTar::new()
                .raw(b"etc", Symlink, b"/etc", b"", 0)
                .raw(b"etc/escaped", Regular, b"", b"x", 1)
                .0
                .get_ref()
                .clone(),
            "through a symlink",
        ),
        (
            "hardlink-out",
            LayerTar::new().raw(b"passwd", Link, b"../../etc/passwd", b"", 0).0.get_ref().clone(),
            "\"..\"",
        ),
        ("hardlink-abs", LayerTar::new().raw(b"passwd", Link, b"/etc/passwd", b"", 0).0.get_ref().clone(), "absolute"),
        ("absurd-size", LayerTar::new().raw(b"huge", Regular, b"", b"", 1 << 40).0.get_ref().clone(), "bytes free"),
    ];
    for (name, mut tar, expected) in cases {
        tar.extend_from_slice(&[0u8; 1024]);
        let image = build_image(&s.dir.join(name), &[(tar, Compression::Gzip)], json!({"Cmd": ["true"]}), "latest");
        let out = s.run(&["run", "--image", image.layout.to_str().unwrap(), "--name", name]);
        let err = stderr(&out);
        assert!(!out.status.success(), "{name}: accepted");
        assert!(err.contains(expected), "{name}: {err}");
        assert!(!s.root.join(name).exists(), "{name}: container state left");
        s.assert_cache_clean();
        let host_escape = Path::new("/etc/escaped");
        assert!(!host_escape.exists(), "{name}: wrote to the host");
    }
    // Device nodes need root: unpacking as nobody refuses them and removes its partial bundle.
    let mut tar = LayerTar::new();
    tar.raw(b"dev-null", Char, b"", b"", 0).raw(b"dev-sda", Block, b"", b"", 0);
    let image = build_image(&s.dir.join("devices"), &[(tar.finish(), Compression::Plain)], json!({}), "latest");
    let writable = s.dir.join("for-nobody");
    std::fs::create_dir_all(&writable).unwrap();
    let _ = Command::new("chmod").args(["-R", "a+rwX"]).arg(&s.dir).status();
    let bundle = writable.join("bundle");
    let out = Command::new(berth_bin())
        .args(["unpack", "--image", image.layout.to_str().unwrap(), bundle.to_str().unwrap()])
        .uid(65534)
        .gid(65534)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(stderr(&out).contains("device nodes can only be unpacked by root"), "{}", stderr(&out));
    assert!(!bundle.exists(), "a half-written bundle was left");
}

use std::os::unix::process::CommandExt;

/// Rewrites the first layer descriptor's declared size (and the manifest's digest in the index).
fn declare_layer_size(image: &Image, size: u64) {
    let index_path = image.layout.join("index.json");
    let mut index: Value = serde_json::from_slice(&std::fs::read(&index_path).unwrap()).unwrap();
    let old = index["manifests"][0]["digest"].as_str().unwrap().to_string();
    let blobs = image.layout.join("blobs/sha256");
    let mut manifest: Value = serde_json::from_slice(&std::fs::read(blobs.join(&old[7..])).unwrap()).unwrap();
    manifest["layers"][0]["size"] = json!(size);
    let bytes = serde_json::to_vec(&manifest).unwrap();
    let digest = sha256(&bytes);
    std::fs::write(blobs.join(&digest), &bytes).unwrap();
    index["manifests"][0]["digest"] = json!(format!("sha256:{digest}"));
    index["manifests"][0]["size"] = json!(bytes.len());
    std::fs::write(&index_path, serde_json::to_vec(&index).unwrap()).unwrap();
}

/// A layer blob must be as large as its descriptor declares, and a compressed layer may not
/// unpack to more than a bounded multiple of its size: nothing is left in the cache either way.
#[test]
fn lying_sizes_and_decompression_bombs_are_refused() {
    if berth_only("OCI images (run --image, images, gc, the layer cache)") {
        return;
    }
    let s = Scratch::new("bombs");
    let mut tar = LayerTar::new();
    tar.file("hello", "hi\n");
    let image =
        build_image(&s.dir.join("liar"), &[(tar.finish(), Compression::Gzip)], json!({"Cmd": ["true"]}), "latest");
    declare_layer_size(&image, 1_000_000_000_000_000);
    let out = s.run(&["run", "--image", image.layout.to_str().unwrap(), "--name", "liar"]);
    assert!(!out.status.success(), "a layer declared 10^15 bytes was accepted");
    assert!(stderr(&out).contains("declares 1000000000000000"), "{}", stderr(&out));
    s.assert_cache_clean();
    // 300 MiB of zeros in one file: about 300 KiB once compressed.
    let zeros = vec![0u8; 300 << 20];
    let mut tar = LayerTar::new();
    tar.raw(b"zeros", tar::EntryType::Regular, b"", &zeros, zeros.len() as u64);
    let bomb = tar.finish();
    drop(zeros);
    let image = build_image(&s.dir.join("bomb"), &[(bomb, Compression::Gzip)], json!({"Cmd": ["true"]}), "latest");
    let out = s.run(&["run", "--image", image.layout.to_str().unwrap(), "--name", "bomb"]);
    assert!(!out.status.success(), "a decompression bomb was unpacked");
    assert!(stderr(&out).contains("decompression bomb"), "{}", stderr(&out));
    assert_eq!(stderr(&out).trim().lines().count(), 1, "{}", stderr(&out));
    s.assert_cache_clean();
}

#[test]
fn parallel_runs_unpack_each_layer_once() {
    if berth_only("OCI images (run --image, images, gc, the layer cache)") {
        return;
    }
    let s = Scratch::new("parallel");
    let image = build_image(&s.dir.join("layout"), &three_layers(), image_config(), "latest");
    let reference = image.layout.display().to_string();
    let children: Vec<_> = (0..20)
        .map(|i| {
            s.berth()
                .args(["--debug", "run", "--image", &reference, "--name", &format!("p{i}"), "--", "cat", "/data/b"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut unpacked = 0;
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        assert_eq!(stdout(&out), "b\n");
        unpacked += stderr(&out).matches("unpacked layer").count();
    }
    assert_eq!(unpacked, 3, "20 runs of a 3-layer image unpacked {unpacked} layers");
    assert_eq!(s.cached_layers().len(), 3);
}

#[test]
fn bad_image_references_fail_cleanly() {
    if berth_only("OCI images (run --image, images, gc, the layer cache)") {
        return;
    }
    let s = Scratch::new("badref");
    let out = s.run(&["run", "--image", "/nonexistent/image:v1", "--", "true"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("/nonexistent/image"), "{}", stderr(&out));
    let image = build_image(&s.dir.join("layout"), &three_layers(), json!({}), "v1");
    let out = s.run(&["run", "--image", &format!("{}:v2", image.layout.display())]);
    assert!(stderr(&out).contains("no image tagged \"v2\" (it has: v1)"), "{}", stderr(&out));
    let out = s.run(&["run", "--image", image.layout.to_str().unwrap()]);
    assert!(stderr(&out).contains("no Entrypoint or Cmd"), "{}", stderr(&out));
    assert!(s.run(&["list", "-q"]).stdout.is_empty());
}

#[test]
fn gc_racing_runs_never_pulls_a_layer_from_under_them() {
    if berth_only("OCI images (run --image, images, gc, the layer cache)") {
        return;
    }
    let s = Scratch::new("gc-race");
    let image = build_image(&s.dir.join("layout"), &three_layers(), image_config(), "latest");
    let reference = image.layout.display().to_string();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let collector = {
        let (stop, root) = (stop.clone(), s.root.clone());
        std::thread::spawn(move || {
            let mut rounds = 0;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let out = Command::new(berth_bin()).arg("--root").arg(&root).arg("gc").output().unwrap();
                assert!(out.status.success(), "gc: {}", stderr(&out));
                rounds += 1;
            }
            rounds
        })
    };
    for round in 0..4 {
        let children: Vec<_> = (0..5)
            .map(|i| {
                s.berth()
                    .args(["run", "--image", &reference, "--name", &format!("r{round}-{i}"), "--", "cat", "/data/b"])
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for child in children {
            let out = child.wait_with_output().unwrap();
            assert!(out.status.success(), "{}", stderr(&out));
            assert_eq!(stdout(&out), "b\n");
        }
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    assert!(collector.join().unwrap() > 0);
}

#[test]
fn a_rewritten_image_file_runs_anew_and_each_run_has_its_id_as_hostname() {
    if berth_only("OCI images (run --image, images, gc, the layer cache)") {
        return;
    }
    let s = Scratch::new("rewritten");
    let layers = three_layers();
    let image = build_image(&s.dir.join("layout"), &layers, image_config(), "v1");
    let archive = s.dir.join("saved.tar");
    docker_archive(&image, &layers, image_config(), "v1", &archive);
    let reference = format!("{}:v1", archive.display());
    for name in ["run-a", "run-b"] {
        let out = s.run(&["run", "--image", &reference, "--name", name, "--", "sh", "-c", MERGED]);
        assert!(out.status.success(), "{}", stderr(&out));
        assert_eq!(stdout(&out), EXPECTED);
    }
    for name in ["host-a", "host-b"] {
        let out = s.run(&["run", "--image", &reference, "--name", name, "--", "hostname"]);
        assert_eq!(stdout(&out), format!("{name}\n"), "{}", stderr(&out));
    }
    // Rewritten in place with another Cmd: the new image runs.
    let mut config = image_config();
    config["Cmd"] = json!(["sh", "-c", "echo changed"]);
    docker_archive(&image, &layers, config, "v1", &archive);
    let out = s.run(&["run", "--image", &reference]);
    assert_eq!(stdout(&out), "changed\n", "{}", stderr(&out));
    assert!(s.run(&["gc"]).status.success());
    s.assert_cache_clean();
}
