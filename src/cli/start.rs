use super::{Failure, Global};

#[derive(clap::Args)]
pub struct Args {
    pub id: String,
}

pub fn run(g: &Global, a: &Args) -> Result<i32, Failure> {
    berth::container::start(&g.root(), &a.id)?;
    Ok(0)
}
