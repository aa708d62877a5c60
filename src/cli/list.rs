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
            let mut rows = vec![["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"].map(String::from)];
            for c in &containers {
                let status = c.status();
                let pid = if status == berth::container::Status::Stopped { 0 } else { c.state.pid };
                rows.push([
                    c.state.id.clone(),
                    pid.to_string(),
                    status.to_string(),
                    c.state.bundle.display().to_string(),
                    c.state.created.clone(),
                    owner(c).to_string(),
                ]);
            }
            for line in table(&rows) {
                super::say(line);
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

/// Lays rows out as runc's tabwriter does (minimum width 12, padding 3): every column but the
/// last as wide as its widest cell plus three spaces, at least 12.
fn table<const N: usize>(rows: &[[String; N]]) -> Vec<String> {
    let widths: Vec<usize> = (0..N.saturating_sub(1))
        .map(|col| rows.iter().map(|r| r[col].chars().count() + 3).max().unwrap_or(0).max(12))
        .collect();
    rows.iter()
        .map(|row| {
            let mut line = String::new();
            for (cell, width) in row.iter().zip(&widths) {
                line.push_str(&format!("{cell:<width$}"));
            }
            line.push_str(&row[N - 1]);
            line
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn columns_as_runcs_tabwriter() {
        let rows =
            [["ID", "STATUS", "OWNER"].map(String::from), ["a-long-container-id", "created", "root"].map(String::from)];
        assert_eq!(
            super::table(&rows),
            ["ID                    STATUS      OWNER", "a-long-container-id   created     root"]
        );
    }
}
