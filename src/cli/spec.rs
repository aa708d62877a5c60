use std::path::PathBuf;

use super::Failure;

#[derive(clap::Args)]
pub struct Args {
    /// Directory to write config.json into
    #[arg(short, long, default_value = ".")]
    pub bundle: PathBuf,
    /// A config for an unprivileged user (user namespace mapping the caller to root)
    #[arg(long)]
    pub rootless: bool,
}

pub fn run(a: &Args) -> Result<i32, Failure> {
    let path = a.bundle.join("config.json");
    if path.exists() {
        return Err(Failure { message: format!("{} exists: remove it first", path.display()), code: 1 });
    }
    let spec = berth::spec::default_spec(a.rootless, nix::unistd::getuid().as_raw(), nix::unistd::getgid().as_raw());
    let text = serde_json::to_string_pretty(&spec).unwrap_or_default();
    std::fs::write(&path, text + "\n")
        .map_err(|e| Failure { message: format!("write {}: {e}", path.display()), code: 1 })?;
    Ok(0)
}
