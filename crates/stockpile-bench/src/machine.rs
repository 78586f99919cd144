//! What machine the figures were taken on: printed first and kept in the results, since
//! every target is relative to it.

use std::process::Command;

use crate::server::nats_server_binary;

/// Name/value lines describing this machine and the software measured.
pub fn describe() -> Vec<(String, String)> {
    let mut lines = Vec::new();
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|line| line.strip_prefix("model name"))
        .map(|rest| rest.trim_start_matches([' ', '\t', ':']).to_string())
        .unwrap_or_else(|| "unknown".into());
    lines.push(("cpu".into(), model));
    lines.push((
        "cores".into(),
        std::thread::available_parallelism()
            .map(|n| n.get().to_string())
            .unwrap_or_else(|_| "unknown".into()),
    ));
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    if let Some(total) = meminfo
        .lines()
        .find_map(|line| line.strip_prefix("MemTotal:"))
    {
        let kib: f64 = total
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .unwrap_or(0.0);
        lines.push(("memory".into(), format!("{:.1} GiB", kib / 1024.0 / 1024.0)));
    }
    if let Ok(kernel) = std::fs::read_to_string("/proc/sys/kernel/osrelease") {
        lines.push(("kernel".into(), kernel.trim().to_string()));
    }
    if let Ok(binary) = nats_server_binary()
        && let Ok(output) = Command::new(binary).arg("--version").output()
    {
        lines.push((
            "nats-server".into(),
            String::from_utf8_lossy(&output.stdout).trim().to_string(),
        ));
    }
    lines.push((
        "profile".into(),
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
        .into(),
    ));
    lines
}
