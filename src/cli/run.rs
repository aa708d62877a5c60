use nix::sys::signal::{kill, sigprocmask, SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::SignalFd;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use berth::container;

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
    let forwarded = forwardable_signals();
    // Blocked before the init exists, so no signal is lost between clone and the wait loop;
    // the init unblocks them for itself.
    if !a.detach {
        let _ = sigprocmask(SigmaskHow::SIG_BLOCK, Some(&forwarded), None);
    }
    let state = container::create(&g.root, &a.id, &a.opts.options()).map_err(run_failure)?;
    if let Err(e) = container::start(&g.root, &a.id) {
        let _ = container::delete(&g.root, &a.id, true);
        return Err(run_failure(e));
    }
    if a.detach {
        return Ok(0);
    }
    let code = forward_until_exit(Pid::from_raw(state.pid), &forwarded).map_err(run_failure)?;
    if !a.keep {
        container::delete(&g.root, &a.id, true)?;
    }
    Ok(code)
}

fn run_failure(e: berth::Error) -> Failure {
    Failure { code: e.run_exit_code(), message: e.to_string() }
}

fn forwardable_signals() -> SigSet {
    let mut set = SigSet::all();
    for s in [
        Signal::SIGKILL,
        Signal::SIGSTOP,
        Signal::SIGSEGV,
        Signal::SIGBUS,
        Signal::SIGILL,
        Signal::SIGFPE,
        Signal::SIGTRAP,
    ] {
        set.remove(s);
    }
    set
}

/// Relays every signal berth receives to the init until the init exits.
fn forward_until_exit(pid: Pid, set: &SigSet) -> berth::Result<i32> {
    use berth::error::SysContext;
    let sfd = SignalFd::new(set).ctx("signalfd", "run")?;
    loop {
        if let Some(code) = reap(pid)? {
            return Ok(code);
        }
        let Some(info) = sfd.read_signal().ctx("read signal", "run")? else {
            continue;
        };
        let signo = info.ssi_signo as i32;
        if signo == Signal::SIGCHLD as i32 {
            continue;
        }
        if let Ok(sig) = Signal::try_from(signo) {
            let _ = kill(pid, sig);
        }
    }
}

fn reap(pid: Pid) -> berth::Result<Option<i32>> {
    match waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
        Ok(WaitStatus::Exited(_, code)) => Ok(Some(code)),
        Ok(WaitStatus::Signaled(_, sig, _)) => Ok(Some(128 + sig as i32)),
        Ok(_) => Ok(None),
        Err(e) => Err(berth::Error::sys("wait for", format!("container init {pid}"), e)),
    }
}
