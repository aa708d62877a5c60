//! berth: an OCI container runtime as a library. The CLI (src/cli) turns flags into calls here;
//! nothing in this crate parses flags, and nothing in the CLI makes syscalls. Its public face is
//! container/ (the operations), spec/, image/, cgroups/ and security/ (which the runtime tests
//! also drive directly), features, logging and the error type; the rest is the crate's own.

pub(crate) mod annotations;
pub(crate) mod atomic_file;
pub mod cgroups;
pub mod container;
pub mod error;
pub(crate) mod exec_path;
pub mod features;
pub(crate) mod hooks;
pub mod image;
pub mod logging;
pub(crate) mod netdev;
pub(crate) mod pidfd_socket;
pub(crate) mod process;
pub(crate) mod procfs;
pub(crate) mod resctrl;
pub(crate) mod rootfs;
pub mod security;
pub mod spec;
mod sys;
pub(crate) mod time;
pub(crate) mod tty;

pub use error::{Error, Result};

/// The runtime-spec version berth writes into new configs and reports as its maximum.
pub const OCI_VERSION: &str = "1.3.0";
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
pub const COMMIT: &str = env!("BERTH_COMMIT");
