//! A container as the runtime root records it, and the lifecycle operations on it.

mod create;
mod dir;
mod exec;
mod images;
mod lifecycle;
mod resources;
mod run;
mod start;
mod state;

pub use create::{create, Console, CreateOptions, Created};
pub use dir::{generated_id, state_dir, validate_id, ContainerDir};
pub use exec::{exec, process_from_file, saved_config, ExecOptions, Execd};
pub use images::{gc, usage, LayerUsage};
pub use lifecycle::{delete, kill, list, load, parse_signal, pause, resume, Container};
pub use resources::{events, pids, ps, stats_event, update};
pub use run::{exec_wait, run, run_image, ImageRun, Ran, RunOptions};
pub use start::start;
pub use state::{State, Status};

/// `--preserve-fds N`: fds 3..3+N must have been passed to berth (checked before berth opens
/// anything of its own).
pub use crate::process::fds::check_passed as check_preserved_fds;
