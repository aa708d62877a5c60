//! runc's command line. Each subcommand's file turns its flags into one library call; this
//! file holds the global flags and the dispatch.

mod create;
mod delete;
mod events;
mod exec;
mod images;
mod kill;
mod list;
mod pause;
mod ps;
mod run;
mod spec;
mod start;
mod state;
mod update;

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

use berth::logging::{self, LogFormat};

#[derive(Parser)]
#[command(name = "berth", about = "An OCI container runtime", disable_version_flag = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(clap::Args)]
pub struct Global {
    /// Directory for container state (default /run/berth; $XDG_RUNTIME_DIR/berth when not root)
    #[arg(long = "root", global = true)]
    pub root_dir: Option<PathBuf>,
    /// Write log lines to this file as well as stderr
    #[arg(long, global = true)]
    pub log: Option<String>,
    #[arg(long, global = true, value_enum, default_value = "text")]
    pub log_format: Format,
    /// Log debug lines
    #[arg(long, global = true)]
    pub debug: bool,
    /// Use systemd's cgroup driver: the container's cgroup is a transient unit (cgroup v2 hosts)
    #[arg(long, global = true)]
    pub systemd_cgroup: bool,
    /// Accepted for runc compatibility: true, false or auto
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    pub rootless: Option<String>,
    /// Print the version
    #[arg(short = 'v', long)]
    pub version: bool,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Format {
    Text,
    Json,
}

impl Global {
    /// As runc: an unprivileged caller keeps its state under its own runtime directory.
    pub fn root(&self) -> PathBuf {
        if let Some(dir) = &self.root_dir {
            // Absolute, because paths under it end up in overlay options and state files.
            return std::path::absolute(dir).unwrap_or_else(|_| dir.clone());
        }
        if nix::unistd::geteuid().is_root() {
            return PathBuf::from("/run/berth");
        }
        match std::env::var_os("XDG_RUNTIME_DIR") {
            Some(dir) if !dir.is_empty() => PathBuf::from(dir).join("berth"),
            _ => PathBuf::from(format!("/tmp/berth-{}", nix::unistd::geteuid())),
        }
    }

    pub fn init_logging(&self) -> std::io::Result<()> {
        let format = match self.log_format {
            Format::Text => LogFormat::Text,
            Format::Json => LogFormat::Json,
        };
        logging::init(self.log.as_deref(), format, self.debug)
    }
}

#[derive(Subcommand)]
pub enum Command {
    /// Create a container from a bundle; its process waits for `start`
    Create(create::Args),
    /// Run the process of a created container
    Start(start::Args),
    /// Print a container's state as JSON
    State(state::Args),
    /// Send a signal to a container's init (or, with --all, to all its processes)
    Kill(kill::Args),
    /// Remove a container and its resources
    Delete(delete::Args),
    /// Create and start a container, and wait for it unless --detach
    Run(run::Args),
    /// Run a new process inside a running container
    Exec(exec::Args),
    /// Freeze every process of a container
    Pause(pause::Args),
    /// Thaw a paused container
    Resume(pause::Args),
    /// Change a container's resource limits
    Update(update::Args),
    /// List the processes of a container
    Ps(ps::Args),
    /// Resource statistics and OOM notices
    Events(events::Args),
    /// List containers
    List(list::Args),
    /// Write a default config.json
    Spec(spec::Args),
    /// Print the OCI features this runtime supports
    Features,
    /// Write a bundle (config.json and a flat rootfs) from an OCI image
    Unpack(images::UnpackArgs),
    /// List the image layer cache: size, entries, and the containers using each layer
    Images(images::ImagesArgs),
    /// Remove cached image layers no container uses
    Gc,
}

impl Cli {
    /// The fds 3.. a command hands into a container: --preserve-fds, and for a new container
    /// systemd's LISTEN_FDS too (see container::create).
    pub fn fds_to_preserve(&self) -> u32 {
        let listen_fds = || std::env::var("LISTEN_FDS").ok().and_then(|v| v.parse::<u32>().ok()).unwrap_or(0);
        match &self.command {
            Some(Command::Create(a)) => a.opts.preserve_fds.max(listen_fds()),
            Some(Command::Run(a)) => a.opts.preserve_fds.max(listen_fds()),
            Some(Command::Exec(a)) => a.preserve_fds,
            _ => 0,
        }
    }
}

/// Writes one line to stdout. A reader that went away (`berth features | head`) ends berth
/// quietly, as it ends any Unix filter, instead of a panic on EPIPE.
pub fn say(line: impl std::fmt::Display) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if let Err(e) = writeln!(out, "{line}").and_then(|()| out.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
    }
}

/// What `main` prints and exits with.
pub struct Failure {
    pub message: String,
    pub code: i32,
}

impl From<berth::Error> for Failure {
    fn from(e: berth::Error) -> Self {
        Failure { message: e.to_string(), code: 1 }
    }
}

pub fn dispatch(cli: &Cli) -> Result<i32, Failure> {
    let g = &cli.global;
    if g.version {
        say(format_args!("berth version {}\ncommit: {}\nspec: {}", berth::VERSION, berth::COMMIT, berth::OCI_VERSION));
        return Ok(0);
    }
    let Some(command) = &cli.command else {
        return Err(Failure { message: "no command given; see berth --help".into(), code: 1 });
    };
    match command {
        Command::Create(a) => create::run(g, a),
        Command::Start(a) => start::run(g, a),
        Command::State(a) => state::run(g, a),
        Command::Kill(a) => kill::run(g, a),
        Command::Delete(a) => delete::run(g, a),
        Command::Run(a) => run::run(g, a),
        Command::Exec(a) => exec::run(g, a),
        Command::Pause(a) => pause::pause(g, a),
        Command::Resume(a) => pause::resume(g, a),
        Command::Update(a) => update::run(g, a),
        Command::Ps(a) => ps::run(g, a),
        Command::Events(a) => events::run(g, a),
        Command::List(a) => list::run(g, a),
        Command::Spec(a) => spec::run(a),
        Command::Unpack(a) => images::unpack(a),
        Command::Images(a) => images::images(g, a),
        Command::Gc => images::gc(g),
        Command::Features => {
            say(serde_json::to_string_pretty(&berth::features::features()).unwrap_or_default());
            Ok(0)
        }
    }
}
