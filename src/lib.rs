//! berth: an OCI container runtime as a library. The CLI (src/cli) turns flags into calls here;
//! nothing in this crate parses flags, and nothing in the CLI makes syscalls.

pub mod annotations;
pub mod atomic_file;
pub mod cgroups;
pub mod container;
pub mod error;
pub mod exec_path;
pub mod features;
pub mod hooks;
pub mod image;
pub mod logging;
pub mod netdev;
pub mod pidfd_socket;
pub mod process;
pub mod procfs;
pub mod resctrl;
pub mod rootfs;
pub mod security;
pub mod spec;
mod sys;
pub mod time;
pub mod tty;

pub use error::{Error, Result};

/// The runtime-spec version berth writes into new configs and reports as its maximum.
pub const OCI_VERSION: &str = "1.3.0";
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
pub const COMMIT: &str = env!("BERTH_COMMIT");
