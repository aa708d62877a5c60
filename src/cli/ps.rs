use std::process::Command;

use super::{Failure, Global};

#[derive(clap::Args)]
pub struct Args {
    pub id: String,
    /// table (ps output for the container's processes) or json (an array of host pids)
    #[arg(short, long, default_value = "table")]
    pub format: String,
    /// Arguments for ps (default -ef)
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub ps_args: Vec<String>,
}

pub fn run(g: &Global, a: &Args) -> Result<i32, Failure> {
    let pids = berth::container::pids(&g.root(), &a.id)?;
    match a.format.as_str() {
        "json" => super::say(serde_json::to_string(&pids).unwrap_or_default()),
        "table" => print_table(&pids, &a.ps_args)?,
        other => return Err(Failure { message: format!("unknown --format {other:?}: use table or json"), code: 1 }),
    }
    Ok(0)
}

/// Runs the host's ps and keeps the header and the lines whose PID column is the container's.
fn print_table(pids: &[i32], args: &[String]) -> Result<(), Failure> {
    let args: Vec<String> = if args.is_empty() { vec!["-ef".into()] } else { args.to_vec() };
    let out = Command::new("ps")
        .args(&args)
        .output()
        .map_err(|e| Failure { message: format!("run ps {}: {e}", args.join(" ")), code: 1 })?;
    if !out.status.success() {
        let msg = String::from_utf8_lossy(&out.stderr).trim().to_string();
        return Err(Failure { message: format!("ps {}: {msg}", args.join(" ")), code: 1 });
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    let column = header
        .split_whitespace()
        .position(|c| c == "PID")
        .ok_or_else(|| Failure { message: format!("ps {}: output has no PID column", args.join(" ")), code: 1 })?;
    super::say(header);
    for line in lines {
        let pid = line.split_whitespace().nth(column).and_then(|p| p.parse::<i32>().ok());
        if pid.is_some_and(|p| pids.contains(&p)) {
            super::say(line);
        }
    }
    Ok(())
}
