//! Reading a process's life from /proc/<pid>/stat: whether it still exists, whether it is a
//! zombie, and its start time (to tell it from a later process that got the same pid).

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcStat {
    pub state: char,
    pub start_time: u64,
}

impl ProcStat {
    pub fn read(pid: i32) -> Option<ProcStat> {
        let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        parse_stat(&text)
    }

    /// An exited init that nobody has reaped yet is a zombie: it is stopped, not running.
    pub fn is_dead(&self) -> bool {
        matches!(self.state, 'Z' | 'X' | 'x')
    }
}

/// The command name may hold spaces and parentheses, so fields are counted from the last ')'.
fn parse_stat(text: &str) -> Option<ProcStat> {
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let state = fields.first()?.chars().next()?;
    // Field 3 of stat is `state`; field 22 is `starttime`.
    let start_time = fields.get(22 - 3)?.parse().ok()?;
    Some(ProcStat { state, start_time })
}

/// A process's command line, for messages naming it: "berth create x" (its arguments, space
/// separated), or "?" when it is gone.
pub fn cmdline(pid: i32) -> String {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let text = String::from_utf8_lossy(&raw).replace('\0', " ");
    let text = text.trim();
    if text.is_empty() {
        "?".into()
    } else {
        text.chars().take(200).collect()
    }
}

/// The calling process as `create` records itself: pid and start time.
pub fn myself() -> Option<(i32, u64)> {
    let pid = std::process::id() as i32;
    ProcStat::read(pid).map(|s| (pid, s.start_time))
}

/// Whether `pid` is the same live process that was recorded with `start_time`.
pub fn is_alive(pid: i32, start_time: u64) -> bool {
    pid > 0 && ProcStat::read(pid).is_some_and(|s| !s.is_dead() && s.start_time == start_time)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_with_parens() {
        let line = "42 (a) b) (c) S 1 42 42 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 123456 1000 10";
        let s = parse_stat(line).unwrap();
        assert_eq!(s, ProcStat { state: 'S', start_time: 123456 });
    }

    #[test]
    fn reads_own_process() {
        let me = ProcStat::read(std::process::id() as i32).unwrap();
        assert!(!me.is_dead());
        assert!(is_alive(std::process::id() as i32, me.start_time));
        assert!(!is_alive(std::process::id() as i32, me.start_time + 1));
    }
}
