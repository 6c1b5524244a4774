//! What `/metrics` reports, in Prometheus text format: counters, gauges and the event
//! latency histogram (hdrhistogram, microseconds).

use parking_lot::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// The server's counters.
pub struct Metrics {
    /// Events applied.
    pub events: AtomicU64,
    /// Events refused (4xx).
    pub events_refused: AtomicU64,
    /// Entries produced.
    pub posts: AtomicU64,
    /// LLM tokens spent (the server writes from templates; stays 0 until an LLM is wired in).
    pub tokens: AtomicU64,
    /// Stream clients connected now.
    pub stream_clients: AtomicU64,
    /// Stream clients dropped for falling behind.
    pub stream_dropped: AtomicU64,
    /// Requests answered, by status class (2xx, 3xx, 4xx, 5xx).
    pub responses: [AtomicU64; 4],
    /// Requests refused by the rate limit.
    pub rate_limited: AtomicU64,
    latency: Mutex<hdrhistogram::Histogram<u64>>,
    reads: Mutex<hdrhistogram::Histogram<u64>>,
}

impl Default for Metrics {
    fn default() -> Self {
        let h = || Mutex::new(hdrhistogram::Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid bounds"));
        Metrics {
            events: AtomicU64::new(0),
            events_refused: AtomicU64::new(0),
            posts: AtomicU64::new(0),
            tokens: AtomicU64::new(0),
            stream_clients: AtomicU64::new(0),
            stream_dropped: AtomicU64::new(0),
            responses: Default::default(),
            rate_limited: AtomicU64::new(0),
            latency: h(),
            reads: h(),
        }
    }
}

impl Metrics {
    /// Records how long an event took to apply.
    pub fn event_took(&self, d: std::time::Duration) {
        let _ = self.latency.lock().record((d.as_micros() as u64).max(1));
    }

    /// Counts an applied event of `posts` entries that took `d`.
    pub fn event_applied(&self, posts: u64, d: std::time::Duration) {
        self.events.fetch_add(1, Ordering::Relaxed);
        self.posts.fetch_add(posts, Ordering::Relaxed);
        self.event_took(d);
    }

    /// Records how long a read took.
    pub fn read_took(&self, d: std::time::Duration) {
        let _ = self.reads.lock().record((d.as_micros() as u64).max(1));
    }

    /// Counts one response.
    pub fn responded(&self, status: u16) {
        let class = (status / 100).clamp(2, 5) as usize - 2;
        self.responses[class].fetch_add(1, Ordering::Relaxed);
    }

    /// The Prometheus text exposition, with `sessions` the live session count.
    pub fn render(&self, sessions: usize) -> String {
        use std::fmt::Write;
        let mut s = String::new();
        let mut counter = |name: &str, help: &str, kind: &str, v: u64| {
            let _ = writeln!(s, "# HELP chorus_{name} {help}\n# TYPE chorus_{name} {kind}\nchorus_{name} {v}");
        };
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        counter("events_total", "Events applied.", "counter", g(&self.events));
        counter("events_refused_total", "Events refused with a 4xx.", "counter", g(&self.events_refused));
        counter("posts_total", "Timeline entries produced.", "counter", g(&self.posts));
        counter("llm_tokens_total", "LLM tokens spent.", "counter", g(&self.tokens));
        counter("sessions", "Live sessions.", "gauge", sessions as u64);
        counter("stream_clients", "Connected stream clients (SSE and WebSocket).", "gauge", g(&self.stream_clients));
        counter(
            "stream_dropped_total",
            "Stream clients dropped for falling behind.",
            "counter",
            g(&self.stream_dropped),
        );
        counter("rate_limited_total", "Requests answered 429.", "counter", g(&self.rate_limited));
        let _ = writeln!(
            s,
            "# HELP chorus_responses_total Responses by status class.\n# TYPE chorus_responses_total counter"
        );
        for (i, class) in ["2xx", "3xx", "4xx", "5xx"].iter().enumerate() {
            let _ = writeln!(s, "chorus_responses_total{{class=\"{class}\"}} {}", g(&self.responses[i]));
        }
        for (name, help, h) in [
            ("event_latency_seconds", "Time to apply an event and build its answer.", &self.latency),
            ("read_latency_seconds", "Time to answer a timeline read.", &self.reads),
        ] {
            let h = h.lock();
            let _ = writeln!(s, "# HELP chorus_{name} {help}\n# TYPE chorus_{name} summary");
            for q in [0.5, 0.9, 0.99, 0.999] {
                let _ = writeln!(s, "chorus_{name}{{quantile=\"{q}\"}} {:.6}", h.value_at_quantile(q) as f64 / 1e6);
            }
            let sum: f64 = h.iter_recorded().map(|v| v.value_iterated_to() as f64 * v.count_at_value() as f64).sum();
            let _ = writeln!(s, "chorus_{name}_sum {:.6}\nchorus_{name}_count {}", sum / 1e6, h.len());
        }
        s
    }
}
