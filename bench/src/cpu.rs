//! On-CPU time of a process tree, from `/proc`.
//!
//! `/proc/<pid>/task/<tid>/schedstat` gives each thread's time on a CPU in
//! nanoseconds (scheduler accounting, not the 10 ms ticks of `stat`), so a
//! few seconds of load are enough for a per-request figure. A process's
//! time is the sum over its threads; nginx's is the master plus its worker
//! processes, so children are found by their parent pid and added too.
//! Threads that exit during a run take their time with them; the proxies
//! measured here keep a fixed set of worker threads.

use std::fs;

/// First field of a `schedstat` line: time spent on a CPU, in ns.
pub fn parse_schedstat(text: &str) -> Option<u64> {
    text.split_whitespace().next()?.parse().ok()
}

/// The parent pid in a `/proc/<pid>/stat` line. The command name sits in
/// parentheses and may itself contain spaces and parentheses, so the
/// fields are counted from the last `)`.
pub fn parse_ppid(stat: &str) -> Option<u32> {
    let rest = &stat[stat.rfind(')')? + 1..];
    // After the name: state, then ppid.
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// The direct children of `pid` (every process whose ppid is `pid`).
pub fn children(pid: u32) -> Vec<u32> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|p| {
            fs::read_to_string(format!("/proc/{p}/stat"))
                .ok()
                .and_then(|s| parse_ppid(&s))
                == Some(pid)
        })
        .collect()
}

/// `pid` and all its descendants, parents first.
pub fn tree(pid: u32) -> Vec<u32> {
    let mut out = vec![pid];
    let mut i = 0;
    while i < out.len() {
        let kids = children(out[i]);
        out.extend(kids);
        i += 1;
    }
    out
}

/// On-CPU ns of one process: the sum over its threads; `None` if it is
/// gone or its threads cannot be read.
pub fn process_ns(pid: u32) -> Option<u64> {
    let tasks = fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    let mut total = 0;
    for t in tasks.flatten() {
        // A thread may exit between listing and reading: skip it.
        if let Ok(s) = fs::read_to_string(t.path().join("schedstat")) {
            total += parse_schedstat(&s).unwrap_or(0);
        }
    }
    Some(total)
}

/// On-CPU ns of `pid` and its descendants.
pub fn tree_ns(pid: u32) -> u64 {
    tree(pid).into_iter().filter_map(process_ns).sum()
}

/// On-CPU ns of this process (the load generator and the idle runner).
pub fn self_ns() -> u64 {
    process_ns(std::process::id()).unwrap_or(0)
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn schedstat_first_field_is_on_cpu_ns() {
        assert_eq!(parse_schedstat("406172 754425 4\n"), Some(406_172));
        assert_eq!(parse_schedstat("18446744073 0 0"), Some(18_446_744_073));
        assert_eq!(parse_schedstat(""), None);
        assert_eq!(parse_schedstat("x 1 2"), None);
    }

    #[test]
    fn ppid_is_read_after_the_last_parenthesis() {
        let plain = "4837 (nginx) S 4836 4836 4836 0 -1 4194624 0 0";
        assert_eq!(parse_ppid(plain), Some(4836));
        let tricky = "77 (a) b (c) d) R 12 77 77 0";
        assert_eq!(parse_ppid(tricky), Some(12));
        assert_eq!(parse_ppid("77 (truncated"), None);
    }

    #[test]
    fn this_process_has_cpu_time_and_is_its_own_tree_root() {
        let me = std::process::id();
        assert!(process_ns(me).is_some());
        assert_eq!(tree(me)[0], me);
        assert_eq!(process_ns(u32::MAX), None);
    }
}
