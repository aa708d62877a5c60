//! A container as the runtime root records it, and the lifecycle operations on it.

mod create;
mod dir;
mod lifecycle;
pub mod procfs;
mod state;

pub use create::{create, CreateOptions};
pub use dir::{validate_id, ContainerDir};
pub use lifecycle::{delete, kill, list, load, parse_signal, start, Container};
pub use state::{State, Status};
