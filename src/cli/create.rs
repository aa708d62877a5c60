use std::path::PathBuf;

use berth::container::{self, Console, CreateOptions};

use super::{Failure, Global};

#[derive(clap::Args)]
pub struct Args {
    pub id: String,
    #[command(flatten)]
    pub opts: CreateFlags,
}

/// create's flags, shared with run.
#[derive(clap::Args)]
pub struct CreateFlags {
    /// Path to the bundle (the directory holding config.json)
    #[arg(short, long, default_value = ".")]
    pub bundle: PathBuf,
    /// File to write the container init's host pid to
    #[arg(long)]
    pub pid_file: Option<PathBuf>,
    /// Unix socket that receives the pty master of a terminal
    #[arg(long)]
    pub console_socket: Option<PathBuf>,
    /// Use MS_MOVE and chroot instead of pivot_root
    #[arg(long)]
    pub no_pivot: bool,
    /// Do not give the container its own session keyring
    #[arg(long)]
    pub no_new_keyring: bool,
    /// Pass this many fds above stdio (3, 4, ...) into the container
    #[arg(long, default_value_t = 0)]
    pub preserve_fds: u32,
    /// Mount the bundle's rootfs read-only under a writable container layer (removed by delete)
    #[arg(long)]
    pub rootfs_overlay: bool,
    /// Unix socket that receives a pidfd of the container's init (one SCM_RIGHTS message)
    #[arg(long)]
    pub pidfd_socket: Option<PathBuf>,
}

impl CreateFlags {
    /// `relay`: with no --console-socket, a terminal is relayed by this berth process.
    pub fn options(&self, g: &Global, relay: bool) -> CreateOptions {
        let console = match (&self.console_socket, relay) {
            (Some(path), _) => Console::Socket(path.clone()),
            (None, true) => Console::Relay,
            (None, false) => Console::Detached,
        };
        CreateOptions {
            bundle: self.bundle.clone(),
            generated: None,
            pid_file: self.pid_file.clone(),
            console,
            no_pivot: self.no_pivot,
            no_new_keyring: self.no_new_keyring,
            preserve_fds: self.preserve_fds,
            rootfs_overlay: self.rootfs_overlay,
            image_layers: None,
            pidfd_socket: self.pidfd_socket.clone(),
            systemd_cgroup: g.systemd_cgroup,
        }
    }
}

pub fn run(g: &Global, a: &Args) -> Result<i32, Failure> {
    container::create(&g.root(), &a.id, &a.opts.options(g, false))?;
    Ok(0)
}
