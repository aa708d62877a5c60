use berth::container::{self, ImageRun, RunOptions};

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
    let how = RunOptions { detach: a.detach, keep: a.keep };
    let opts = a.opts.options(g, !a.detach);
    let Some(reference) = &a.image else {
        let Some(id) = &a.id else {
            return Err(Failure { message: "run: a container id is required (or --image)".into(), code: 1 });
        };
        if a.name.is_some() || a.tty || !a.command.is_empty() {
            return Err(Failure { message: "run: --name, --tty and a command go with --image".into(), code: 1 });
        }
        return container::run(&g.root(), id, &opts, how).map_err(run_failure);
    };
    let id = match (&a.name, &a.id) {
        (Some(_), Some(_)) => {
            return Err(Failure { message: "run: give the id once, as --name or as an argument".into(), code: 1 })
        }
        (Some(id), None) | (None, Some(id)) => Some(id.as_str()),
        (None, None) => None,
    };
    let request = ImageRun { image: reference, id, cmd: &a.command, tty: a.tty };
    let ran = container::run_image(&g.root(), &request, opts, how).map_err(run_failure)?;
    if a.detach && id.is_none() {
        super::say(ran.id);
    }
    Ok(ran.code)
}

/// runc's exit status when `run` fails before or instead of the container's process: 1,
/// whatever the cause (engines tell "not found" from "permission denied" by the message).
pub fn run_failure(e: berth::Error) -> Failure {
    Failure { code: 1, message: e.to_string() }
}
