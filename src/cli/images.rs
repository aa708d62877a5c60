//! `unpack`, `images` and `gc`: the image commands beside `run --image`.

use std::path::PathBuf;

use berth::container;
use berth::image::{self, Reference};
use serde_json::json;

use super::{Failure, Global};

#[derive(clap::Args)]
pub struct UnpackArgs {
    /// The image: a layout directory or a `docker save`/OCI archive, with an optional :TAG
    #[arg(long, value_name = "DIR[:TAG]")]
    pub image: String,
    /// The bundle to write (config.json and rootfs/)
    pub bundle: PathBuf,
    /// The command for config.json, replacing the image's Cmd (after --)
    #[arg(last = true)]
    pub command: Vec<String>,
}

#[derive(clap::Args)]
pub struct ImagesArgs {
    /// table or json
    #[arg(short, long, default_value = "table")]
    pub format: String,
}

pub fn unpack(a: &UnpackArgs) -> Result<i32, Failure> {
    image::unpack_bundle(&Reference::parse(&a.image), &a.bundle, &a.command)?;
    Ok(0)
}

pub fn images(g: &Global, a: &ImagesArgs) -> Result<i32, Failure> {
    let layers = container::usage(&g.root())?;
    match a.format.as_str() {
        "json" => {
            let list: Vec<_> = layers
                .iter()
                .map(|u| {
                    json!({
                        "layer": u.digest.to_string(), "blob": u.layer.blob, "entries": u.layer.entries,
                        "bytes": u.layer.bytes, "unpacked": u.layer.unpacked, "containers": u.containers,
                    })
                })
                .collect();
            super::say(serde_json::to_string_pretty(&list).unwrap_or_default());
        }
        "table" => {
            super::say(format_args!("{:<20} {:>10} {:>8}  {:<30} CONTAINERS", "LAYER", "SIZE", "ENTRIES", "UNPACKED"));
            for u in &layers {
                let short = &u.digest.hex()[..12];
                let size = human(u.layer.bytes);
                let users = if u.containers.is_empty() { "-".into() } else { u.containers.join(",") };
                super::say(format_args!(
                    "sha256:{short:<13} {size:>10} {:>8}  {:<30} {users}",
                    u.layer.entries, u.layer.unpacked
                ));
            }
        }
        other => return Err(Failure { message: format!("images: unknown format {other:?} (table or json)"), code: 1 }),
    }
    Ok(0)
}

pub fn gc(g: &Global) -> Result<i32, Failure> {
    for digest in container::gc(&g.root())? {
        super::say(format_args!("removed {digest}"));
    }
    Ok(0)
}

fn human(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}
