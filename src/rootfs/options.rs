//! config.json mount options -> mount(2) flags, propagation changes, recursive attributes for
//! mount_setattr(2), and the filesystem's own data string.

use nix::mount::MsFlags;

use crate::sys::*;

#[derive(Debug, PartialEq)]
pub struct MountOptions {
    pub flags: MsFlags,
    pub propagation: Vec<MsFlags>,
    pub rec_set: u64,
    pub rec_clr: u64,
    pub data: Vec<String>,
    /// "idmap" / "ridmap": the mount shows ownership through its id mapping.
    pub idmap: Option<Recursive>,
    /// "tmpcopyup" (runc's extension, podman uses it): a tmpfs starts with a copy of what the
    /// image has at its destination.
    pub copy_up: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recursive {
    No,
    Yes,
}

impl Default for MountOptions {
    fn default() -> Self {
        MountOptions {
            flags: MsFlags::empty(),
            propagation: Vec::new(),
            rec_set: 0,
            rec_clr: 0,
            data: Vec::new(),
            idmap: None,
            copy_up: false,
        }
    }
}

impl MountOptions {
    pub fn is_bind(&self) -> bool {
        self.flags.contains(MsFlags::MS_BIND)
    }

    /// Flags that a bind mount needs a second, remounting call for.
    pub fn remount_flags(&self) -> MsFlags {
        self.flags - (MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_REMOUNT)
    }

    pub fn data_string(&self) -> Option<String> {
        (!self.data.is_empty()).then(|| self.data.join(","))
    }
}

/// Every option name berth recognises as a flag (reported by `berth features`).
pub const NAMES: [&str; 61] = [
    "ro",
    "rw",
    "nosuid",
    "suid",
    "nodev",
    "dev",
    "noexec",
    "exec",
    "sync",
    "async",
    "dirsync",
    "remount",
    "mand",
    "nomand",
    "atime",
    "noatime",
    "diratime",
    "nodiratime",
    "relatime",
    "norelatime",
    "strictatime",
    "nostrictatime",
    "lazytime",
    "nolazytime",
    "silent",
    "loud",
    "iversion",
    "noiversion",
    "nosymfollow",
    "symfollow",
    "bind",
    "rbind",
    "private",
    "rprivate",
    "shared",
    "rshared",
    "slave",
    "rslave",
    "unbindable",
    "runbindable",
    "rro",
    "rrw",
    "rnosuid",
    "rsuid",
    "rnodev",
    "rdev",
    "rnoexec",
    "rexec",
    "rnodiratime",
    "rdiratime",
    "rnosymfollow",
    "rsymfollow",
    "rrelatime",
    "rnoatime",
    "rstrictatime",
    "ratime",
    "rnorelatime",
    "rnostrictatime",
    "idmap",
    "ridmap",
    "tmpcopyup",
];

enum Opt {
    Set(MsFlags),
    Clear(MsFlags),
    Propagation(MsFlags),
    RecSet(u64),
    RecClear(u64),
    RecAtime(u64),
    Idmap(Recursive),
    CopyUp(bool),
}

fn lookup(name: &str) -> Option<Opt> {
    use MsFlags as F;
    use Opt::*;
    Some(match name {
        "ro" => Set(F::MS_RDONLY),
        "rw" => Clear(F::MS_RDONLY),
        "nosuid" => Set(F::MS_NOSUID),
        "suid" => Clear(F::MS_NOSUID),
        "nodev" => Set(F::MS_NODEV),
        "dev" => Clear(F::MS_NODEV),
        "noexec" => Set(F::MS_NOEXEC),
        "exec" => Clear(F::MS_NOEXEC),
        "sync" => Set(F::MS_SYNCHRONOUS),
        "async" => Clear(F::MS_SYNCHRONOUS),
        "dirsync" => Set(F::MS_DIRSYNC),
        "remount" => Set(F::MS_REMOUNT),
        "mand" => Set(F::MS_MANDLOCK),
        "nomand" => Clear(F::MS_MANDLOCK),
        "atime" => Clear(F::MS_NOATIME),
        "noatime" => Set(F::MS_NOATIME),
        "diratime" => Clear(F::MS_NODIRATIME),
        "nodiratime" => Set(F::MS_NODIRATIME),
        "relatime" => Set(F::MS_RELATIME),
        "norelatime" => Clear(F::MS_RELATIME),
        "strictatime" => Set(F::MS_STRICTATIME),
        "nostrictatime" => Clear(F::MS_STRICTATIME),
        "lazytime" => Set(F::MS_LAZYTIME),
        "nolazytime" => Clear(F::MS_LAZYTIME),
        "silent" => Set(F::MS_SILENT),
        "loud" => Clear(F::MS_SILENT),
        "iversion" => Set(F::MS_I_VERSION),
        "noiversion" => Clear(F::MS_I_VERSION),
        "nosymfollow" => Set(F::from_bits_retain(libc::MS_NOSYMFOLLOW)),
        "symfollow" => Clear(F::from_bits_retain(libc::MS_NOSYMFOLLOW)),
        "bind" => Set(F::MS_BIND),
        "rbind" => Set(F::MS_BIND | F::MS_REC),
        "private" => Propagation(F::MS_PRIVATE),
        "rprivate" => Propagation(F::MS_PRIVATE | F::MS_REC),
        "shared" => Propagation(F::MS_SHARED),
        "rshared" => Propagation(F::MS_SHARED | F::MS_REC),
        "slave" => Propagation(F::MS_SLAVE),
        "rslave" => Propagation(F::MS_SLAVE | F::MS_REC),
        "unbindable" => Propagation(F::MS_UNBINDABLE),
        "runbindable" => Propagation(F::MS_UNBINDABLE | F::MS_REC),
        "rro" => RecSet(MOUNT_ATTR_RDONLY),
        "rrw" => RecClear(MOUNT_ATTR_RDONLY),
        "rnosuid" => RecSet(MOUNT_ATTR_NOSUID),
        "rsuid" => RecClear(MOUNT_ATTR_NOSUID),
        "rnodev" => RecSet(MOUNT_ATTR_NODEV),
        "rdev" => RecClear(MOUNT_ATTR_NODEV),
        "rnoexec" => RecSet(MOUNT_ATTR_NOEXEC),
        "rexec" => RecClear(MOUNT_ATTR_NOEXEC),
        "rnodiratime" => RecSet(MOUNT_ATTR_NODIRATIME),
        "rdiratime" => RecClear(MOUNT_ATTR_NODIRATIME),
        "rnosymfollow" => RecSet(MOUNT_ATTR_NOSYMFOLLOW),
        "rsymfollow" => RecClear(MOUNT_ATTR_NOSYMFOLLOW),
        "rrelatime" => RecAtime(MOUNT_ATTR_RELATIME),
        "rnoatime" => RecAtime(MOUNT_ATTR_NOATIME),
        "rstrictatime" => RecAtime(MOUNT_ATTR_STRICTATIME),
        "ratime" | "rnorelatime" | "rnostrictatime" => RecAtime(MOUNT_ATTR_RELATIME),
        "idmap" => Idmap(Recursive::No),
        "ridmap" => Idmap(Recursive::Yes),
        "tmpcopyup" => CopyUp(true),
        "notmpcopyup" => CopyUp(false),
        _ => return None,
    })
}

/// Options that are not flags are the filesystem's (size=, mode=, newinstance, ...).
pub fn parse(options: &[String]) -> MountOptions {
    let mut out = MountOptions::default();
    for option in options {
        match lookup(option) {
            Some(Opt::Set(f)) => out.flags |= f,
            Some(Opt::Clear(f)) => out.flags -= f,
            Some(Opt::Propagation(f)) => out.propagation.push(f),
            Some(Opt::RecSet(a)) => {
                out.rec_set |= a;
                out.rec_clr &= !a;
            }
            Some(Opt::RecClear(a)) => {
                out.rec_clr |= a;
                out.rec_set &= !a;
            }
            Some(Opt::RecAtime(a)) => {
                // The atime modes are one field: clearing it is how the kernel is told to set it.
                out.rec_clr |= MOUNT_ATTR_ATIME;
                out.rec_set = (out.rec_set & !MOUNT_ATTR_ATIME) | a;
            }
            Some(Opt::Idmap(r)) => out.idmap = Some(r),
            Some(Opt::CopyUp(on)) => out.copy_up = on,
            None => out.data.push(option.clone()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn flags_propagation_and_data() {
        let o = parse(&strings(&["rbind", "ro", "nosuid", "rslave", "size=64k", "mode=755"]));
        assert_eq!(o.flags, MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_RDONLY | MsFlags::MS_NOSUID);
        assert_eq!(o.propagation, vec![MsFlags::MS_SLAVE | MsFlags::MS_REC]);
        assert_eq!(o.data_string().as_deref(), Some("size=64k,mode=755"));
        assert!(o.is_bind());
        assert_eq!(o.remount_flags(), MsFlags::MS_RDONLY | MsFlags::MS_NOSUID);
    }

    #[test]
    fn every_listed_name_is_known() {
        for name in NAMES {
            assert!(lookup(name).is_some(), "{name}");
        }
    }

    #[test]
    fn later_options_win() {
        let o = parse(&strings(&["ro", "rw", "rro", "rrw", "rnoatime"]));
        assert!(!o.flags.contains(MsFlags::MS_RDONLY));
        assert_eq!(o.rec_set, MOUNT_ATTR_NOATIME);
        assert_eq!(o.rec_clr, MOUNT_ATTR_RDONLY | MOUNT_ATTR_ATIME);
    }
}
