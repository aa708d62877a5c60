use berth::container;
use berth::image::{self, Reference, RunRequest};
use berth::process::supervise::{block_forwarded_signals, supervise};
use nix::unistd::Pid;

use super::create::CreateFlags;
use super::{Failure, Global};

#[derive(clap::Args)]
pub struct Args {
    /// Container id (optional with --image: --name, or a generated one)
    pub id: Option<String>,
    #[command(flatten)]
    pub opts: CreateFlags,
    /// Return once the container has started
    #[arg(short, long)]
    pub detach: bool,
    /// Keep the container's state after it exits (delete it yourself)
    #[arg(long)]
    pub keep: bool,
    /// Run an OCI image: a layout directory or a `docker save`/OCI archive, with an optional :TAG
    #[arg(long, value_name = "DIR[:TAG]")]
    pub image: Option<String>,
    /// With --image: the container's id
    #[arg(long)]
    pub name: Option<String>,
    /// With --image: give the process a terminal
    #[arg(short = 't', long)]
    pub tty: bool,
    /// With --image: the command, replacing the image's Cmd (after --)
    #[arg(last = true)]
    pub command: Vec<String>,
}

/// create + start + wait. Exits with the container's status, 128+N for signal N, or 1 when it
/// never ran, as runc does.
pub fn run(g: &Global, a: &Args) -> Result<i32, Failure> {
    let Some(reference) = &a.image else {
        let Some(id) = &a.id else {
            return Err(Failure { message: "run: a container id is required (or --image)".into(), code: 1 });
        };
        if a.name.is_some() || a.tty || !a.command.is_empty() {
            return Err(Failure { message: "run: --name, --tty and a command go with --image".into(), code: 1 });
        }
        return run_bundle(g, a, id, &a.opts.options(g, !a.detach), None);
    };
    let id = match (&a.name, &a.id) {
        (Some(_), Some(_)) => {
            return Err(Failure { message: "run: give the id once, as --name or as an argument".into(), code: 1 })
        }
        (Some(id), None) | (None, Some(id)) => id.clone(),
        (None, None) => generated_id().map_err(run_failure)?,
    };
    container::validate_id(&id).map_err(run_failure)?;
    let root = g.root();
    let state_dir = container::state_dir(&root, &id);
    let request = RunRequest { id: &id, state_dir: &state_dir, cmd: &a.command, tty: a.tty };
    let prepared = image::prepare_run(&root, &Reference::parse(reference), &request).map_err(run_failure)?;
    let mut opts = a.opts.options(g, !a.detach);
    opts.generated = Some(prepared.config);
    opts.image_layers = Some(prepared.layers);
    let code = run_bundle(g, a, &id, &opts, Some(prepared.hold));
    if a.detach && a.name.is_none() && a.id.is_none() {
        super::say(id);
    }
    code
}

/// `hold` keeps `gc` off an image's layers until the created container's state names them.
fn run_bundle(
    g: &Global,
    a: &Args,
    id: &str,
    opts: &container::CreateOptions,
    hold: Option<image::CacheLock>,
) -> Result<i32, Failure> {
    let signals = (!a.detach).then(block_forwarded_signals);
    if !a.detach {
        berth::process::supervise::become_subreaper();
    }
    let created = container::create(&g.root(), id, opts).map_err(run_failure)?;
    drop(hold);
    let console = match &created.console {
        Some(socket) => Some(berth::tty::recv_master(socket).map_err(run_failure)?),
        None => None,
    };
    if let Err(e) = container::start(&g.root(), id) {
        let _ = container::delete(&g.root(), id, true);
        return Err(run_failure(e));
    }
    let Some(signals) = signals else { return Ok(0) };
    let code = supervise(Pid::from_raw(created.state.pid), console, &signals).map_err(run_failure)?;
    if !a.keep {
        container::delete(&g.root(), id, true)?;
    }
    Ok(code)
}

/// 12 hex digits, as docker's short ids.
fn generated_id() -> berth::Result<String> {
    use std::io::Read;
    let mut bytes = [0u8; 6];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(|e| berth::Error::io("read", "/dev/urandom", e))?;
    Ok(image::hex(&bytes))
}

/// runc's exit status when `run` fails before or instead of the container's process: 1,
/// whatever the cause (engines tell "not found" from "permission denied" by the message).
pub fn run_failure(e: berth::Error) -> Failure {
    Failure { code: 1, message: e.to_string() }
}
