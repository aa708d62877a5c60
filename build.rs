// Embeds the git commit into `berth --version`, as runc prints its own, and lays out the
// binary so that a short-lived berth process maps as few pages as it can (see link_layout).
use std::path::Path;
use std::process::Command;

fn main() {
    let commit = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=BERTH_COMMIT={commit}");
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=.git/refs");
    link_layout();
}

/// Peak RSS of `berth create` is mostly file pages of berth itself: every page fault maps
/// the whole 64 KiB around it (the kernel's fault-around), and the ~450 functions a lifecycle
/// runs were spread over 3 MB of text. Two linker options shrink it:
/// - `--symbol-ordering-file` puts those functions first and together (the list is
///   link/hot-text.order, made by scripts/link-order for the tree it is run on and not kept
///   in git; scripts/test makes it before it tests a build; without it, or with a stale
///   one, entries are skipped: it costs memory, never correctness);
/// - `-z pack-relative-relocs` (DT_RELR, glibc 2.36) stores the PIE's ~10,000 relative
///   relocations in a few KiB instead of 250 KiB that ld.so reads at every start.
///
/// Both are lld options (also GNU ld 2.38 for the second). Rust links x86_64 Linux with its
/// own lld since 1.90; elsewhere, or with BERTH_PLAIN_LINK set, the binary is linked plainly.
fn link_layout() {
    println!("cargo:rerun-if-changed=link/hot-text.order");
    println!("cargo:rerun-if-env-changed=BERTH_PLAIN_LINK");
    let target = std::env::var("TARGET").unwrap_or_default();
    if target != "x86_64-unknown-linux-gnu" || std::env::var_os("BERTH_PLAIN_LINK").is_some() || !rustc_links_with_lld()
    {
        return;
    }
    let order = Path::new(&std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default()).join("link/hot-text.order");
    if order.exists() {
        println!("cargo:rustc-link-arg-bins=-Wl,--symbol-ordering-file={}", order.display());
        println!("cargo:rustc-link-arg-bins=-Wl,--no-warn-symbol-ordering");
    }
    println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
}

/// rustc 1.90 and later links x86_64-unknown-linux-gnu with its bundled lld.
fn rustc_links_with_lld() -> bool {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let Some(out) = Command::new(rustc).arg("--version").output().ok() else {
        return false;
    };
    let version = String::from_utf8_lossy(&out.stdout);
    let minor = version.split_whitespace().nth(1).and_then(|v| v.split('.').nth(1)).and_then(|m| m.parse::<u32>().ok());
    minor.is_some_and(|m| m >= 90)
}
