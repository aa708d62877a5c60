//! Becoming process.user: supplementary groups, gid, uid (keeping capabilities across the
//! switch so the configured sets can be applied afterwards), and the umask.

use nix::sys::stat::{umask, Mode};
use nix::unistd::{setgroups, setresgid, setresuid, Gid, Uid};
use oci_spec::runtime::User;

use crate::error::{Result, SysContext};

pub fn switch_user(user: &User, may_setgroups: bool) -> Result<()> {
    nix::sys::prctl::set_keepcaps(true).ctx("set", "keepcaps")?;
    if may_setgroups {
        let groups: Vec<Gid> = user.additional_gids().iter().flatten().map(|g| Gid::from_raw(*g)).collect();
        setgroups(&groups).ctx("setgroups", format!("{groups:?}"))?;
    }
    let gid = Gid::from_raw(user.gid());
    setresgid(gid, gid, gid).ctx("setgid", gid)?;
    let uid = Uid::from_raw(user.uid());
    setresuid(uid, uid, uid).ctx("setuid", uid)?;
    nix::sys::prctl::set_keepcaps(false).ctx("clear", "keepcaps")
}

/// runc's default when the config has none is 0022.
pub fn set_umask(user: &User) {
    umask(Mode::from_bits_truncate(user.umask().unwrap_or(0o022) as libc::mode_t));
}
