use std::time::Duration;

use super::{Failure, Global};

#[derive(clap::Args)]
pub struct Args {
    pub id: String,
    /// Print one stats object and exit
    #[arg(long)]
    pub stats: bool,
    /// Interval between stats events (e.g. 5s, 500ms)
    #[arg(long, default_value = "5s")]
    pub interval: String,
}

pub fn run(g: &Global, a: &Args) -> Result<i32, Failure> {
    if a.stats {
        super::say(berth::container::stats_event(&g.root(), &a.id)?);
        return Ok(0);
    }
    let interval = parse_duration(&a.interval)?;
    berth::container::events(&g.root(), &a.id, interval, &mut |event| super::say(event))?;
    Ok(0)
}

/// "5s", "500ms", "1m", or a bare number of seconds.
fn parse_duration(s: &str) -> Result<Duration, Failure> {
    let bad = || Failure { message: format!("--interval {s:?}: want e.g. 5s, 500ms, 1m"), code: 1 };
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(s.len()));
    let n: f64 = num.parse().map_err(|_| bad())?;
    let secs = match unit {
        "" | "s" => n,
        "ms" => n / 1000.0,
        "m" => n * 60.0,
        _ => return Err(bad()),
    };
    if secs <= 0.0 {
        return Err(bad());
    }
    Ok(Duration::from_secs_f64(secs))
}
