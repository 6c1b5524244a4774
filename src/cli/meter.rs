//! Per-stage wall time and peak memory, with a progress bar on a terminal.

use chorus::population::Progress;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

/// Wall time and peak RSS of one stage.
#[derive(serde::Serialize, Clone)]
pub(crate) struct StageReport {
    pub(crate) stage: String,
    pub(crate) seconds: f64,
    pub(crate) peak_rss_mib: f64,
}

/// Peak RSS since the last reset, from /proc (Linux); 0 elsewhere.
pub(crate) fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

/// Resets the kernel's peak-RSS mark so each stage reports its own peak (Linux only).
pub(crate) fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// Progress bar plus per-stage timing and peak memory.
pub(crate) struct StageMeter {
    pub(crate) bar: Option<indicatif::ProgressBar>,
    pub(crate) current: Mutex<Option<(String, Instant)>>,
    pub(crate) reports: Mutex<Vec<StageReport>>,
    pub(crate) done: AtomicU64,
}

impl StageMeter {
    pub(crate) fn new(show: bool) -> Self {
        let bar = show.then(|| {
            let b = indicatif::ProgressBar::new(1);
            b.set_style(
                indicatif::ProgressStyle::with_template("{prefix:>12} [{bar:40}] {pos}/{len} {elapsed}")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                    .progress_chars("=> "),
            );
            b
        });
        StageMeter { bar, current: Mutex::new(None), reports: Mutex::new(Vec::new()), done: AtomicU64::new(0) }
    }

    pub(crate) fn close(&self) {
        let mut cur = self.current.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((name, start)) = cur.take() {
            let report = StageReport {
                stage: name,
                seconds: start.elapsed().as_secs_f64(),
                peak_rss_mib: peak_rss_kib() as f64 / 1024.0,
            };
            self.reports.lock().unwrap_or_else(|e| e.into_inner()).push(report);
        }
    }

    pub(crate) fn begin(&self, name: &str, total: u64) {
        self.close();
        reset_peak_rss();
        *self.current.lock().unwrap_or_else(|e| e.into_inner()) = Some((name.to_string(), Instant::now()));
        self.done.store(0, Ordering::Relaxed);
        if let Some(b) = &self.bar {
            b.set_prefix(name.to_string());
            b.set_length(total);
            b.set_position(0);
        }
    }

    pub(crate) fn finish(&self) -> Vec<StageReport> {
        self.close();
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
        self.reports.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl Progress for StageMeter {
    fn stage(&self, name: &'static str, total: u64) {
        self.begin(name, total);
    }
    fn advance(&self, n: u64) {
        let done = self.done.fetch_add(n, Ordering::Relaxed) + n;
        if let Some(b) = &self.bar {
            b.set_position(done);
        }
    }
}
