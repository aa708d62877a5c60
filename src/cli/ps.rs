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
    match a.format.as_str() {
        "json" => super::say(serde_json::to_string(&berth::container::pids(&g.root(), &a.id)?).unwrap_or_default()),
        "table" => {
            for line in berth::container::ps(&g.root(), &a.id, &a.ps_args)? {
                super::say(line);
            }
        }
        other => {
            // A missing container is reported before a bad format, as it always was.
            berth::container::pids(&g.root(), &a.id)?;
            return Err(Failure { message: format!("unknown --format {other:?}: use table or json"), code: 1 });
        }
    }
    Ok(0)
}
