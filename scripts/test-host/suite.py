#!/usr/bin/env python3
"""The test host's suite: runs inside the booted Debian 12 guest (systemd as PID 1, pure cgroup
v2) that scripts/test-host-vm starts, from the job directory it shares.

    python3 suite.py --runtime NAME=PATH... [--known-failing NAME:TAG]... [--only PATTERN]

For each runtime, in order:
  runtime-tests   the runtime-tests crate's cgroup, lifecycle and exec/update cases (binaries
                  built on the host, in tests/), with the cgroupfs driver and then with the
                  runtime's --systemd-cgroup (the harness's BERTH_TEST_SYSTEMD_CGROUP switch)
  systemd         the systemd driver driven directly: cgroupsPath `slice:prefix:name` gives a
                  transient `<prefix>-<name>.scope` that lives with the container, carries its
                  limits and follows `update`, freezes, and is gone after delete; and the
                  forms docker, podman and containerd's CRI use
  cgroup v2       controllers a container gets when its config asks for none; every section of
                  `events --stats`
  engines         podman, docker and containerd (ctr) in their default systemd configurations
                  on the runtime: run, exec, limits in the scope, pause/resume, remove

Every case prints one line (ok, FAIL, known-fail, not run) and goes to results.tsv; a case
tagged TAG whose runtime is listed as `NAME:TAG` in --known-failing reports a failure as
known-fail. Exits 1 if any case failed.
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from ociimage import IMAGE, build_image  # noqa: E402

CGROUP = "/sys/fs/cgroup"
WORK = "/var/tmp/berth-suite"
TIMEOUT = 120

# runtime-tests that check what berth does differently from runc (its own additions and where
# it does better, as the README says), with the reason; not run for other runtimes.
BERTH_ONLY = {
    "version_and_features": "berth's own --version text and features document",
    "v2_procs_and_freeze_on_the_cgroup2_mount": "calls berth's cgroup library directly, no runtime involved",
    "v2_ebpf_device_filter_is_enforced": "calls berth's cgroup library directly, no runtime involved",
    "unavailable_or_bad_resources_fail_create_and_leave_nothing": "berth refuses resources the host "
    "cannot apply (net_cls on cgroup v2), runc ignores them",
    "an_existing_cgroup_is_joined_but_not_removed": "runc removes a cgroup it did not create",
    "cpu_quota_and_cpuset_in_files_and_stats": "berth's events --stats adds the cpu quota and period",
    "exec_flags_take_effect": "berth's exec flags",
    "exec_exit_codes_and_errors": "runc exits 255, not 127, for a missing program in exec",
    "run_exit_codes": "runc exits 1, not 126/127, when the program cannot be executed",
    "console_socket_receives_the_init_pty": "runc names the pty master /dev/ptmx in the console-socket message, berth /dev/pts/N",
    "create_start_kill_delete": "runc leaves annotations out of state when there are none",
}
# runtime-tests that hit a known gap (a tag --known-failing can name), with the reason.
RT_TAGS = {
    # It reads pids.current from events --stats but asks for no pids limit: it needs every
    # controller enabled for a container whose config sets no limit for it.
    "cpu_quota_and_cpuset_in_files_and_stats": ("controllers-without-resources",),
}
# runtime-tests that cannot run with the systemd driver, with the reason.
NOT_WITH_SYSTEMD = {
    "an_existing_cgroup_is_joined_but_not_removed": "names a cgroupfs path of its own",
    "flags_after_the_id_and_with_equals": "builds its own command line, without the harness's --systemd-cgroup",
    "foreground_run_relays_a_terminal": "builds its own command line, without the harness's --systemd-cgroup",
    "version_and_features": "makes no container",
    "json_log_carries_the_error": "makes no container",
    "v2_procs_and_freeze_on_the_cgroup2_mount": "calls berth's cgroup library directly, no runtime involved",
    "v2_ebpf_device_filter_is_enforced": "calls berth's cgroup library directly, no runtime involved",
}


class Failed(Exception):
    pass


class NotHere(Exception):
    pass


def run(args, *, input=None, env=None, check=True, timeout=TIMEOUT):
    try:
        p = subprocess.run(args, input=input, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise Failed(f"`{' '.join(args)}` did not finish within {timeout}s")
    if check and p.returncode != 0:
        raise Failed(f"`{' '.join(args)}` exited {p.returncode}: {(p.stderr or p.stdout).strip()[-500:]}")
    return p


def expect(cond, what):
    if not cond:
        raise Failed(what)


def wait_for(what, pred, timeout=30.0, interval=0.2):
    deadline = time.time() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.time() > deadline:
            raise Failed(f"{what}: not within {timeout}s")
        time.sleep(interval)


def read(path):
    with open(path) as f:
        return f.read().strip()


# ---------------------------------------------------------------------------------------------
# Results


class Results:
    def __init__(self, path, known, only):
        self.f = open(path, "w")
        self.known = known  # {(runtime, tag)}
        self.only = only
        self.rows = []

    def case(self, runtime, section, name, fn, tags=(), skip=None):
        full = f"{section}: {name}"
        if self.only and self.only not in full:
            return None
        t0 = time.time()
        detail = ""
        if skip:
            status, detail = "not run", skip
        else:
            try:
                fn()
                status = "ok"
            except NotHere as err:
                status, detail = "not run", str(err)
            except Failed as err:
                status, detail = "FAIL", str(err)
            except Exception as err:  # a bug in the suite must not hide the rest
                status, detail = "FAIL", f"{type(err).__name__}: {err}"
        self.add(runtime, section, name, status, time.time() - t0, detail, tags)
        return status

    def add(self, runtime, section, name, status, secs, detail, tags=()):
        listed = [t for t in tags if (runtime, t) in self.known]
        if listed and status == "FAIL":
            status = "known-fail"
        elif listed and status == "ok":
            detail = f"passes although listed as known-failing ({runtime}:{listed[0]})"
        detail = " ".join(detail.split())[:700]
        self.rows.append((runtime, section, name, status, detail))
        self.f.write("\t".join([runtime, section, name, status, f"{secs:.1f}", detail]) + "\n")
        self.f.flush()
        line = f"  {runtime:<6} {section:<16} {name:<58} {status:<10} {secs:6.1f}s"
        print(line + (f"  {detail}" if detail else ""), flush=True)


# ---------------------------------------------------------------------------------------------
# The guest


def scope_of(pid):
    """The cgroup v2 path of a process, e.g. /system.slice/docker-<id>.scope."""
    for line in open(f"/proc/{pid}/cgroup"):
        if line.startswith("0::"):
            return line[3:].strip()
    raise Failed(f"pid {pid} has no cgroup v2 entry")


def unit_props(unit, *props):
    out = run(["systemctl", "show", unit, *[f"--property={p}" for p in props]]).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def unit_gone(unit):
    """A transient unit that stopped is unloaded: systemd no longer knows it."""
    return unit_props(unit, "LoadState", "ActiveState").get("LoadState") == "not-found"


def expected_scope(cgroups_path):
    """Where the systemd driver puts `slice:prefix:name` (runc's reading)."""
    slice_, prefix, name = cgroups_path.split(":")
    path = ""
    if slice_ != "-.slice":
        parts = slice_[: -len(".slice")].split("-")
        for i in range(len(parts)):
            path += "/" + "-".join(parts[: i + 1]) + ".slice"
    unit = name if name.endswith(".slice") else (f"{prefix}-{name}.scope" if prefix else f"{name}.scope")
    return path + "/" + unit, unit


def host_facts():
    """What makes this host the one the suite is for; recorded as cases of their own."""
    facts = {
        "pid1": read("/proc/1/comm"),
        "cgroup2 only": os.path.exists(f"{CGROUP}/cgroup.controllers") and not os.path.isdir(f"{CGROUP}/memory"),
        "controllers": read(f"{CGROUP}/cgroup.controllers"),
        "kernel": os.uname().release,
    }
    return facts


# ---------------------------------------------------------------------------------------------
# runtime-tests


def run_test_binary(res, rt_name, rt_path, binary, mode):
    """Runs one runtime-tests binary and records each of its tests."""
    suite = os.path.basename(binary)
    systemd = mode == "systemd"
    section = "rt-systemd" if systemd else "rt-cgroupfs"
    tags = ("systemd-driver",) if systemd else ()
    listed = run([binary, "--list", "--format", "terse"]).stdout
    names = [line.split(": ")[0] for line in listed.splitlines() if line.endswith(": test")]
    skips = {}
    for name in names:
        if res.only and res.only not in f"{section}: {suite}::{name}":
            skips[name] = None  # filtered out, not reported
        elif rt_name != "berth" and name in BERTH_ONLY:
            skips[name] = f"berth-only: {BERTH_ONLY[name]}"
        elif systemd and name in NOT_WITH_SYSTEMD:
            skips[name] = f"not with the systemd driver: {NOT_WITH_SYSTEMD[name]}"
    for name, why in skips.items():
        if why:
            res.add(rt_name, section, f"{suite}::{name}", "not run", 0, why, tags)
    todo = [n for n in names if n not in skips]
    if not todo:
        return
    # Tests that return early because this host lacks something say so here (the harness's
    # skip()); they are reported as "not run" with the reason, not as passes.
    skipped_log = f"{WORK}/{suite}-{mode}.skipped"
    if os.path.exists(skipped_log):
        os.remove(skipped_log)
    env = dict(os.environ, BERTH_BIN=rt_path, RUST_BACKTRACE="0", TMPDIR=f"{WORK}/tmp", RUNTIME_TESTS_SKIPPED=skipped_log)
    env.pop("BERTH_TEST_SYSTEMD_CGROUP", None)
    if systemd:
        env["BERTH_TEST_SYSTEMD_CGROUP"] = "1"
    args = [binary, "--exact", "--test-threads", "2", *todo]
    t0 = time.time()
    # Output to a file and a session of its own: on a time-out the whole group goes, and no
    # container left holding a pipe can keep the suite waiting.
    log = f"{WORK}/{suite}-{mode}.log"
    with open(log, "w") as f:
        p = subprocess.Popen(args, env=env, stdout=f, stderr=subprocess.STDOUT, cwd=WORK, start_new_session=True)
        try:
            p.wait(timeout=600)
            timed_out = False
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, 9)
            p.wait()
            timed_out = True
    out = open(log, errors="replace").read()
    if timed_out:
        out += "\n(timed out after 600s)"
    secs = time.time() - t0
    outcome = dict(re.findall(r"^test (\S+) \.\.\. (ok|FAILED|ignored)$", out, re.M))
    details = {}
    for block in re.split(r"^---- ", out, flags=re.M)[1:]:
        head, _, body = block.partition("\n")
        name = head.split(" ")[0]
        lines = [l for l in body.splitlines() if l.strip() and not l.startswith("note:")]
        details[name] = " | ".join(lines[:6])
    per_test = secs / max(len(todo), 1)
    skips = {}
    if os.path.exists(skipped_log):
        for line in open(skipped_log, errors="replace"):
            test, _, why = line.strip().partition(": ")
            skips[test.split("::")[-1]] = why
    for name in todo:
        status = {"ok": "ok", "FAILED": "FAIL", "ignored": "not run"}.get(outcome.get(name), "FAIL")
        detail = details.get(name, "") if status == "FAIL" else ("#[ignore]" if status == "not run" else "")
        if status == "ok" and name in skips:
            status, detail = "not run", f"skipped: {skips[name]}"
        if name not in outcome:
            detail = "did not finish: " + out.strip().splitlines()[-1][-300:] if out.strip() else "no output"
        res.add(rt_name, section, f"{suite}::{name}", status, per_test, detail, tags + RT_TAGS.get(name, ()))


# ---------------------------------------------------------------------------------------------
# Bundles driven directly


def make_rootfs(path):
    os.makedirs(f"{path}/bin", exist_ok=True)
    shutil.copy("/bin/busybox", f"{path}/bin/busybox")
    for applet in run(["/bin/busybox", "--list"]).stdout.split():
        if applet != "busybox" and not os.path.lexists(f"{path}/bin/{applet}"):
            os.symlink("busybox", f"{path}/bin/{applet}")
    for d in ["proc", "sys", "dev", "etc", "tmp", "root"]:
        os.makedirs(f"{path}/{d}", exist_ok=True)


class Container:
    """One bundle run by the runtime directly, with the driver chosen by `systemd`;
    `cgroups_path` may hold {id}."""

    counter = 0

    def __init__(self, rt, systemd, cgroups_path=None, resources=None, name="c"):
        Container.counter += 1
        self.rt, self.systemd = rt, systemd
        self.id = f"{name}-{os.getpid()}-{Container.counter}"
        self.dir = f"{WORK}/bundles/{self.id}"
        self.root = f"{WORK}/state"
        os.makedirs(self.dir)
        rootfs = f"{WORK}/rootfs"
        if not os.path.exists(f"{rootfs}/bin/sh"):
            make_rootfs(rootfs)
        run([rt, "spec", "--bundle", self.dir])
        with open(f"{self.dir}/config.json") as f:
            config = json.load(f)
        config["root"] = {"path": rootfs, "readonly": True}
        config["process"]["terminal"] = False
        config["process"]["args"] = ["sleep", "600"]
        self.cgroups_path = cgroups_path.format(id=self.id) if cgroups_path else None
        if self.cgroups_path:
            config["linux"]["cgroupsPath"] = self.cgroups_path
        if resources:
            config["linux"]["resources"] = resources
        with open(f"{self.dir}/config.json", "w") as f:
            json.dump(config, f)

    def cmd(self, *args, **kw):
        flags = ["--systemd-cgroup"] if self.systemd else []
        return run([self.rt, *flags, "--root", self.root, *args], **kw)

    def start(self):
        # create's stdio are files: the container keeps them open.
        with open(f"{self.dir}/out", "w") as out:
            p = subprocess.run(
                [self.rt, *(["--systemd-cgroup"] if self.systemd else []), "--root", self.root, "create", "--bundle", self.dir, self.id],
                stdin=subprocess.DEVNULL, stdout=out, stderr=out, timeout=TIMEOUT,
            )
        if p.returncode != 0:
            raise Failed(f"create exited {p.returncode}: {open(f'{self.dir}/out').read().strip()[-500:]}")
        self.cmd("start", self.id)
        return self

    def state(self):
        return json.loads(self.cmd("state", self.id).stdout)

    def pid(self):
        return self.state()["pid"]

    def cgroup(self):
        return CGROUP + scope_of(self.pid())

    def delete(self):
        self.cmd("delete", "--force", self.id, check=False)
        shutil.rmtree(self.dir, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# The systemd driver, directly


def systemd_cases(res, rt_name, rt):
    section = "systemd"
    tags = ("systemd-driver",)
    limits = {"memory": {"limit": 64 << 20}, "pids": {"limit": 32}, "cpu": {"quota": 50000, "period": 100000}}
    c = Container(rt, True, cgroups_path="system.slice:berth:{id}", resources=limits, name="sd")
    path, unit = expected_scope(c.cgroups_path)
    started = {}

    def lives():
        try:
            c.start()
        except Failed as err:
            started["error"] = str(err)
            raise
        started["ok"] = True
        props = unit_props(unit, "ActiveState", "ControlGroup", "Delegate")
        expect(props.get("ActiveState") == "active", f"{unit}: {props}")
        expect(props.get("ControlGroup") == path, f"{unit} is at {props.get('ControlGroup')}, expected {path}")
        expect(scope_of(c.pid()) == path, f"the init is in {scope_of(c.pid())}, expected {path}")

    def needs_container():
        if "ok" not in started:
            raise Failed(f"no container: {started.get('error', 'create was not reached')}")

    def limits_are(memory_mib, pids, quota_us, when):
        """The unit's properties and the cgroup's files both hold these limits (cpu period 100 ms)."""
        props = unit_props(unit, "MemoryMax", "TasksMax", "CPUQuotaPerSecUSec")
        want = {"MemoryMax": str(memory_mib << 20), "TasksMax": str(pids),
                "CPUQuotaPerSecUSec": f"{quota_us * 10 // 1000}ms"}
        expect(props == want, f"{when}: {unit} properties {props}, expected {want}")
        files = {f: read(f"{CGROUP}{path}/{f}") for f in ["memory.max", "pids.max", "cpu.max"]}
        want_files = {"memory.max": str(memory_mib << 20), "pids.max": str(pids), "cpu.max": f"{quota_us} 100000"}
        expect(files == want_files, f"{when}: cgroup files {files}, expected {want_files}")

    def carries_limits():
        needs_container()
        limits_are(64, 32, 50000, "after create")

    def update_changes_them():
        needs_container()
        c.cmd("update", "--memory", "96m", "--pids-limit", "40", "--cpu-quota", "25000", "--cpu-period", "100000", c.id)
        limits_are(96, 40, 25000, "after update")

    def pause_resume():
        needs_container()
        c.cmd("pause", c.id)
        expect(c.state()["status"] == "paused", f"status after pause: {c.state()['status']}")
        expect("frozen 1" in read(f"{CGROUP}{path}/cgroup.events"), "cgroup.events does not say frozen")
        c.cmd("resume", c.id)
        expect(c.state()["status"] == "running", f"status after resume: {c.state()['status']}")
        expect("frozen 0" in read(f"{CGROUP}{path}/cgroup.events"), "still frozen after resume")

    def exec_joins():
        needs_container()
        out = c.cmd("exec", c.id, "cat", "/proc/self/cgroup").stdout.strip()
        # With a cgroup namespace the exec'd process sees its own cgroup as /.
        host_view = [scope_of(p) for p in read(f"{CGROUP}{path}/cgroup.procs").split()]
        expect(out in ("0::/", f"0::{path}"), f"exec'd process reports {out!r}")
        expect(all(h == path for h in host_view), f"processes of the scope: {host_view}")

    def gone_after_delete():
        needs_container()
        c.cmd("kill", c.id, "KILL")
        wait_for("stopped", lambda: c.state()["status"] == "stopped", timeout=20)
        c.cmd("delete", c.id)
        wait_for(f"{unit} unloaded", lambda: unit_gone(unit), timeout=10)
        expect(not os.path.exists(f"{CGROUP}{path}"), f"{path} is still there")

    try:
        res.case(rt_name, section, "a scope lives with the container", lives, tags)
        res.case(rt_name, section, "the scope carries MemoryMax/TasksMax/CPUQuota", carries_limits, tags)
        res.case(rt_name, section, "update changes the scope's limits", update_changes_them, tags)
        res.case(rt_name, section, "exec joins the scope", exec_joins, tags)
        res.case(rt_name, section, "pause / resume freeze the scope", pause_resume, tags)
        res.case(rt_name, section, "the scope is gone after delete", gone_after_delete, tags)
    finally:
        c.delete()

    # The forms the engines pass (engine-contract.md): the scope lands where runc puts it.
    pod = uuid.uuid4().hex[:12]
    forms = [
        ("docker", "system.slice:docker:{id}"),
        ("podman", "machine.slice:libpod:{id}"),
        ("containerd CRI", f"kubepods-besteffort-pod{pod}.slice:cri-containerd:{{id}}"),
    ]
    for label, form in forms:

        def one(form=form):
            c = Container(rt, True, cgroups_path=form, name="form")
            try:
                cgpath = c.cgroups_path
                path, unit = expected_scope(cgpath)
                c.start()
                expect(scope_of(c.pid()) == path, f"{cgpath}: the init is in {scope_of(c.pid())}, expected {path}")
                expect(unit_props(unit, "ActiveState").get("ActiveState") == "active", f"{unit} is not active")
                c.cmd("delete", "--force", c.id)
                wait_for(f"{unit} unloaded", lambda: unit_gone(unit), timeout=10)
            finally:
                c.delete()

        res.case(rt_name, section, f"{label}'s form {form.split(':')[0].split('-pod')[0]}:{form.split(':')[1]}:<id>", one, tags)


# ---------------------------------------------------------------------------------------------
# cgroup v2: controllers and stats of a container that asks for no resources


def v2_cases(res, rt_name, rt):
    for systemd in (False, True):
        section = "v2-systemd" if systemd else "v2-cgroupfs"
        tags = ("systemd-driver",) if systemd else ()

        def container(systemd=systemd):
            path = "system.slice:berth:{id}" if systemd else "/berth-suite/{id}"
            return Container(rt, systemd, cgroups_path=path, name="v2")

        def controllers():
            c = container()
            try:
                c.start()
                offered = set(read(f"{CGROUP}/cgroup.controllers").split())
                wanted = {"cpu", "io", "memory", "pids"} & offered
                have = set(read(f"{c.cgroup()}/cgroup.controllers").split())
                expect(wanted <= have, f"the container's cgroup has {sorted(have)}; missing {sorted(wanted - have)}")
                for f in ["memory.current", "pids.current", "cpu.stat", "io.stat"]:
                    expect(os.path.exists(f"{c.cgroup()}/{f}"), f"no {f} in the container's cgroup")
            finally:
                c.delete()
                if not systemd:
                    _rmdir_tree(f"{CGROUP}/berth-suite")

        def stats():
            c = container()
            try:
                c.start()
                out = c.cmd("events", "--stats", c.id).stdout
                ev = json.loads(out)
                expect(ev.get("type") == "stats", f"type {ev.get('type')!r}")
                data = ev.get("data", {})
                missing = [k for k in ["cpu", "memory", "pids", "blkio", "hugetlb"] if k not in data]
                expect(not missing, f"sections missing: {missing} (has {sorted(data)})")
                expect((data["pids"].get("current") or 0) >= 1, f"pids: {data['pids']}")
                expect((data["memory"].get("usage", {}).get("usage") or 0) > 0, f"memory usage: {data['memory'].get('usage')}")
                expect((data["cpu"].get("usage", {}).get("total") or 0) > 0, f"cpu usage: {data['cpu'].get('usage')}")
            finally:
                c.delete()
                if not systemd:
                    _rmdir_tree(f"{CGROUP}/berth-suite")

        res.case(rt_name, section, "controllers enabled without resources", controllers, tags + ("controllers-without-resources",))
        res.case(rt_name, section, "events --stats prints every section", stats, tags + ("stats-every-section",))


def _rmdir_tree(top):
    if os.path.isdir(top):
        for dirpath, _, _ in sorted(os.walk(top), key=lambda w: len(w[0]), reverse=True):
            try:
                os.rmdir(dirpath)
            except OSError:
                pass


# ---------------------------------------------------------------------------------------------
# Engines in their default systemd configurations


class Engine:
    name = ""

    def __init__(self, rt_name, rt):
        self.rt_name, self.rt = rt_name, rt
        self.n = 0

    def new_name(self):
        self.n += 1
        return f"hv-{self.name[:3]}-{self.rt_name}-{self.n}"


class Podman(Engine):
    """podman as Debian installs it: cgroup_manager systemd (its default under systemd), the
    runtime given with --runtime."""

    name = "podman"

    def c(self, *args, **kw):
        return run(["podman", "--runtime", self.rt, *args], **kw)

    def setup(self, archive):
        info = self.c("info", "--format", "{{.Host.CgroupManager}} {{.Host.CgroupsVersion}}").stdout.split()
        expect(info == ["systemd", "v2"], f"podman's cgroup manager and version: {info}")
        if self.c("image", "exists", IMAGE, check=False).returncode != 0:
            self.c("load", "-i", archive)

    def run_rm(self, cmd, **kw):
        return self.c("run", "--rm", "--network", "none", IMAGE, *cmd, **kw)

    def detached(self, limits=None):
        name = self.new_name()
        opts = ["--memory", str(limits[0]), "--pids-limit", str(limits[1])] if limits else []
        self.c("run", "-d", "--network", "none", "--name", name, *opts, IMAGE, "sleep", "600")
        return name

    def info(self, name):
        """(full id, init pid, status)"""
        out = self.c("inspect", "--format", "{{.Id}} {{.State.Pid}} {{.State.Status}}", name).stdout.split()
        return out[0], int(out[1]), out[2]

    def scope(self, full_id):
        return expected_scope(f"machine.slice:libpod:{full_id}")

    def exec_(self, name, *cmd, **kw):
        return self.c("exec", name, *cmd, **kw)

    def pause(self, name):
        self.c("pause", name)

    def resume(self, name):
        self.c("unpause", name)

    def remove(self, name):
        self.c("rm", "-f", "--time", "0", name)

    def exists(self, name):
        return self.c("container", "exists", name, check=False).returncode == 0

    def teardown(self):
        ids = self.c("ps", "-aq", check=False).stdout.split()
        if ids:
            self.c("rm", "-f", "--time", "0", *ids, check=False)


class Docker(Podman):
    """docker.io as Debian installs it (cgroup driver systemd, its default on cgroup v2), with
    the runtime registered in daemon.json and made the default runtime."""

    name = "docker"

    def c(self, *args, **kw):
        return run(["docker", *args], **kw)

    def setup(self, archive):
        conf = {"default-runtime": self.rt_name}
        if self.rt_name != "runc":  # "runc" is docker's built-in name and cannot be added again
            conf["runtimes"] = {self.rt_name: {"path": self.rt}}
        os.makedirs("/etc/docker", exist_ok=True)
        with open("/etc/docker/daemon.json", "w") as f:
            json.dump(conf, f)
        run(["systemctl", "restart", "docker.service"], timeout=240)
        wait_for("docker answering", lambda: run(["docker", "info"], check=False).returncode == 0, timeout=60)
        info = self.c("info", "--format", "{{.CgroupDriver}} {{.CgroupVersion}} {{.DefaultRuntime}}").stdout.split()
        expect(info == ["systemd", "2", self.rt_name], f"docker's cgroup driver, version, default runtime: {info}")
        if self.c("image", "inspect", IMAGE, check=False).returncode != 0:
            self.c("load", "-i", archive)

    def scope(self, full_id):
        return expected_scope(f"system.slice:docker:{full_id}")

    def remove(self, name):
        self.c("rm", "-f", name)

    def exists(self, name):
        return self.c("container", "inspect", name, check=False).returncode == 0

    def teardown(self):
        ids = self.c("ps", "-aq", check=False).stdout.split()
        if ids:
            self.c("rm", "-f", *ids, check=False)


class Containerd(Engine):
    """containerd's own service, driven with ctr: the runc shim with the options a CRI config
    sets (SystemdCgroup = true, BinaryName = the runtime; ctr's --runc-systemd-cgroup and
    --runc-binary fill the same Options) and the cgroupsPath form CRI gives a pod's container."""

    name = "containerd"
    ns = "berth-suite"

    def __init__(self, rt_name, rt):
        super().__init__(rt_name, rt)
        self.pod = uuid.uuid4().hex[:12]

    def ctr(self, *args, **kw):
        return run(["ctr", "--namespace", self.ns, *args], **kw)

    def setup(self, archive):
        run(["systemctl", "start", "containerd.service"], timeout=120)
        wait_for("containerd answering", lambda: run(["ctr", "version"], check=False).returncode == 0, timeout=60)
        if IMAGE not in self.ctr("images", "ls", "-q").stdout.split():
            self.ctr("images", "import", archive)

    def cgroups_path(self, name):
        return f"kubepods-besteffort-pod{self.pod}.slice:cri-containerd:{name}"

    def flags(self, name):
        return ["--runc-binary", self.rt, "--runc-systemd-cgroup", "--cgroup", self.cgroups_path(name)]

    def run_rm(self, cmd, **kw):
        name = self.new_name()
        return self.ctr("run", "--rm", *self.flags(name), IMAGE, name, *cmd, **kw)

    def detached(self, limits=None):
        name = self.new_name()
        if not limits:
            self.ctr("run", "-d", *self.flags(name), IMAGE, name, "sleep", "600")
            return name
        # ctr has no pids flag: a whole spec, as CRI hands the shim one.
        spec = json.loads(self.ctr("oci", "spec").stdout)
        spec["process"]["args"] = ["sleep", "600"]
        spec["process"]["env"] = ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"]
        spec["root"] = {"path": self.rootfs(), "readonly": True}
        spec["linux"]["cgroupsPath"] = self.cgroups_path(name)
        spec["linux"].setdefault("resources", {}).update(memory={"limit": limits[0]}, pids={"limit": limits[1]})
        path = f"{WORK}/{name}.json"
        with open(path, "w") as f:
            json.dump(spec, f)
        self.ctr("run", "-d", *self.flags(name), "--config", path, name)
        return name

    def rootfs(self):
        path = f"{WORK}/ctr-rootfs"
        if not os.path.exists(f"{path}/bin/sh"):
            make_rootfs(path)
        return path

    def info(self, name):
        for line in self.ctr("task", "ls").stdout.splitlines()[1:]:
            f = line.split()
            if f[0] == name:
                return name, int(f[1]), f[2].lower()
        raise Failed(f"task {name} is not listed")

    def scope(self, name):
        return expected_scope(self.cgroups_path(name))

    def exec_(self, name, *cmd, **kw):
        self.n += 1
        return self.ctr("task", "exec", "--exec-id", f"x{self.n}", name, *cmd, **kw)

    def pause(self, name):
        self.ctr("task", "pause", name)

    def resume(self, name):
        self.ctr("task", "resume", name)

    def remove(self, name):
        self.ctr("task", "kill", "--signal", "SIGKILL", name, check=False)
        for _ in range(100):
            if self.ctr("task", "delete", name, check=False).returncode == 0:
                break
            if name not in [l.split()[0] for l in self.ctr("task", "ls", check=False).stdout.splitlines()[1:]]:
                break
            time.sleep(0.2)
        self.ctr("container", "delete", name)

    def exists(self, name):
        return name in self.ctr("container", "ls", "-q").stdout.split()

    def teardown(self):
        for name in self.ctr("container", "ls", "-q", check=False).stdout.split():
            try:
                self.remove(name)
            except Failed:
                pass


def engine_cases(res, engine, archive):
    """One engine's scenarios. Engine commands take seconds each under emulation, so after the
    exit codes one container (with memory and pids limits) serves exec, the limits, pause and
    resume, and removal, reported as separate cases."""
    rt_name, section, tags = engine.rt_name, engine.name, ("systemd-driver",)
    ready, box = {}, {}

    def setup():  # the engine's own start-up: no container, so no tag
        engine.setup(archive)
        ready["ok"] = True

    def needs_engine():
        if "ok" not in ready:
            raise Failed("the engine did not start (see its setup case)")

    def needs_container():
        needs_engine()
        if "name" not in box:
            raise Failed(f"no container: {box.get('error', 'not reached')}")

    def exit_codes():
        needs_engine()
        for code, cmd in [(0, ["true"]), (3, ["sh", "-c", "exit 3"]), (137, ["sh", "-c", "sh -c 'kill -9 $$'; exit $?"])]:
            rc = engine.run_rm(cmd, check=False).returncode
            expect(rc == code, f"{cmd} exited {rc}, expected {code}")

    def limits():
        needs_engine()
        try:
            name = engine.detached((64 << 20, 32))
        except Failed as err:
            box["error"] = str(err)
            raise
        box["name"] = name
        full_id, pid, _ = engine.info(name)
        box["path"], box["unit"] = engine.scope(full_id)
        path, unit = box["path"], box["unit"]
        expect(scope_of(pid) == path, f"the container's init is in {scope_of(pid)}, expected {path}")
        files = [read(f"{CGROUP}{path}/memory.max"), read(f"{CGROUP}{path}/pids.max")]
        expect(files == [str(64 << 20), "32"], f"memory.max, pids.max: {files}")
        props = unit_props(unit, "MemoryMax", "TasksMax")
        expect(props == {"MemoryMax": str(64 << 20), "TasksMax": "32"}, f"{unit}: {props}")

    def exec_():
        needs_container()
        out = engine.exec_(box["name"], "sh", "-c", "echo exec-output; cat /proc/1/cmdline").stdout
        expect("exec-output" in out and "sleep" in out, f"exec printed {out!r}")
        rc = engine.exec_(box["name"], "sh", "-c", "exit 5", check=False).returncode
        expect(rc == 5, f"exec exit code {rc}, expected 5")

    def pause_resume():
        needs_container()
        name, events = box["name"], f"{CGROUP}{box['path']}/cgroup.events"
        engine.pause(name)
        expect(engine.info(name)[2] == "paused", f"status after pause: {engine.info(name)[2]}")
        expect("frozen 1" in read(events), "the scope is not frozen")
        engine.resume(name)
        expect(engine.info(name)[2] == "running", f"status after resume: {engine.info(name)[2]}")
        expect("frozen 0" in read(events), "the scope is still frozen")
        expect("ok" in engine.exec_(name, "echo", "ok").stdout, "exec after resume")

    def remove():
        needs_container()
        name, path, unit = box.pop("name"), box["path"], box["unit"]
        engine.remove(name)
        expect(not engine.exists(name), "the container is still listed after removal")
        wait_for(f"{unit} unloaded", lambda: unit_gone(unit), timeout=15)
        expect(not os.path.exists(f"{CGROUP}{path}"), f"{path} is still there")

    res.case(rt_name, section, "starts in its default systemd configuration", setup)
    res.case(rt_name, section, "run: exit codes 0, 3, 137", exit_codes, tags)
    res.case(rt_name, section, "memory/pids limits in the scope", limits, tags)
    res.case(rt_name, section, "exec: output and exit code", exec_, tags)
    res.case(rt_name, section, "pause / resume freeze the scope", pause_resume, tags)
    res.case(rt_name, section, "remove: the scope is gone", remove, tags)
    try:
        if "name" in box:
            engine.remove(box["name"])
        engine.teardown()
    except Exception as err:  # noqa: BLE001 - cleanup must not hide the results
        print(f"  {engine.name}: cleanup: {err}", flush=True)


# ---------------------------------------------------------------------------------------------


def install_runtime(name, path):
    """A runtime from the share is copied into the guest (engines exec it often; 9p is slow)."""
    if path.startswith("/usr/") or path.startswith("/bin/") or path.startswith("/sbin/"):
        return path
    dest = f"/usr/local/bin/{name}"
    shutil.copy(os.path.join(HERE, path), dest)
    os.chmod(dest, 0o755)
    return dest


def cleanup_runtime(rt):
    state = f"{WORK}/state"
    if os.path.isdir(state):
        for cid in run([rt, "--root", state, "list", "-q"], check=False).stdout.split():
            run([rt, "--root", state, "delete", "--force", cid], check=False)
            run([rt, "--systemd-cgroup", "--root", state, "delete", "--force", cid], check=False)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runtime", action="append", required=True, help="NAME=PATH (PATH relative to the share or absolute)")
    ap.add_argument("--known-failing", action="append", default=[], help="NAME:TAG")
    ap.add_argument("--only", default="")
    args = ap.parse_args()
    known = {tuple(k.split(":", 1)) for k in args.known_failing}
    res = Results(os.path.join(HERE, "results.tsv"), known, args.only)
    shutil.rmtree(WORK, ignore_errors=True)
    os.makedirs(f"{WORK}/tmp")
    # /dev/net/tun is in every runtime's default device list; without the module runc's
    # systemd driver warns on stderr about it, which stdio tests then see.
    run(["modprobe", "tun"], check=False)
    archive = f"{WORK}/busybox-image.tar"
    build_image(archive)

    facts = host_facts()
    print(f"== guest: {facts}", flush=True)

    def host():
        expect(facts["pid1"] == "systemd", f"PID 1 is {facts['pid1']}")
        expect(facts["cgroup2 only"], "the host is not pure cgroup v2")
        for c in ["cpu", "memory", "pids", "io"]:
            expect(c in facts["controllers"].split(), f"cgroup2 offers no {c}: {facts['controllers']}")

    res.case("-", "host", "systemd is PID 1, pure cgroup v2 with cpu/memory/pids/io", host)
    tests = sorted(os.path.join(HERE, "tests", t) for t in os.listdir(os.path.join(HERE, "tests")))
    for spec in args.runtime:
        name, _, path = spec.partition("=")
        rt = install_runtime(name, path)
        version = run([rt, "--version"], check=False).stdout.strip().splitlines()
        print(f"== runtime {name}: {rt} ({version[0] if version else '?'})", flush=True)
        t0 = time.time()
        for mode in ("cgroupfs", "systemd"):
            for binary in tests:
                run_test_binary(res, name, rt, binary, mode)
        systemd_cases(res, name, rt)
        v2_cases(res, name, rt)
        for cls in (Podman, Docker, Containerd):
            engine_cases(res, cls(name, rt), archive)
        cleanup_runtime(rt)
        print(f"== runtime {name}: {time.time() - t0:.0f}s", flush=True)

    counts = {}
    for row in res.rows:
        counts[row[3]] = counts.get(row[3], 0) + 1
    ok, failed = counts.get("ok", 0), counts.get("FAIL", 0)
    print(f"suite: {ok} passed, {failed} failed, {counts.get('known-fail', 0)} known-fail, {counts.get('not run', 0)} not run", flush=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
