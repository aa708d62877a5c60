//! Times the compilation of podman's default seccomp profile (what every podman container
//! pays at create), for scripts/bench. Prints one JSON line: runs, median and p90 in µs.

use std::time::Instant;

fn main() {
    let runs: usize = std::env::args().nth(1).and_then(|n| n.parse().ok()).unwrap_or(200);
    let profile = runtime_tests::podman_seccomp(&["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    let section: oci_spec::runtime::LinuxSeccomp = serde_json::from_value(profile).expect("profile");
    let mut samples: Vec<f64> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            let compiled = berth::security::seccomp::compile(&section).expect("compile");
            std::hint::black_box(&compiled);
            t.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    samples.sort_by(|a, b| a.total_cmp(b));
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q) as usize];
    let compiled = berth::security::seccomp::compile(&section).expect("compile");
    let insns: Vec<usize> = compiled.filters.iter().map(|f| f.program.len()).collect();
    println!(
        "{}",
        serde_json::json!({ "workload": "seccomp-compile-podman-default", "runs": runs, "median_us": at(0.5), "p90_us": at(0.9), "filters": insns })
    );
}
