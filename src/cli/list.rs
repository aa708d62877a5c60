use super::{Failure, Global};

#[derive(clap::Args)]
pub struct Args {
    /// table or json
    #[arg(short, long, default_value = "table")]
    pub format: String,
    /// Print only the ids
    #[arg(short, long)]
    pub quiet: bool,
}

pub fn run(g: &Global, a: &Args) -> Result<i32, Failure> {
    let containers = berth::container::list(&g.root())?;
    if a.quiet {
        containers.iter().for_each(|c| super::say(&c.state.id));
        return Ok(0);
    }
    match a.format.as_str() {
        "json" => {
            // As runc lists them: the owner by name.
            let all: Vec<_> = containers
                .iter()
                .map(|c| {
                    let mut state = c.oci_state();
                    state["owner"] = serde_json::json!(owner(c));
                    state
                })
                .collect();
            super::say(serde_json::Value::Array(all));
        }
        "table" => {
            super::say(format_args!(
                "{:<20} {:<10} {:<10} {:<40} {:<32} OWNER",
                "ID", "PID", "STATUS", "BUNDLE", "CREATED"
            ));
            for c in &containers {
                let status = c.status();
                let pid = if status == berth::container::Status::Stopped { 0 } else { c.state.pid };
                let owner = owner(c);
                super::say(format_args!(
                    "{:<20} {:<10} {:<10} {:<40} {:<32} {owner}",
                    c.state.id,
                    pid,
                    status,
                    c.state.bundle.display(),
                    c.state.created
                ));
            }
        }
        other => return Err(Failure { message: format!("unknown --format {other:?}: use table or json"), code: 1 }),
    }
    Ok(0)
}

/// The container's owner as `list` names it: root when state.json names none.
fn owner(c: &berth::container::Container) -> &str {
    if c.state.owner.is_empty() {
        "root"
    } else {
        &c.state.owner
    }
}
