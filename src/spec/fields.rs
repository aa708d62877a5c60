//! Every property of runtime-spec 1.3.0's config, and what berth does with it: nothing a
//! config asks for is accepted and then dropped.
//!
//! config.json is walked as JSON before it becomes oci-spec types, because those types
//! forget what they do not model and cannot tell "absent" from "empty". A property of the
//! spec berth cannot honour (another platform's section, a Windows-only field) is refused
//! when set, naming it. A property that is not in the spec at all is ignored, as config.md's
//! "Extensibility" rule requires, unless the config claims a newer spec than berth's: then it
//! is most likely a field of that spec, and refused, because berth cannot know what it asks.
//!
//! The tree also fixes two places where oci-spec 0.10 parses the spec differently from its
//! text, so a config written to the spec loads (see `normalize_process`).

use serde::de::DeserializeSeed;
use serde_json::Value;

use crate::error::{Error, Result};

/// What berth does with a property.
pub enum Field {
    /// Applied by the module that owns it, which also checks its value.
    Applied,
    /// An object whose properties are listed.
    Object(&'static [(&'static str, Field)]),
    /// An array whose items are all `Field`.
    Items(&'static Field),
    /// A map with keys of the config's choosing and values that are all `Field`.
    Values(&'static Field),
    /// In the spec, but not something berth can do: refused when set, for this reason.
    Refused(&'static str),
    /// An object that must hold this key when it is there at all (oci-spec would fill in a
    /// default the config never asked for).
    Needs(&'static str, &'static Field),
}

use Field::{Applied, Items, Needs, Object, Refused, Values};

const OTHER_OS: &str = "berth runs Linux containers";
const WINDOWS_ONLY: &str = "a Windows property; berth runs Linux containers";

pub const CONFIG: Field = Object(&[
    ("ociVersion", Applied),
    ("root", Object(&[("path", Applied), ("readonly", Applied)])),
    ("mounts", Items(&MOUNT)),
    ("process", PROCESS),
    ("hostname", Applied),
    ("domainname", Applied),
    // The hooks module runs every point: path, args, env, timeout.
    ("hooks", Applied),
    // Free-form by definition; unknown keys are ignored as the spec requires, berth's own
    // (org.berth.*) are read where they apply.
    ("annotations", Applied),
    ("linux", LINUX),
    ("solaris", Refused(OTHER_OS)),
    ("windows", Refused(OTHER_OS)),
    ("zos", Refused(OTHER_OS)),
    ("freebsd", Refused(OTHER_OS)),
    ("vm", Refused("a virtual-machine runtime's section: berth isolates with namespaces, it starts no hypervisor")),
]);

const ID_MAPPING: Field = Object(&[("containerID", Applied), ("hostID", Applied), ("size", Applied)]);

const MOUNT: Field = Object(&[
    ("destination", Applied),
    ("source", Applied),
    ("type", Applied),
    ("options", Applied),
    ("uidMappings", Items(&ID_MAPPING)),
    ("gidMappings", Items(&ID_MAPPING)),
]);

pub const PROCESS: Field = Object(&[
    ("terminal", Applied),
    ("consoleSize", Object(&[("height", Applied), ("width", Applied)])),
    ("cwd", Applied),
    ("env", Applied),
    ("args", Applied),
    ("commandLine", Refused("a Windows property; on Linux the program and its arguments are process.args")),
    ("rlimits", Items(&Object(&[("type", Applied), ("soft", Applied), ("hard", Applied)]))),
    ("apparmorProfile", Applied),
    ("capabilities", Applied),
    ("noNewPrivileges", Applied),
    ("oomScoreAdj", Applied),
    ("selinuxLabel", Applied),
    ("ioPriority", Needs("class", &Object(&[("class", Applied), ("priority", Applied)]))),
    (
        "scheduler",
        Object(&[
            ("policy", Applied),
            ("nice", Applied),
            ("priority", Applied),
            ("flags", Applied),
            ("runtime", Applied),
            ("deadline", Applied),
            ("period", Applied),
        ]),
    ),
    ("execCPUAffinity", Object(&[("initial", Applied), ("final", Applied)])),
    (
        "user",
        Object(&[
            ("uid", Applied),
            ("gid", Applied),
            ("umask", Applied),
            ("additionalGids", Applied),
            ("username", Refused(WINDOWS_ONLY)),
        ]),
    ),
]);

const LINUX: Field = Object(&[
    ("namespaces", Items(&Object(&[("type", Applied), ("path", Applied)]))),
    ("uidMappings", Items(&ID_MAPPING)),
    ("gidMappings", Items(&ID_MAPPING)),
    ("timeOffsets", Values(&Object(&[("secs", Applied), ("nanosecs", Applied)]))),
    ("devices", Items(&DEVICE)),
    ("netDevices", Values(&Object(&[("name", Applied)]))),
    ("cgroupsPath", Applied),
    ("resources", RESOURCES),
    ("intelRdt", INTEL_RDT),
    ("memoryPolicy", Object(&[("mode", Applied), ("nodes", Applied), ("flags", Applied)])),
    ("sysctl", Applied),
    ("seccomp", SECCOMP),
    ("rootfsPropagation", Applied),
    ("maskedPaths", Applied),
    ("readonlyPaths", Applied),
    ("mountLabel", Applied),
    ("personality", Object(&[("domain", Applied), ("flags", Applied)])),
]);

const DEVICE: Field = Object(&[
    ("type", Applied),
    ("path", Applied),
    ("major", Applied),
    ("minor", Applied),
    ("fileMode", Applied),
    ("uid", Applied),
    ("gid", Applied),
]);

/// Each resource is written to its controller, and a controller the host lacks fails
/// `create` (cgroups::resources).
const RESOURCES: Field = Object(&[
    (
        "devices",
        Items(&Object(&[
            ("allow", Applied),
            ("type", Applied),
            ("major", Applied),
            ("minor", Applied),
            ("access", Applied),
        ])),
    ),
    (
        "memory",
        Object(&[
            ("limit", Applied),
            ("reservation", Applied),
            ("swap", Applied),
            ("kernel", Applied),
            ("kernelTCP", Applied),
            ("swappiness", Applied),
            ("disableOOMKiller", Applied),
            ("useHierarchy", Applied),
            ("checkBeforeUpdate", Applied),
        ]),
    ),
    (
        "cpu",
        Object(&[
            ("shares", Applied),
            ("quota", Applied),
            ("burst", Applied),
            ("period", Applied),
            ("realtimeRuntime", Applied),
            ("realtimePeriod", Applied),
            ("cpus", Applied),
            ("mems", Applied),
            ("idle", Applied),
        ]),
    ),
    (
        "blockIO",
        Object(&[
            ("weight", Applied),
            ("leafWeight", Applied),
            (
                "weightDevice",
                Items(&Object(&[("major", Applied), ("minor", Applied), ("weight", Applied), ("leafWeight", Applied)])),
            ),
            ("throttleReadBpsDevice", Items(&THROTTLE)),
            ("throttleWriteBpsDevice", Items(&THROTTLE)),
            ("throttleReadIOPSDevice", Items(&THROTTLE)),
            ("throttleWriteIOPSDevice", Items(&THROTTLE)),
        ]),
    ),
    ("hugepageLimits", Items(&Object(&[("pageSize", Applied), ("limit", Applied)]))),
    (
        "network",
        Object(&[("classID", Applied), ("priorities", Items(&Object(&[("name", Applied), ("priority", Applied)])))]),
    ),
    ("pids", Object(&[("limit", Applied)])),
    ("rdma", Values(&Object(&[("hcaHandles", Applied), ("hcaObjects", Applied)]))),
    ("unified", Applied),
]);

const THROTTLE: Field = Object(&[("major", Applied), ("minor", Applied), ("rate", Applied)]);

/// Written to resctrl where the host has it; refused where it does not (resctrl::check).
const INTEL_RDT: Field = Object(&[
    ("closID", Applied),
    ("schemata", Applied),
    ("l3CacheSchema", Applied),
    ("memBwSchema", Applied),
    ("enableMonitoring", Applied),
    ("enableCMT", Applied),
    ("enableMBM", Applied),
]);

const SECCOMP: Field = Object(&[
    ("defaultAction", Applied),
    ("defaultErrnoRet", Applied),
    ("architectures", Applied),
    ("flags", Applied),
    ("listenerPath", Applied),
    ("listenerMetadata", Applied),
    (
        "syscalls",
        Items(&Object(&[
            ("names", Applied),
            ("action", Applied),
            ("errnoRet", Applied),
            ("args", Items(&Object(&[("index", Applied), ("value", Applied), ("valueTwo", Applied), ("op", Applied)]))),
        ])),
    ),
]);

/// What to do with a property outside the spec.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Unknown {
    /// The config is of berth's spec or older: such a property is no spec field, and ignored.
    Ignore,
    /// The config is of a newer spec: the property is most likely one of its fields.
    Refuse,
}

impl Unknown {
    /// For a config's ociVersion: newer than berth's own spec (checked to be 1.x.y before).
    pub fn for_version(version: &str) -> Unknown {
        let minor = |v: &str| v.split('.').nth(1).and_then(|m| m.parse::<u32>().ok()).unwrap_or(0);
        if minor(version) > minor(crate::OCI_VERSION) {
            Unknown::Refuse
        } else {
            Unknown::Ignore
        }
    }
}

/// What a walk found besides refusals: the set properties outside the spec, by path.
#[derive(Debug, Default)]
pub struct Findings {
    pub unknown: Vec<String>,
}

impl Findings {
    /// Ignored (and said at --debug), or, for a config of a newer spec, refused.
    pub fn settle(self, unknown: Unknown) -> Result<()> {
        for path in &self.unknown {
            if unknown == Unknown::Refuse {
                return Err(Error::InvalidConfig(format!(
                    "{path}: not a property of runtime-spec {}, the newest berth implements, and the config is of a newer spec",
                    crate::OCI_VERSION
                )));
            }
            crate::logging::debug(&format!("config: {path} is not a runtime-spec property: ignored"));
        }
        Ok(())
    }
}

/// Walks the JSON text `raw` (the config, or a process of `exec --process`) against `field`,
/// streaming: what berth applies is skipped over without being built, so the walk costs a
/// fraction of the typed parse. A refused property that is set is an error naming it;
/// `path` names the top ("" for the config). Malformed JSON is left for the typed parse to
/// report.
pub fn walk(raw: &[u8], field: &Field, path: &str) -> Result<Findings> {
    let state = WalkState::default();
    let mut de = serde_json::Deserializer::from_slice(raw);
    let walked = Walk { field, path: path.to_string(), state: &state }.deserialize(&mut de);
    if let Some(e) = state.refused.take() {
        return Err(e);
    }
    let _ = walked;
    Ok(Findings { unknown: state.unknown.take() })
}

#[derive(Default)]
struct WalkState {
    refused: std::cell::RefCell<Option<Error>>,
    unknown: std::cell::RefCell<Vec<String>>,
}

struct Walk<'a> {
    field: &'a Field,
    path: String,
    state: &'a WalkState,
}

impl<'de> serde::de::DeserializeSeed<'de> for Walk<'_> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> std::result::Result<(), D::Error> {
        use serde::de::{Error as _, IgnoredAny};
        use serde::Deserialize;
        match self.field {
            Applied => IgnoredAny::deserialize(d).map(drop),
            Refused(why) => {
                if is_set(&Value::deserialize(d)?) {
                    *self.state.refused.borrow_mut() = Some(Error::InvalidConfig(format!("{}: {why}", self.path)));
                    return Err(D::Error::custom("refused"));
                }
                Ok(())
            }
            Needs(key, inner) => {
                let v = Value::deserialize(d)?;
                if v.is_object() && v.get(key).is_none() {
                    *self.state.refused.borrow_mut() =
                        Some(Error::InvalidConfig(format!("{}.{key} is required", self.path)));
                    return Err(D::Error::custom("refused"));
                }
                let text = v.to_string();
                let mut de = serde_json::Deserializer::from_str(&text);
                Walk { field: inner, ..self }.deserialize(&mut de).map_err(D::Error::custom)
            }
            Object(_) | Items(_) | Values(_) => d.deserialize_any(self),
        }
    }
}

impl<'de> serde::de::Visitor<'de> for Walk<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> std::result::Result<(), A::Error> {
        while let Some(key) = map.next_key::<String>()? {
            let here = if self.path.is_empty() { key.clone() } else { format!("{}.{key}", self.path) };
            let field = match self.field {
                Object(props) => props.iter().find(|(name, _)| *name == key).map(|(_, f)| f),
                Values(item) => Some(*item),
                // An array where an object belongs: for the typed parse to report.
                _ => Some(&Applied),
            };
            match field {
                Some(field) => map.next_value_seed(Walk { field, path: here, state: self.state })?,
                None => {
                    if is_set(&map.next_value::<Value>()?) {
                        self.state.unknown.borrow_mut().push(here);
                    }
                }
            }
        }
        Ok(())
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<(), A::Error> {
        let item = match self.field {
            Items(item) => *item,
            _ => &Applied,
        };
        let mut i = 0;
        while seq
            .next_element_seed(Walk { field: item, path: format!("{}[{i}]", self.path), state: self.state })?
            .is_some()
        {
            i += 1;
        }
        Ok(())
    }

    // Scalars where an object or array belongs are for the typed parse to report.
    fn visit_bool<E>(self, _: bool) -> std::result::Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> std::result::Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> std::result::Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> std::result::Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> std::result::Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> std::result::Result<(), E> {
        Ok(())
    }
}

/// Whether a value asks for something: engines write null, empty strings, lists and
/// objects, and `false`, for what they leave alone.
fn is_set(v: &Value) -> bool {
    match v {
        Value::Null | Value::Bool(false) => false,
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => o.values().any(is_set),
        _ => true,
    }
}

/// Where oci-spec 0.10 and the spec's text part, the process is rewritten to what oci-spec
/// parses, meaning the same; returns whether anything changed:
/// - scheduler flags: the spec says SCHED_FLAG_RESET_ON_FORK and SCHED_FLAG_DL_OVERRUN,
///   oci-spec reads SCHED_RESET_ON_FORK and SCHED_FLAG_D_L_OVERRUN;
/// - execCPUAffinity: the schema allows spaces and an empty list ("use the default"),
///   oci-spec refuses both; spaces are dropped and an empty list is left out.
pub fn normalize_process(process: &mut Value) -> bool {
    let mut changed = false;
    let Some(p) = process.as_object_mut() else { return false };
    if let Some(flags) = p.get_mut("scheduler").and_then(|s| s.get_mut("flags")).and_then(Value::as_array_mut) {
        for flag in flags.iter_mut() {
            let renamed = match flag.as_str() {
                Some("SCHED_FLAG_RESET_ON_FORK") => "SCHED_RESET_ON_FORK",
                Some("SCHED_FLAG_DL_OVERRUN") => "SCHED_FLAG_D_L_OVERRUN",
                _ => continue,
            };
            *flag = Value::from(renamed);
            changed = true;
        }
    }
    if let Some(Value::Object(affinity)) = p.get_mut("execCPUAffinity") {
        for key in ["initial", "final"] {
            if let Some(Value::String(list)) = affinity.get(key) {
                let compact: String = list.chars().filter(|c| *c != ' ').collect();
                if compact.is_empty() {
                    affinity.remove(key);
                } else if compact != *list {
                    affinity.insert(key.to_string(), Value::from(compact));
                } else {
                    continue;
                }
                changed = true;
            }
        }
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn walk_config(v: Value, unknown: Unknown) -> Result<()> {
        walk(v.to_string().as_bytes(), &CONFIG, "")?.settle(unknown)
    }

    fn refusal(v: Value) -> String {
        walk_config(v, Unknown::Ignore).unwrap_err().to_string()
    }

    #[test]
    fn other_platforms_are_refused_by_name() {
        let e = refusal(json!({"windows": {"layerFolders": ["C:\\x"]}}));
        assert!(e.contains("windows:"), "{e}");
        let e = refusal(json!({"process": {"commandLine": "cmd /c dir"}}));
        assert!(e.contains("process.commandLine"), "{e}");
        let e = refusal(json!({"process": {"user": {"uid": 0, "username": "ContainerUser"}}}));
        assert!(e.contains("process.user.username"), "{e}");
        let e = refusal(json!({"vm": {"hypervisor": {"path": "/usr/bin/qemu"}}}));
        assert!(e.contains("vm:"), "{e}");
    }

    #[test]
    fn empty_sections_ask_for_nothing() {
        walk_config(
            json!({"windows": {}, "solaris": null, "vm": {"hypervisor": {"path": ""}}, "process": {"commandLine": ""}}),
            Unknown::Ignore,
        )
        .unwrap();
    }

    #[test]
    fn unknown_properties_are_ignored_unless_the_config_is_newer() {
        let v = json!({"linux": {"resources": {"memory": {"someFutureKnob": 1}}}});
        walk_config(v.clone(), Unknown::Ignore).unwrap();
        let e = walk_config(v, Unknown::Refuse).unwrap_err().to_string();
        assert!(e.contains("linux.resources.memory.someFutureKnob"), "{e}");
        walk_config(json!({"linux": {"emptyFutureKnob": {}}}), Unknown::Refuse).unwrap();
        assert_eq!(Unknown::for_version("1.0.2-dev"), Unknown::Ignore);
        assert_eq!(Unknown::for_version(crate::OCI_VERSION), Unknown::Ignore);
        assert_eq!(Unknown::for_version("1.9.0"), Unknown::Refuse);
    }

    #[test]
    fn paths_name_array_items_and_map_keys() {
        let v = json!({"linux": {"netDevices": {"eth0": {"name": "x", "mtu": 9000}}}});
        let e = walk_config(v, Unknown::Refuse).unwrap_err().to_string();
        assert!(e.contains("linux.netDevices.eth0.mtu"), "{e}");
        let v = json!({"mounts": [{"destination": "/a"}, {"destination": "/b", "extra": true}]});
        let e = walk_config(v, Unknown::Refuse).unwrap_err().to_string();
        assert!(e.contains("mounts[1].extra"), "{e}");
    }

    #[test]
    fn values_of_the_wrong_type_are_left_to_the_typed_parse() {
        walk_config(
            json!({"process": "not an object", "mounts": {"a": 1}, "linux": {"namespaces": 3}}),
            Unknown::Refuse,
        )
        .unwrap();
        // Malformed JSON too: the typed parse reports it with its position.
        walk(b"{ this is not json", &CONFIG, "").unwrap();
    }

    #[test]
    fn the_spec_spelling_of_process_fields_loads() {
        let mut p = json!({
            "cwd": "/", "user": {"uid": 0, "gid": 0},
            "scheduler": {"policy": "SCHED_DEADLINE", "flags": ["SCHED_FLAG_RESET_ON_FORK", "SCHED_FLAG_DL_OVERRUN", "SCHED_FLAG_RECLAIM"]},
            "execCPUAffinity": {"initial": "0, 1", "final": ""}
        });
        assert!(normalize_process(&mut p));
        assert!(!normalize_process(&mut p), "normalizing twice changed something");
        let p: oci_spec::runtime::Process = serde_json::from_value(p).unwrap();
        use oci_spec::runtime::LinuxSchedulerFlag as F;
        let flags = p.scheduler().as_ref().unwrap().flags().clone().unwrap();
        assert_eq!(flags, vec![F::SchedResetOnFork, F::SchedFlagDLOverrun, F::SchedFlagReclaim]);
        let affinity = p.exec_cpu_affinity().as_ref().unwrap();
        assert_eq!(affinity.initial().as_deref(), Some("0,1"));
        assert_eq!(affinity.cpu_affinity_final().as_deref(), None);
    }

    #[test]
    fn io_priority_needs_its_class() {
        let e = refusal(json!({"process": {"ioPriority": {"priority": 3}}}));
        assert!(e.contains("process.ioPriority.class is required"), "{e}");
        let e = walk(br#"{"ioPriority": {}}"#, &PROCESS, "process").unwrap_err().to_string();
        assert!(e.contains("process.ioPriority.class"), "{e}");
        walk(br#"{"ioPriority": {"class": "IOPRIO_CLASS_BE", "priority": 1}}"#, &PROCESS, "process").unwrap();
    }

    /// The configs engines were seen to send (../shared/configs) ask for nothing berth
    /// refuses, and load.
    #[test]
    fn engine_configs_pass() {
        // ../shared/configs beside the checkout (a worktree sits one level deeper).
        let here = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let Some(dir) = here.ancestors().map(|a| a.join("shared/configs")).find(|d| d.is_dir()) else {
            eprintln!("no shared/configs beside the checkout: engine configs not checked");
            return;
        };
        let mut seen = 0;
        for e in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = e.path();
            if path.extension().is_none_or(|x| x != "json") {
                continue;
            }
            let raw = std::fs::read(&path).unwrap();
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            // The whole load, as create and exec --process do it.
            let result = if name.ends_with("-process.json") {
                crate::spec::parse_process(&raw, &path).map(drop)
            } else {
                crate::spec::parse_config(&raw, &path).map(drop)
            };
            assert!(result.is_ok(), "{name}: {}", result.unwrap_err());
            seen += 1;
        }
        assert!(seen > 0);
    }
}
