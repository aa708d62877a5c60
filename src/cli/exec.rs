use std::path::PathBuf;

use berth::container::{self, Console, ExecOptions};
use oci_spec::runtime::{Capabilities, Capability, Process};

use super::{Failure, Global};

#[derive(clap::Args)]
pub struct Args {
    pub id: String,
    /// The command and its arguments (unless --process gives a whole process)
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
    /// An OCI process JSON file ("-" for stdin), as containerd and conmon pass it
    #[arg(short, long)]
    pub process: Option<PathBuf>,
    /// Allocate a pseudo-terminal
    #[arg(short, long)]
    pub tty: bool,
    /// Unix socket that receives the pty master
    #[arg(long)]
    pub console_socket: Option<PathBuf>,
    /// Return once the process has started
    #[arg(short, long)]
    pub detach: bool,
    /// File to write the process's host pid to
    #[arg(long)]
    pub pid_file: Option<PathBuf>,
    /// Working directory inside the container
    #[arg(long)]
    pub cwd: Option<PathBuf>,
    /// Extra environment variables (KEY=VALUE), repeatable
    #[arg(short, long)]
    pub env: Vec<String>,
    /// uid[:gid]
    #[arg(short, long)]
    pub user: Option<String>,
    /// Supplementary gids, repeatable
    #[arg(short = 'g', long)]
    pub additional_gids: Vec<u32>,
    /// Add a capability (e.g. CAP_SYS_ADMIN), repeatable
    #[arg(short, long)]
    pub cap: Vec<String>,
    /// Set no_new_privileges for the process
    #[arg(long)]
    pub no_new_privs: bool,
    /// Pass this many fds above stdio into the process
    #[arg(long, default_value_t = 0)]
    pub preserve_fds: u32,
    /// Exec even if the container is paused
    #[arg(long)]
    pub ignore_paused: bool,
    /// Run in this existing sub-cgroup of the container's cgroup: [CONTROLLER[,CONTROLLER]:]PATH,
    /// "/" being the container's own (repeatable)
    #[arg(long)]
    pub cgroup: Vec<String>,
    /// Unix socket that receives a pidfd of the new process (one SCM_RIGHTS message)
    #[arg(long)]
    pub pidfd_socket: Option<PathBuf>,
}

/// Exits with the process's status (128+N for signal N), or 255 when it never ran, as runc's
/// exec does, whatever the cause (engines tell the causes apart by the message).
pub fn run(g: &Global, a: &Args) -> Result<i32, Failure> {
    exec(g, a).map_err(|f| Failure { code: 255, ..f })
}

fn exec(g: &Global, a: &Args) -> Result<i32, Failure> {
    let process = build_process(g, a)?;
    let console = match (&a.console_socket, a.detach) {
        (Some(path), _) => Console::Socket(path.clone()),
        (None, false) => Console::Relay,
        (None, true) => Console::Detached,
    };
    let opts = ExecOptions {
        process,
        console,
        pid_file: a.pid_file.clone(),
        preserve_fds: a.preserve_fds,
        ignore_paused: a.ignore_paused,
        sub_cgroup: a.cgroup.clone(),
        pidfd_socket: a.pidfd_socket.clone(),
    };
    if a.detach {
        container::exec(&g.root(), &a.id, &opts)?;
        return Ok(0);
    }
    Ok(container::exec_wait(&g.root(), &a.id, &opts)?)
}

fn fail(message: String) -> Failure {
    Failure { message, code: 1 }
}

/// --process as given, or the container's own process with the command and flags applied
/// (as runc builds it).
fn build_process(g: &Global, a: &Args) -> Result<Process, Failure> {
    if let Some(path) = &a.process {
        return Ok(container::process_from_file(&g.root(), &a.id, path)?);
    }
    if a.command.is_empty() {
        return Err(fail("exec needs a command, or --process".into()));
    }
    let spec = container::saved_config(&g.root(), &a.id)?;
    let mut p = spec.process().clone().ok_or_else(|| fail("the container's config has no process".into()))?;
    p.set_args(Some(a.command.clone()));
    p.set_terminal(Some(a.tty));
    p.set_console_size(None);
    let mut env = p.env().clone().unwrap_or_default();
    for var in &a.env {
        // KEY=VALUE replaces the container's KEY, as runc does; the process sees one KEY.
        let key = var.split_once('=').map_or(var.as_str(), |(k, _)| k);
        env.retain(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k) != key);
        env.push(var.clone());
    }
    p.set_env(Some(env));
    if let Some(cwd) = &a.cwd {
        p.set_cwd(cwd.clone());
    }
    if let Some(user) = &a.user {
        let (uid, gid) = parse_user(user)?;
        p.user_mut().set_uid(uid);
        let gid = gid.unwrap_or(p.user().gid());
        p.user_mut().set_gid(gid);
    }
    if !a.additional_gids.is_empty() {
        p.user_mut().set_additional_gids(Some(a.additional_gids.clone()));
    }
    if !a.cap.is_empty() {
        add_caps(&mut p, &a.cap)?;
    }
    if a.no_new_privs {
        p.set_no_new_privileges(Some(true));
    }
    Ok(p)
}

fn parse_user(s: &str) -> Result<(u32, Option<u32>), Failure> {
    let bad = || fail(format!("--user {s:?}: want uid[:gid] as numbers"));
    let (uid, gid) = match s.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (s, None),
    };
    let uid = uid.parse().map_err(|_| bad())?;
    let gid = gid.map(|g| g.parse().map_err(|_| bad())).transpose()?;
    Ok((uid, gid))
}

fn add_caps(p: &mut Process, names: &[String]) -> Result<(), Failure> {
    let extra: Vec<Capability> = names
        .iter()
        .map(|n| {
            let name = n.to_ascii_uppercase();
            let short = name.strip_prefix("CAP_").unwrap_or(&name);
            short.parse::<Capability>().map_err(|_| fail(format!("--cap {n:?}: unknown capability")))
        })
        .collect::<Result<_, _>>()?;
    let mut caps = p.capabilities().clone().unwrap_or_else(|| serde_json::from_str("{}").unwrap_or_default());
    let grow = |set: &Option<Capabilities>| -> Option<Capabilities> {
        let mut s = set.clone().unwrap_or_default();
        s.extend(extra.iter().copied());
        Some(s)
    };
    caps.set_bounding(grow(caps.bounding()));
    caps.set_effective(grow(caps.effective()));
    caps.set_permitted(grow(caps.permitted()));
    p.set_capabilities(Some(caps));
    Ok(())
}
