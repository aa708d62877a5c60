//! A user namespace holding just an id mapping, for idmapped mounts: a child is cloned into
//! a new user namespace, its maps are written, its namespace is kept open as a file, and the
//! child is let go.

use std::fs::File;

use nix::sched::CloneFlags;
use nix::sys::wait::waitpid;
use nix::unistd::{pipe, read};
use oci_spec::runtime::LinuxIdMapping;

use crate::error::{Error, Result, SysContext};

/// uid_map / gid_map text: one "inside outside count" line per mapping.
pub fn map_text(maps: &[LinuxIdMapping]) -> String {
    maps.iter().map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size())).collect()
}

pub fn with_mappings(uid: &[LinuxIdMapping], gid: &[LinuxIdMapping]) -> Result<File> {
    let (hold_r, hold_w) = pipe().ctx("pipe", "idmap user namespace")?;
    let child = match crate::sys::clone_fork(CloneFlags::CLONE_NEWUSER).ctx("clone", "idmap user namespace")? {
        None => {
            drop(hold_w);
            // Wait until the parent has what it needs (the pipe closes), then go.
            let _ = read(&hold_r, &mut [0u8; 1]);
            crate::sys::exit_now(0);
        }
        Some(pid) => pid,
    };
    drop(hold_r);
    let result = (|| {
        for (file, maps) in [("uid_map", uid), ("gid_map", gid)] {
            let text = map_text(maps);
            std::fs::write(format!("/proc/{child}/{file}"), &text)
                .map_err(|e| Error::io("write idmapped mount mapping", format!("{file} {:?}", text.trim()), e))?;
        }
        File::open(format!("/proc/{child}/ns/user")).map_err(|e| Error::io("open", "idmap user namespace", e))
    })();
    drop(hold_w);
    let _ = waitpid(child, None);
    result
}
