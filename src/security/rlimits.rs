//! process.rlimits. Raising a hard limit above the current one needs CAP_SYS_RESOURCE, which
//! some hosts (ours among them) do not grant even to root: the error names the limit.

use oci_spec::runtime::{PosixRlimit, PosixRlimitType};

use crate::error::{Error, Result};

pub fn apply(rlimits: &[PosixRlimit]) -> Result<()> {
    for r in rlimits {
        crate::sys::set_rlimit(resource_id(r.typ()), r.soft(), r.hard()).map_err(|errno| {
            Error::sys("setrlimit", format!("{:?} soft={} hard={}", r.typ(), r.soft(), r.hard()), errno)
        })?;
    }
    Ok(())
}

fn resource_id(t: PosixRlimitType) -> libc::c_int {
    use PosixRlimitType as T;
    (match t {
        T::RlimitCpu => libc::RLIMIT_CPU,
        T::RlimitFsize => libc::RLIMIT_FSIZE,
        T::RlimitData => libc::RLIMIT_DATA,
        T::RlimitStack => libc::RLIMIT_STACK,
        T::RlimitCore => libc::RLIMIT_CORE,
        T::RlimitRss => libc::RLIMIT_RSS,
        T::RlimitNproc => libc::RLIMIT_NPROC,
        T::RlimitNofile => libc::RLIMIT_NOFILE,
        T::RlimitMemlock => libc::RLIMIT_MEMLOCK,
        T::RlimitAs => libc::RLIMIT_AS,
        T::RlimitLocks => libc::RLIMIT_LOCKS,
        T::RlimitSigpending => libc::RLIMIT_SIGPENDING,
        T::RlimitMsgqueue => libc::RLIMIT_MSGQUEUE,
        T::RlimitNice => libc::RLIMIT_NICE,
        T::RlimitRtprio => libc::RLIMIT_RTPRIO,
        T::RlimitRttime => libc::RLIMIT_RTTIME,
    }) as libc::c_int
}
