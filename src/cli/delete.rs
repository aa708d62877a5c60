use super::{Failure, Global};

#[derive(clap::Args)]
pub struct Args {
    pub id: String,
    /// Kill a running container first; succeed if it does not exist
    #[arg(short, long)]
    pub force: bool,
}

pub fn run(g: &Global, a: &Args) -> Result<i32, Failure> {
    berth::container::delete(&g.root(), &a.id, a.force)?;
    Ok(0)
}
