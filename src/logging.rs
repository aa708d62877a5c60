//! runc-compatible logging: `--log FILE` and `--log-format text|json`. With json, each line is one
//! object `{"level","msg","time"}`; containerd reports the msg of the last error line as the
//! reason a container failed, so the final error always goes to the log as well as to stderr.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

struct Sink {
    file: Option<File>,
    format: LogFormat,
}

static SINK: Mutex<Sink> = Mutex::new(Sink { file: None, format: LogFormat::Text });
static DEBUG: AtomicBool = AtomicBool::new(false);

pub fn init(path: Option<&str>, format: LogFormat, debug: bool) -> std::io::Result<()> {
    DEBUG.store(debug, Ordering::Relaxed);
    let file = match path {
        Some(p) if !p.is_empty() => Some(OpenOptions::new().create(true).append(true).open(p)?),
        _ => None,
    };
    let mut sink = SINK.lock().unwrap_or_else(|e| e.into_inner());
    sink.file = file;
    sink.format = format;
    Ok(())
}

/// In a forked container process, which closes every fd of the runtime's: later lines go to
/// stderr only, never to a number the log file no longer owns.
pub fn forget_log_file() {
    let mut sink = SINK.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(file) = sink.file.take() {
        std::mem::forget(file);
    }
}

pub fn debug_enabled() -> bool {
    DEBUG.load(Ordering::Relaxed)
}

pub fn error(msg: &str) {
    emit("error", msg, true);
}

pub fn warn(msg: &str) {
    emit("warning", msg, true);
}

pub fn debug(msg: &str) {
    if debug_enabled() {
        emit("debug", msg, false);
    }
}

fn emit(level: &str, msg: &str, to_stderr: bool) {
    let sink = SINK.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(mut file) = sink.file.as_ref() {
        let _ = file.write_all(format_line(sink.format, level, msg).as_bytes());
    }
    // Errors and warnings always reach stderr too: engines read the log, people the terminal.
    // Debug lines go to stderr only without a log file, as log lines (level=debug), so they
    // can be told from the one error line berth ends with.
    if to_stderr {
        let _ = writeln!(std::io::stderr(), "berth: {msg}");
    } else if sink.file.is_none() {
        let _ = std::io::stderr().write_all(format_line(sink.format, level, msg).as_bytes());
    }
}

fn format_line(format: LogFormat, level: &str, msg: &str) -> String {
    let time = crate::time::now_rfc3339();
    match format {
        LogFormat::Json => {
            let line = serde_json::json!({ "level": level, "msg": msg, "time": time });
            format!("{line}\n")
        }
        LogFormat::Text => format!("time=\"{time}\" level={level} msg={msg:?}\n"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_line_has_level_msg_time() {
        let line = format_line(LogFormat::Json, "error", "container \"x\" does not exist");
        let v: serde_json::Value = serde_json::from_str(line.trim()).unwrap();
        assert_eq!(v["level"], "error");
        assert_eq!(v["msg"], "container \"x\" does not exist");
        assert!(v["time"].as_str().unwrap().ends_with('Z'));
    }
}
