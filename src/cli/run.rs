use berth::container;
use berth::process::supervise::{block_forwarded_signals, supervise};
use nix::unistd::Pid;

use super::create::CreateFlags;
use super::{Failure, Global};

#[derive(clap::Args)]
pub struct Args {
    pub id: String,
    #[command(flatten)]
    pub opts: CreateFlags,
    /// Return once the container has started
    #[arg(short, long)]
    pub detach: bool,
    /// Keep the container's state after it exits (delete it yourself)
    #[arg(long)]
    pub keep: bool,
}

/// create + start + wait. Exits with the container's status, 128+N for signal N, or 125, 126,
/// 127 when it never ran (berth failed; not executable; not found).
pub fn run(g: &Global, a: &Args) -> Result<i32, Failure> {
    let signals = (!a.detach).then(block_forwarded_signals);
    if !a.detach {
        berth::process::supervise::become_subreaper();
    }
    let created = container::create(&g.root(), &a.id, &a.opts.options(!a.detach)).map_err(run_failure)?;
    let console = match &created.console {
        Some(socket) => Some(berth::tty::recv_master(socket).map_err(run_failure)?),
        None => None,
    };
    if let Err(e) = container::start(&g.root(), &a.id) {
        let _ = container::delete(&g.root(), &a.id, true);
        return Err(run_failure(e));
    }
    let Some(signals) = signals else { return Ok(0) };
    let code = supervise(Pid::from_raw(created.state.pid), console, &signals).map_err(run_failure)?;
    if !a.keep {
        container::delete(&g.root(), &a.id, true)?;
    }
    Ok(code)
}

pub fn run_failure(e: berth::Error) -> Failure {
    Failure { code: e.run_exit_code(), message: e.to_string() }
}
