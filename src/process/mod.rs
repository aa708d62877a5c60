//! Spawning the container init: the parent's half (spawn.rs) and the init's half (init.rs),
//! talking over the sync channel.

pub mod exec;
pub mod exec_path;
pub mod init;
pub mod launch;
pub mod namespaces;
pub mod spawn;
pub mod supervise;
pub mod sync;
mod sysctl;
pub mod userns;

pub use spawn::{spawn, InitConfig, ParentSide};
