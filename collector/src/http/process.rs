//! The collector's own resident memory and CPU time, from `/proc/self`.

use serde::Serialize;

#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct ProcessStats {
    pub resident_bytes: u64,
    /// User plus system CPU time since the start.
    pub cpu_seconds: f64,
    pub threads: u64,
}

pub fn read() -> ProcessStats {
    // SAFETY: sysconf has no preconditions.
    let (page, ticks) = unsafe {
        (
            libc::sysconf(libc::_SC_PAGESIZE),
            libc::sysconf(libc::_SC_CLK_TCK),
        )
    };
    let mut p = ProcessStats::default();
    if let Ok(statm) = std::fs::read_to_string("/proc/self/statm")
        && let Some(pages) = statm
            .split_whitespace()
            .nth(1)
            .and_then(|v| v.parse::<u64>().ok())
    {
        p.resident_bytes = pages * page.max(1) as u64;
    }
    if let Ok(stat) = std::fs::read_to_string("/proc/self/stat")
        && let Some((_, rest)) = stat.rsplit_once(')')
    {
        // Fields after the command name, which may hold spaces and parentheses: state is
        // field 3 of proc(5), utime 14, stime 15, num_threads 20.
        let f: Vec<&str> = rest.split_whitespace().collect();
        let num = |i: usize| {
            f.get(i - 3)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        p.cpu_seconds = (num(14) + num(15)) as f64 / ticks.max(1) as f64;
        p.threads = num(20);
    }
    p
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_this_process() {
        let p = super::read();
        assert!(p.resident_bytes > 1 << 20, "{p:?}");
        assert!(p.threads >= 1, "{p:?}");
    }
}
