//! What berth reads from /proc: the mount table (mountinfo.rs) and a process's life — state,
//! start time, command line — (stat.rs).
//!
//! Parsed by hand, not with the procfs crate: berth reads two short lines of fixed shape, on
//! every create's fast path; the crate parses every field (and, for mountinfo, builds a map of
//! every option of every mount) for the same answer.

mod mountinfo;
mod stat;

pub use mountinfo::{mounts, parse_mountinfo, Mount};
pub use stat::{cmdline, is_alive, myself, ProcStat};
