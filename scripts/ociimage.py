"""A busybox OCI image built from scratch (no registry is reachable here): one gzip layer,
written as a tar holding both an OCI layout (index.json, for containerd and berth) and a
`docker save` manifest.json (for docker and podman). Used by scripts/engine-tests and
scripts/bench."""

import gzip
import hashlib
import io
import json
import shutil
import subprocess
import tarfile

IMAGE = "localhost/berth-busybox:latest"


def busybox_layer():
    busybox = shutil.which("busybox") or "/bin/busybox"
    applets = subprocess.run([busybox, "--list"], capture_output=True, text=True, check=True).stdout.split()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:

        def add(name, kind, data=b"", mode=0o755, target=""):
            info = tarfile.TarInfo(name)
            info.type, info.mode, info.mtime, info.linkname = kind, mode, 0, target
            info.size = len(data) if kind == tarfile.REGTYPE else 0
            tar.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)

        for d in ["bin", "dev", "etc", "proc", "sys", "tmp", "root", "data", "home/tester"]:
            add(d, tarfile.DIRTYPE, mode=0o1777 if d == "tmp" else 0o755)
        add("bin/busybox", tarfile.REGTYPE, open(busybox, "rb").read())
        for a in applets:
            if a != "busybox":
                add(f"bin/{a}", tarfile.SYMTYPE, target="busybox", mode=0o777)
        add("etc/passwd", tarfile.REGTYPE, b"root:x:0:0:root:/root:/bin/sh\ntester:x:1000:1000::/home/tester:/bin/sh\n", 0o644)
        add("etc/group", tarfile.REGTYPE, b"root:x:0:\ntester:x:1000:\n", 0o644)
    return buf.getvalue()


def build_image(out_path):
    def blob(data):
        return "sha256:" + hashlib.sha256(data).hexdigest(), data

    layer_tar = busybox_layer()
    diff_id, _ = blob(layer_tar)
    layer_digest, layer = blob(gzip.compress(layer_tar, mtime=0))
    config = {
        "architecture": "amd64",
        "os": "linux",
        "config": {"Env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"], "Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
    }
    config_digest, config_bytes = blob(json.dumps(config).encode())
    manifest_digest, manifest = blob(
        json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": len(config_bytes)},
                "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": layer_digest, "size": len(layer)}],
            }
        ).encode()
    )
    index = {
        "schemaVersion": 2,
        "manifests": [
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": manifest_digest,
                "size": len(manifest),
                "annotations": {"io.containerd.image.name": IMAGE, "org.opencontainers.image.ref.name": "latest"},
            }
        ],
    }
    path = lambda d: "blobs/sha256/" + d.split(":")[1]
    docker_manifest = [{"Config": path(config_digest), "RepoTags": [IMAGE], "Layers": [path(layer_digest)]}]
    with tarfile.open(out_path, "w") as tar:
        for name, data in [
            ("oci-layout", b'{"imageLayoutVersion":"1.0.0"}'),
            ("index.json", json.dumps(index).encode()),
            ("manifest.json", json.dumps(docker_manifest).encode()),
            (path(config_digest), config_bytes),
            (path(layer_digest), layer),
            (path(manifest_digest), manifest),
        ]:
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))


def wait_until_settled(path):
    """berth remembers how an image file resolved only once the file is two seconds old (a
    younger one could still change within one timestamp tick): wait for that, so the runs that
    follow take the path every later run takes."""
    import os
    import time
    age = time.time() - os.stat(path).st_ctime
    if age < 2.1:
        time.sleep(2.1 - age)
