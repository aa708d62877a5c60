//! `run`: create and start a container, and in the foreground stay its parent until it exits
//! (its signals forwarded, its terminal relayed), then delete it; `run_image` first makes the
//! config and caches the layers from an OCI image. Also the foreground `exec`.

use std::path::Path;

use nix::unistd::Pid;

use super::create::{create, CreateOptions};
use super::dir::{generated_id, state_dir, validate_id};
use super::exec::{exec, ExecOptions};
use super::lifecycle::delete;
use super::start::start;
use crate::error::Result;
use crate::image::{self, CacheLock, Reference, RunRequest};
use crate::process::supervise::{become_subreaper, block_forwarded_signals, supervise};
use crate::tty;

#[derive(Default, Clone, Copy)]
pub struct RunOptions {
    /// Return once the container has started (exit code 0).
    pub detach: bool,
    /// In the foreground: keep the container's state after it exits.
    pub keep: bool,
}

/// What to run from an image.
pub struct ImageRun<'a> {
    /// `DIR[:TAG]` or `ARCHIVE[:TAG]` (image::Reference).
    pub image: &'a str,
    /// None: a generated id (dir::generated_id).
    pub id: Option<&'a str>,
    /// Replaces the image's Cmd when not empty.
    pub cmd: &'a [String],
    pub tty: bool,
}

/// A finished (or, detached, started) run of an image: its id, and its exit code.
pub struct Ran {
    pub id: String,
    pub code: i32,
}

/// create + start; in the foreground also wait and delete (unless `keep`). Returns the
/// container's exit code as shells see it (128+N for signal N), 0 when detached.
pub fn run(root: &Path, id: &str, opts: &CreateOptions, how: RunOptions) -> Result<i32> {
    run_held(root, id, opts, how, None)
}

/// `run` of an image: its layers cached, its config made in memory (image::prepare_run),
/// the rootfs an overlay of its layers. `opts` brings the rest (console, pid file, ...).
pub fn run_image(root: &Path, req: &ImageRun, mut opts: CreateOptions, how: RunOptions) -> Result<Ran> {
    let id = match req.id {
        Some(id) => id.to_string(),
        None => generated_id()?,
    };
    validate_id(&id)?;
    let dir = state_dir(root, &id);
    let request = RunRequest { id: &id, state_dir: &dir, cmd: req.cmd, tty: req.tty };
    let prepared = image::prepare_run(root, &Reference::parse(req.image), &request)?;
    opts.generated = Some(prepared.config);
    opts.image_layers = Some(prepared.layers);
    let code = run_held(root, &id, &opts, how, Some(prepared.hold))?;
    Ok(Ran { id, code })
}

/// `hold` keeps `gc` off an image's layers until the created container's state names them.
fn run_held(root: &Path, id: &str, opts: &CreateOptions, how: RunOptions, hold: Option<CacheLock>) -> Result<i32> {
    // Blocked before the init exists, so none is lost before the wait loop; the subreaper
    // adopts an init forked from an intermediate child.
    let signals = (!how.detach).then(block_forwarded_signals);
    if !how.detach {
        become_subreaper();
    }
    let created = create(root, id, opts)?;
    drop(hold);
    let console = created.console.as_ref().map(tty::recv_master).transpose()?;
    if let Err(e) = start(root, id) {
        let _ = delete(root, id, true);
        return Err(e);
    }
    let Some(signals) = signals else { return Ok(0) };
    let code = supervise(Pid::from_raw(created.state.pid), console, &signals)?;
    if !how.keep {
        delete(root, id, true)?;
    }
    Ok(code)
}

/// A foreground `exec`: the process started (exec), its signals forwarded, its terminal
/// relayed when `opts.console` is `Relay`; returns its exit code as shells see it.
pub fn exec_wait(root: &Path, id: &str, opts: &ExecOptions) -> Result<i32> {
    let signals = block_forwarded_signals();
    let execd = exec(root, id, opts)?;
    let console = execd.console.as_ref().map(tty::recv_master).transpose()?;
    supervise(execd.pid, console, &signals)
}
