//! Resident memory of a process under load, from `/proc/<pid>/status`.
//!
//! `VmHWM` is the peak resident set since the process started or since
//! its peak was reset; resetting it just before the loaded run (writing
//! `5` to `clear_refs`, Linux ≥ 4.0) makes it the peak *under load*
//! rather than a startup spike such as compiling plugin components.

use std::fs;

/// Resident set figures of one or more processes, in KiB.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rss {
    /// Peak (`VmHWM`).
    pub peak_kib: u64,
    /// Current (`VmRSS`).
    pub now_kib: u64,
}

impl Rss {
    pub fn peak_mib(&self) -> f64 {
        self.peak_kib as f64 / 1024.0
    }
}

impl std::ops::Add for Rss {
    type Output = Rss;
    fn add(self, o: Rss) -> Rss {
        Rss {
            peak_kib: self.peak_kib + o.peak_kib,
            now_kib: self.now_kib + o.now_kib,
        }
    }
}

/// `VmHWM` and `VmRSS` of a `status` file; `None` if either is missing
/// (a kernel thread, or a zombie).
pub fn parse_status(text: &str) -> Option<Rss> {
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
    };
    Some(Rss {
        peak_kib: field("VmHWM")?,
        now_kib: field("VmRSS")?,
    })
}

/// The figures of one process.
pub fn read(pid: u32) -> Option<Rss> {
    parse_status(&fs::read_to_string(format!("/proc/{pid}/status")).ok()?)
}

/// Sums the figures of several processes (nginx's workers); `None` if
/// none could be read.
pub fn sum(pids: &[u32]) -> Option<Rss> {
    pids.iter().filter_map(|p| read(*p)).reduce(|a, b| a + b)
}

/// Resets the peak of `pid` to its current resident set.
pub fn reset_peak(pid: u32) -> std::io::Result<()> {
    fs::write(format!("/proc/{pid}/clear_refs"), "5")
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn status_gives_peak_and_current_resident_set() {
        let text = "Name:\tsluice\nVmPeak:\t 900000 kB\nVmHWM:\t   51234 kB\nVmRSS:\t   48000 kB\nThreads:\t7\n";
        assert_eq!(
            parse_status(text),
            Some(Rss {
                peak_kib: 51_234,
                now_kib: 48_000
            })
        );
        assert_eq!(parse_status("Name:\tkthreadd\nThreads:\t1\n"), None);
        let two = Rss {
            peak_kib: 2048,
            now_kib: 1024,
        } + Rss {
            peak_kib: 1024,
            now_kib: 1024,
        };
        assert_eq!(two.peak_mib(), 3.0);
    }

    #[test]
    fn this_process_has_a_resident_set() {
        let me = read(std::process::id()).unwrap();
        assert!(me.peak_kib >= me.now_kib && me.now_kib > 0);
        assert_eq!(sum(&[u32::MAX]), None);
    }
}
