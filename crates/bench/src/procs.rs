//! Resident memory and CPU time of the API and worker processes, from `/proc/PID/status`
//! (`VmHWM`, `VmRSS`) and `/proc/PID/stat` (`utime` + `stime`).

use std::{
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::Duration,
};

use serde::Serialize;

/// A `VmHWM:`/`VmRSS:`-style line's value in KiB, from the text of `/proc/PID/status`.
pub fn status_kib(status: &str, key: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|line| line.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
}

/// `utime + stime` in clock ticks, from the text of `/proc/PID/stat`. The command name (field
/// 2) may hold spaces and parentheses, so fields are counted after its closing parenthesis.
pub fn stat_ticks(stat: &str) -> Option<u64> {
    let after = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    // After the name: state is field 3, so utime (14) and stime (15) are at 11 and 12.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

fn read_status_kib(pid: u32, key: &str) -> Option<u64> {
    status_kib(
        &std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?,
        key,
    )
}

fn read_ticks(pid: u32) -> Option<u64> {
    stat_ticks(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// Clock ticks per second (`getconf CLK_TCK`; 100, Linux's value, when that fails).
fn ticks_per_second() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|t| *t > 0.0)
        .unwrap_or(100.0)
}

/// One watched process, sampled every 100 ms while the run lasts.
#[derive(Debug)]
pub struct Watched {
    pub role: String,
    pub pid: u32,
    start_ticks: Option<u64>,
    max_rss_kib: Arc<AtomicU64>,
    sampler: tokio::task::JoinHandle<()>,
}

/// What a watched process used during the run.
#[derive(Debug, Clone, Serialize)]
pub struct ProcessReport {
    pub role: String,
    pub pid: u32,
    /// `VmHWM` at the end: the peak resident set since the process started.
    pub peak_rss_mib: Option<f64>,
    /// The highest `VmRSS` sampled (every 100 ms) during the run.
    pub max_sampled_rss_mib: Option<f64>,
    /// CPU time (user + system) spent during the run.
    pub cpu_seconds: Option<f64>,
}

impl Watched {
    /// Starts sampling `pid`; an error when `/proc/PID` is not readable.
    pub fn start(role: &str, pid: u32) -> anyhow::Result<Self> {
        let start_ticks = read_ticks(pid);
        anyhow::ensure!(
            start_ticks.is_some(),
            "cannot read /proc/{pid}/stat for the {role} process"
        );
        let max_rss_kib = Arc::new(AtomicU64::new(read_status_kib(pid, "VmRSS").unwrap_or(0)));
        let max = max_rss_kib.clone();
        let sampler = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(100));
            loop {
                tick.tick().await;
                match read_status_kib(pid, "VmRSS") {
                    Some(kib) => {
                        max.fetch_max(kib, Ordering::Relaxed);
                    }
                    None => return,
                }
            }
        });
        Ok(Self {
            role: role.to_owned(),
            pid,
            start_ticks,
            max_rss_kib,
            sampler,
        })
    }

    /// Stops sampling and reports.
    pub fn finish(self) -> ProcessReport {
        self.sampler.abort();
        let mib = |kib: u64| kib as f64 / 1024.0;
        let cpu_seconds = match (self.start_ticks, read_ticks(self.pid)) {
            (Some(start), Some(end)) => Some(end.saturating_sub(start) as f64 / ticks_per_second()),
            _ => None,
        };
        let sampled = self.max_rss_kib.load(Ordering::Relaxed);
        ProcessReport {
            role: self.role,
            pid: self.pid,
            peak_rss_mib: read_status_kib(self.pid, "VmHWM").map(mib),
            max_sampled_rss_mib: (sampled > 0).then(|| mib(sampled)),
            cpu_seconds,
        }
    }
}
