use super::{Failure, Global};

#[derive(clap::Args)]
pub struct Args {
    pub id: String,
}

pub fn pause(g: &Global, a: &Args) -> Result<i32, Failure> {
    berth::container::pause(&g.root(), &a.id)?;
    Ok(0)
}

pub fn resume(g: &Global, a: &Args) -> Result<i32, Failure> {
    berth::container::resume(&g.root(), &a.id)?;
    Ok(0)
}
