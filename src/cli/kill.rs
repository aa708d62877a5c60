use super::{Failure, Global};

#[derive(clap::Args)]
pub struct Args {
    pub id: String,
    /// Signal name or number
    #[arg(default_value = "SIGTERM")]
    pub signal: String,
    /// Signal every process in the container's cgroup
    #[arg(short, long)]
    pub all: bool,
}

pub fn run(g: &Global, a: &Args) -> Result<i32, Failure> {
    let signal = berth::container::parse_signal(&a.signal)?;
    berth::container::kill(&g.root(), &a.id, signal, a.all)?;
    Ok(0)
}
