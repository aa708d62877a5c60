use super::{Failure, Global};

#[derive(clap::Args)]
pub struct Args {
    pub id: String,
}

pub fn run(g: &Global, a: &Args) -> Result<i32, Failure> {
    let c = berth::container::load(&g.root(), &a.id)?;
    super::say(serde_json::to_string_pretty(&c.oci_state()).unwrap_or_default());
    Ok(0)
}
