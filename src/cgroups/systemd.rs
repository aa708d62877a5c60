//! The systemd cgroup driver (`--systemd-cgroup`): the container's cgroup is a transient scope
//! unit that systemd creates and owns, started over D-Bus with `Delegate=yes` and the
//! container's limits as unit properties (so systemd keeps them when it reapplies a unit's
//! settings); the files of the delegated cgroup then get the rest through berth's cgroupfs
//! code, as runc's systemd driver does. Only reached with `--systemd-cgroup` (or for a
//! container created with it): the cgroupfs path never loads any of this.
//!
//! `linux.cgroupsPath` is `slice:prefix:name` (runc's reading): the unit is
//! `<prefix>-<name>.scope` (`<name>.scope` without a prefix) in `slice`, whose name nests by
//! dashes (`a-b.slice` lives in `a.slice`); an empty path, or an empty slice, is
//! `system.slice`, and an empty path names the container `berth-<id>.scope` (runc: `runc-<id>`).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use oci_spec::runtime::LinuxResources;

use super::dbus::{self, Conn, Value};
use super::{given, v2};
use crate::error::{Error, Result};

const DEST: &str = "org.freedesktop.systemd1";
const MANAGER_PATH: &str = "/org/freedesktop/systemd1";
const MANAGER: &str = "org.freedesktop.systemd1.Manager";
/// How long systemd may take to start or stop a unit (runc waits 30 s as well); software
/// emulation on a busy host is slow.
const JOB_TIMEOUT: Duration = Duration::from_secs(30);

/// The container's unit: its name and its cgroup relative to the cgroup2 root.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unit {
    pub name: String,
    /// The slice it lives in ("" for the root slice).
    pub slice: String,
    pub cgroup: PathBuf,
}

impl Unit {
    /// A scope holds processes (berth, then the init); a slice holds only cgroups.
    pub fn is_scope(&self) -> bool {
        self.name.ends_with(".scope")
    }
}

/// Reads `linux.cgroupsPath` as the systemd driver does.
pub fn unit_for(cgroups_path: Option<&str>, id: &str) -> Result<Unit> {
    let wanted = cgroups_path.unwrap_or("");
    let (slice, prefix, name) = if wanted.is_empty() {
        ("", "berth", id)
    } else {
        let parts: Vec<&str> = wanted.split(':').collect();
        let [slice, prefix, name] = parts[..] else {
            return Err(Error::InvalidConfig(format!(
                "cgroupsPath {wanted:?}: the systemd cgroup driver expects \"slice:prefix:name\""
            )));
        };
        (slice, prefix, name)
    };
    let slice = if slice.is_empty() { "system.slice" } else { slice };
    let parent = expand_slice(slice)?;
    if name.is_empty() || name.contains('/') || prefix.contains('/') {
        return Err(Error::InvalidConfig(format!(
            "cgroupsPath {wanted:?}: a unit name is one non-empty path component"
        )));
    }
    let unit = if name.ends_with(".slice") {
        name.to_string()
    } else if prefix.is_empty() {
        format!("{name}.scope")
    } else {
        format!("{prefix}-{name}.scope")
    };
    if !valid_unit_name(&unit) {
        return Err(Error::InvalidConfig(format!("cgroupsPath {wanted:?}: {unit:?} is not a valid systemd unit name")));
    }
    let slice = if slice == "-.slice" { String::new() } else { slice.to_string() };
    Ok(Unit { cgroup: Path::new(&parent).join(&unit), name: unit, slice })
}

/// `a-b-c.slice` -> `/a.slice/a-b.slice/a-b-c.slice`; `-.slice` (the root slice) -> `/`.
pub fn expand_slice(slice: &str) -> Result<String> {
    let bad = || Error::InvalidConfig(format!("{slice:?} is not a valid systemd slice name"));
    let stem = slice.strip_suffix(".slice").ok_or_else(bad)?;
    if stem == "-" {
        return Ok("/".into());
    }
    if stem.is_empty() || stem.contains('/') || stem.starts_with('-') || stem.ends_with('-') || stem.contains("--") {
        return Err(bad());
    }
    let mut path = String::new();
    let mut so_far = String::new();
    for part in stem.split('-') {
        if !so_far.is_empty() {
            so_far.push('-');
        }
        so_far.push_str(part);
        path.push('/');
        path.push_str(&so_far);
        path.push_str(".slice");
    }
    Ok(path)
}

/// systemd's unit name characters: ASCII letters, digits, ":-_.\\", at most 255 bytes.
fn valid_unit_name(name: &str) -> bool {
    name.len() <= 255
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b":-_.\\@".contains(&b))
        && !name.starts_with('.')
}

/// systemd's manager: its private socket (peer to peer, only root may connect), else the
/// system bus.
fn connect(deadline: Instant) -> Result<Conn> {
    match Conn::connect(dbus::SYSTEMD_PRIVATE, false, deadline) {
        Ok(c) => Ok(c),
        Err(private) => Conn::connect(dbus::SYSTEM_BUS, true, deadline)
            .map_err(|bus| Error::Systemd(format!("cannot reach systemd (is it PID 1?): {private}; {bus}"))),
    }
}

fn call(
    conn: &mut Conn,
    deadline: Instant,
    what: &str,
    member: &str,
    args: &[Value],
) -> std::result::Result<Vec<Value>, (String, String)> {
    conn.call(deadline, DEST, MANAGER_PATH, MANAGER, member, args).map_err(|(name, msg)| {
        let msg = if name.is_empty() { msg } else { format!("{name}: {msg}") };
        (name, format!("{what}: {msg}"))
    })
}

/// On the bus, JobRemoved reaches only those who subscribed and matched it; on the private
/// socket systemd sends its signals to every connection.
fn subscribe(conn: &mut Conn, deadline: Instant) -> Result<()> {
    let fail = |(_, m): (String, String)| Error::Systemd(m);
    if conn.is_bus() {
        let rule = "type='signal',sender='org.freedesktop.systemd1',interface='org.freedesktop.systemd1.Manager',member='JobRemoved'";
        conn.call(
            deadline,
            "org.freedesktop.DBus",
            "/org/freedesktop/DBus",
            "org.freedesktop.DBus",
            "AddMatch",
            &[Value::str(rule)],
        )
        .map_err(fail)?;
        call(conn, deadline, "subscribe", "Subscribe", &[]).map_err(fail)?;
    }
    Ok(())
}

/// Waits for the JobRemoved signal of `job`; its result ("done", "failed", "timeout", ...).
fn wait_job(conn: &mut Conn, job: &str, deadline: Instant) -> std::result::Result<String, String> {
    loop {
        let msg = match conn.queued.pop_front() {
            Some(m) => m,
            None => conn.receive(deadline)?,
        };
        if msg.kind == dbus::SIGNAL && msg.member.as_deref() == Some("JobRemoved") {
            if let [_, path, _, result] = &msg.body[..] {
                if path.as_str() == Some(job) {
                    return Ok(result.as_str().unwrap_or("").to_string());
                }
            }
        }
    }
}

/// Starts the container's scope holding `pid`, with `Delegate=yes` and the resources systemd
/// knows as properties, and waits until systemd has finished the job.
pub fn start(unit: &Unit, pid: u32, resources: Option<&LinuxResources>) -> Result<()> {
    let deadline = Instant::now() + JOB_TIMEOUT;
    let mut conn = connect(deadline)?;
    subscribe(&mut conn, deadline)?;
    let mut props = vec![
        Value::prop("Description", Value::str(format!("berth container {}", unit.name))),
        Value::prop("Delegate", Value::Bool(true)),
        Value::prop("DefaultDependencies", Value::Bool(false)),
        Value::prop("MemoryAccounting", Value::Bool(true)),
        Value::prop("CPUAccounting", Value::Bool(true)),
        Value::prop("IOAccounting", Value::Bool(true)),
        Value::prop("TasksAccounting", Value::Bool(true)),
    ];
    if !unit.slice.is_empty() {
        props.push(Value::prop("Slice", Value::str(&unit.slice)));
    }
    // A slice unit holds no processes of its own: the init is born into it by the cgroupfs code.
    if unit.is_scope() {
        props.push(Value::prop("PIDs", Value::Array("u".into(), vec![Value::U32(pid)])));
    }
    if let Some(r) = resources {
        props.extend(properties(r)?);
    }
    let args = [
        Value::str(&unit.name),
        Value::str("fail"),
        Value::Array("(sv)".into(), props),
        Value::Array("(sa(sv))".into(), vec![]),
    ];
    let what = format!("start {}", unit.name);
    let reply = call(&mut conn, deadline, &what, "StartTransientUnit", &args).map_err(|(_, m)| Error::Systemd(m))?;
    let job = reply.first().and_then(Value::as_str).unwrap_or("").to_string();
    match wait_job(&mut conn, &job, deadline) {
        Ok(result) if result == "done" => Ok(()),
        Ok(result) => {
            let _ = stop(&unit.name, None);
            Err(Error::Systemd(format!("{what}: the job finished with {result:?} (see journalctl -u {})", unit.name)))
        }
        // No signal in time: what counts is whether the unit runs.
        Err(e) => match active_state(&mut conn, &unit.name, Instant::now() + Duration::from_secs(5)) {
            Ok(Some(s)) if s == "active" => Ok(()),
            state => {
                let _ = stop(&unit.name, None);
                Err(Error::Systemd(format!("{what}: waiting for the job: {e} (unit state {state:?})")))
            }
        },
    }
}

/// Changes a running unit's properties (`update`); runtime only, as runc does.
pub fn set_properties(unit: &str, resources: &LinuxResources) -> Result<()> {
    let props = properties(resources)?;
    if props.is_empty() {
        return Ok(());
    }
    let deadline = Instant::now() + JOB_TIMEOUT;
    let mut conn = connect(deadline)?;
    let args = [Value::str(unit), Value::Bool(true), Value::Array("(sv)".into(), props)];
    call(&mut conn, deadline, &format!("set properties of {unit}"), "SetUnitProperties", &args)
        .map_err(|(_, m)| Error::Systemd(m))?;
    Ok(())
}

const NO_SUCH_UNIT: &str = "org.freedesktop.systemd1.NoSuchUnit";

/// Stops the unit and waits, bounded, until systemd has unloaded it (a transient unit is gone
/// once stopped; a failed one is reset so that it goes too). A unit that is gone already is
/// not an error: a scope whose processes have all exited is stopped by systemd itself, so the
/// unit's state is asked first and StopUnit sent only to a unit still running. On the test
/// host a StopUnit that crossed systemd's own stop of a scope got no answer for over 30 s, so
/// each call gets a few seconds, and a call without an answer is followed by asking the
/// unit's state again on a new connection, until the deadline.
/// `cgroup`: the unit's directory; an empty one is first given systemd's own stop a moment
/// (wait_released), and once systemd has removed it the unit has stopped, and a systemd that
/// does not answer in time is then not an error.
pub fn stop(unit: &str, cgroup: Option<&Path>) -> Result<()> {
    if let Some(dir) = cgroup {
        wait_released(dir, Duration::from_secs(2));
    }
    let deadline = Instant::now() + JOB_TIMEOUT;
    let what = format!("stop {unit}");
    let per_call = || (Instant::now() + Duration::from_secs(5)).min(deadline);
    let mut conn: Option<Conn> = None;
    let mut trouble = String::new();
    let mut stop_sent = false;
    let mut pause = Duration::from_millis(5);
    loop {
        if conn.is_none() {
            conn = match connect(per_call()) {
                Ok(c) => Some(c),
                Err(e) if trouble.is_empty() => return Err(e),
                Err(e) => {
                    trouble = e.to_string();
                    None
                }
            };
        }
        if let Some(c) = conn.as_mut() {
            match active_state(c, unit, per_call()) {
                Ok(None) => return Ok(()),
                Ok(Some(s)) if s == "failed" => {
                    let _ = call(c, per_call(), "reset", "ResetFailedUnit", &[Value::str(unit)]);
                }
                Ok(Some(s)) if !stop_sent && s != "inactive" => {
                    stop_sent = true;
                    match call(c, per_call(), &what, "StopUnit", &[Value::str(unit), Value::str("replace")]) {
                        Ok(_) => {}
                        Err((name, _)) if name == NO_SUCH_UNIT => return Ok(()),
                        Err((name, m)) if name.is_empty() => {
                            trouble = m;
                            conn = None;
                        }
                        Err((_, m)) => return Err(Error::Systemd(m)),
                    }
                }
                Ok(Some(_)) => {}
                Err(e) => {
                    trouble = e;
                    conn = None;
                }
            }
        }
        if !trouble.is_empty() && cgroup.is_some_and(|c| !c.exists()) {
            crate::logging::debug(&format!("{what}: its cgroup is gone, systemd did not answer: {trouble}"));
            return Ok(());
        }
        if Instant::now() + pause > deadline {
            let why = if trouble.is_empty() { "still loaded".to_string() } else { trouble };
            return Err(Error::Systemd(format!("{what}: {why} (after {}s)", JOB_TIMEOUT.as_secs())));
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(100));
    }
}

/// Waits (bounded) until systemd has removed the cgroup of a scope whose processes are gone:
/// systemd stops such a scope on its own, and then nothing is left to ask it for.
fn wait_released(cgroup: &Path, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    let empty = || std::fs::read_to_string(cgroup.join("cgroup.procs")).map_or(true, |s| s.trim().is_empty());
    while cgroup.exists() && empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The unit's ActiveState, None when systemd does not know it (any more).
fn active_state(conn: &mut Conn, unit: &str, deadline: Instant) -> std::result::Result<Option<String>, String> {
    let path = match call(conn, deadline, "get unit", "GetUnit", &[Value::str(unit)]) {
        Ok(reply) => reply.first().and_then(Value::as_str).unwrap_or("").to_string(),
        Err((name, _)) if name == NO_SUCH_UNIT => return Ok(None),
        Err((_, m)) => return Err(m),
    };
    let args = [Value::str("org.freedesktop.systemd1.Unit"), Value::str("ActiveState")];
    match conn.call(deadline, DEST, &path, "org.freedesktop.DBus.Properties", "Get", &args) {
        Ok(v) => Ok(v.first().and_then(Value::as_str).map(String::from)),
        // Unloaded between the two calls.
        Err((name, _)) if name.starts_with("org.freedesktop.DBus.Error.UnknownObject") => Ok(None),
        Err((_, m)) => Err(format!("ActiveState of {unit}: {m}")),
    }
}

/// systemd's "infinity" for a u64 property.
const INFINITY: u64 = u64::MAX;

/// The container's resources that systemd knows, as unit properties (the rest goes to the
/// cgroup files only). The values are the ones berth writes to the files, so the two agree.
pub fn properties(r: &LinuxResources) -> Result<Vec<Value>> {
    let mut props = Vec::new();
    let limit = |v: i64| if v < 0 { INFINITY } else { v as u64 };
    if let Some(m) = r.memory() {
        if let Some(l) = given(m.limit()) {
            props.push(Value::prop("MemoryMax", Value::U64(limit(l))));
        }
        if let Some(low) = given(m.reservation()) {
            props.push(Value::prop("MemoryLow", Value::U64(limit(low))));
        }
        if let Some(swap) = m.swap() {
            let v = v2::swap_max(m.limit(), swap)?;
            props.push(Value::prop("MemorySwapMax", Value::U64(v.parse().unwrap_or(INFINITY))));
        }
    }
    if let Some(p) = r.pids() {
        if p.limit() != 0 {
            props.push(Value::prop("TasksMax", Value::U64(limit(p.limit()))));
        }
    }
    if let Some(c) = r.cpu() {
        if let Some(s) = given(c.shares()) {
            props.push(Value::prop("CPUWeight", Value::U64(v2::shares_to_weight(s))));
        }
        if given(c.quota()).is_some() || given(c.period()).is_some() {
            let period = given(c.period()).unwrap_or(100_000);
            props.push(Value::prop("CPUQuotaPeriodUSec", Value::U64(period)));
            props.push(Value::prop("CPUQuotaPerSecUSec", Value::U64(quota_per_sec(c.quota(), period))));
        }
        if let Some(cpus) = c.cpus().as_deref().filter(|s| !s.is_empty()) {
            props.push(Value::prop("AllowedCPUs", bitmask(cpus)?));
        }
        if let Some(mems) = c.mems().as_deref().filter(|s| !s.is_empty()) {
            props.push(Value::prop("AllowedMemoryNodes", bitmask(mems)?));
        }
    }
    if let Some(w) = r.block_io().as_ref().and_then(|b| given(b.weight())) {
        props.push(Value::prop("IOWeight", Value::U64(v2::blkio_weight_to_io(w))));
    }
    if r.devices().is_some() {
        props.extend(device_properties());
    }
    Ok(props)
}

/// cpu.max's quota per period as systemd's CPUQuotaPerSecUSec: systemd turns it into a whole
/// percentage of a CPU, so a fraction is rounded up to the next 10 ms (1 %) and the files
/// berth writes afterwards stay within what systemd set.
fn quota_per_sec(quota: Option<i64>, period: u64) -> u64 {
    match quota {
        Some(q) if q > 0 && period > 0 => {
            let per_sec = (q as u64).saturating_mul(1_000_000) / period;
            per_sec.div_ceil(10_000) * 10_000
        }
        _ => INFINITY,
    }
}

/// "0-2,5" -> systemd's CPU/node set: a little-endian bitmask, one bit per number.
fn bitmask(list: &str) -> Result<Value> {
    let mut bytes: Vec<u8> = Vec::new();
    for part in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let bad = || Error::InvalidConfig(format!("cpu set {list:?}: {part:?} is not a number or a range"));
        let (lo, hi) = match part.split_once('-') {
            Some((a, b)) => {
                (a.trim().parse::<usize>().map_err(|_| bad())?, b.trim().parse::<usize>().map_err(|_| bad())?)
            }
            None => {
                let n = part.parse::<usize>().map_err(|_| bad())?;
                (n, n)
            }
        };
        if lo > hi || hi >= 8192 {
            return Err(bad());
        }
        for n in lo..=hi {
            if bytes.len() <= n / 8 {
                bytes.resize(n / 8 + 1, 0);
            }
            bytes[n / 8] |= 1 << (n % 8);
        }
    }
    Ok(Value::Array("y".into(), bytes.into_iter().map(Value::Byte).collect()))
}

/// Device rules: systemd's own filter is left open (DevicePolicy=auto, no DeviceAllow, so
/// systemd attaches no device program to the scope), and berth's eBPF program, compiled from
/// the exact rules as on the cgroupfs driver, is the one filter. runc also hands systemd a
/// DeviceAllow list translated from the rules; but systemd attaches its program as one of
/// several (BPF_F_ALLOW_MULTI) while berth's replaces its predecessor on `update` as the only
/// one, and the kernel refuses a second program with other flags on the same cgroup; and
/// systemd's list can say neither deny rules nor `*:n`, so it would only ever be looser.
fn device_properties() -> Vec<Value> {
    vec![
        Value::prop("DevicePolicy", Value::str("auto")),
        Value::prop("DeviceAllow", Value::Array("(ss)".into(), vec![])),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_expand_as_runc_does() {
        assert_eq!(expand_slice("system.slice").unwrap(), "/system.slice");
        assert_eq!(expand_slice("a-b-c.slice").unwrap(), "/a.slice/a-b.slice/a-b-c.slice");
        assert_eq!(expand_slice("-.slice").unwrap(), "/");
        for bad in ["system", "a--b.slice", "-a.slice", "a-.slice", "a/b.slice", ".slice"] {
            assert!(expand_slice(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn units_from_cgroups_paths() {
        let u = unit_for(Some("system.slice:docker:abc"), "x").unwrap();
        assert_eq!(u.name, "docker-abc.scope");
        assert_eq!(u.cgroup, PathBuf::from("/system.slice/docker-abc.scope"));
        assert_eq!(u.slice, "system.slice");
        let u = unit_for(Some("kubepods-besteffort-pod12.slice:cri-containerd:c1"), "x").unwrap();
        assert_eq!(
            u.cgroup,
            PathBuf::from(
                "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod12.slice/cri-containerd-c1.scope"
            )
        );
        let u = unit_for(Some(":libpod:c1"), "x").unwrap();
        assert_eq!(u.cgroup, PathBuf::from("/system.slice/libpod-c1.scope"));
        let u = unit_for(None, "c9").unwrap();
        assert_eq!((u.name.as_str(), u.slice.as_str()), ("berth-c9.scope", "system.slice"));
        let u = unit_for(Some("-.slice::c1"), "x").unwrap();
        assert_eq!((u.cgroup.clone(), u.slice.as_str()), (PathBuf::from("/c1.scope"), ""));
        let u = unit_for(Some("machine.slice:x:pod.slice"), "x").unwrap();
        assert_eq!(u.cgroup, PathBuf::from("/machine.slice/pod.slice"));
        for bad in [
            "/abs/path",
            "a:b",
            "a.slice:b:c:d",
            "system.slice:p:",
            "system.slice:p:a/b",
            "bad:p:n",
            "system.slice:p:a b",
        ] {
            assert!(unit_for(Some(bad), "x").is_err(), "{bad}");
        }
    }

    fn res(json: &str) -> LinuxResources {
        serde_json::from_str(json).unwrap()
    }

    fn prop<'a>(props: &'a [Value], name: &str) -> Option<&'a Value> {
        props.iter().find_map(|p| match p {
            Value::Struct(f) if f[0].as_str() == Some(name) => match &f[1] {
                Value::Variant(v) => Some(&**v),
                _ => None,
            },
            _ => None,
        })
    }

    #[test]
    fn resources_become_unit_properties() {
        let p = properties(&res(
            r#"{"memory": {"limit": 67108864, "reservation": 1000, "swap": 100000000},
                "pids": {"limit": 32}, "cpu": {"shares": 1024, "quota": 50000, "period": 100000, "cpus": "0-1,3", "mems": "0"},
                "blockIO": {"weight": 500}}"#,
        ))
        .unwrap();
        assert_eq!(prop(&p, "MemoryMax"), Some(&Value::U64(64 << 20)));
        assert_eq!(prop(&p, "MemoryLow"), Some(&Value::U64(1000)));
        assert_eq!(prop(&p, "MemorySwapMax"), Some(&Value::U64(100000000 - (64 << 20))));
        assert_eq!(prop(&p, "TasksMax"), Some(&Value::U64(32)));
        assert_eq!(prop(&p, "CPUWeight"), Some(&Value::U64(39)));
        assert_eq!(prop(&p, "CPUQuotaPerSecUSec"), Some(&Value::U64(500_000)));
        assert_eq!(prop(&p, "CPUQuotaPeriodUSec"), Some(&Value::U64(100_000)));
        assert_eq!(prop(&p, "AllowedCPUs"), Some(&Value::Array("y".into(), vec![Value::Byte(0b1011)])));
        assert_eq!(prop(&p, "AllowedMemoryNodes"), Some(&Value::Array("y".into(), vec![Value::Byte(1)])));
        assert_eq!(prop(&p, "IOWeight"), Some(&Value::U64(4950)));
        // -1 is no limit; 0 is "not set", as engines send it.
        let p = properties(&res(r#"{"memory": {"limit": -1}, "pids": {"limit": -1}, "cpu": {"quota": -1}}"#)).unwrap();
        assert_eq!(prop(&p, "MemoryMax"), Some(&Value::U64(u64::MAX)));
        assert_eq!(prop(&p, "TasksMax"), Some(&Value::U64(u64::MAX)));
        assert_eq!(prop(&p, "CPUQuotaPerSecUSec"), Some(&Value::U64(u64::MAX)));
        assert!(properties(&res(r#"{"memory": {"limit": 0}, "pids": {"limit": 0}, "cpu": {"shares": 0}}"#))
            .unwrap()
            .is_empty());
        assert!(properties(&res(r#"{"cpu": {"cpus": "3-1"}}"#)).is_err());
    }

    #[test]
    fn fractional_quotas_round_up_to_whole_percents() {
        assert_eq!(quota_per_sec(Some(12345), 100_000), 130_000);
        assert_eq!(quota_per_sec(Some(25_000), 100_000), 250_000);
        assert_eq!(quota_per_sec(None, 100_000), u64::MAX);
    }

    #[test]
    fn systemds_device_filter_stays_open() {
        let p = properties(&res(r#"{"devices": [{"allow": false, "access": "rwm"}]}"#)).unwrap();
        assert_eq!(prop(&p, "DevicePolicy"), Some(&Value::str("auto")));
        assert_eq!(prop(&p, "DeviceAllow"), Some(&Value::Array("(ss)".into(), vec![])));
    }

    #[test]
    fn cpu_masks() {
        assert_eq!(bitmask("0").unwrap(), Value::Array("y".into(), vec![Value::Byte(1)]));
        assert_eq!(bitmask("9").unwrap(), Value::Array("y".into(), vec![Value::Byte(0), Value::Byte(2)]));
        assert!(bitmask("x").is_err());
    }
}
