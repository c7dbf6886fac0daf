//! Request counters and a latency histogram per route, lock-free (one atomic add per request),
//! rendered with the library's live figures in the Prometheus text format at `GET /metrics`.

use super::router::Endpoint;
use crate::Booking;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// The statuses counted one by one; anything else is counted as "other".
const STATUSES: [u16; 14] = [
    200, 201, 400, 401, 402, 403, 404, 405, 409, 413, 422, 500, 503, 0,
];
/// Upper bounds (seconds) of the latency histogram's buckets.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];
const ROUTES: usize = Endpoint::ALL.len() + 1;

/// The server's own counters.
pub struct Metrics {
    requests: Vec<AtomicU64>,
    buckets: Vec<AtomicU64>,
    latency_sum_us: Vec<AtomicU64>,
    latency_count: Vec<AtomicU64>,
    /// Handler panics turned into `500 internal`.
    pub panics: AtomicU64,
}

fn zeros(n: usize) -> Vec<AtomicU64> {
    (0..n).map(|_| AtomicU64::new(0)).collect()
}

fn status_slot(status: u16) -> usize {
    STATUSES
        .iter()
        .position(|s| *s == status)
        .unwrap_or(STATUSES.len() - 1)
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            requests: zeros(ROUTES * STATUSES.len()),
            buckets: zeros(ROUTES * (BUCKETS.len() + 1)),
            latency_sum_us: zeros(ROUTES),
            latency_count: zeros(ROUTES),
            panics: AtomicU64::new(0),
        }
    }
}

impl Metrics {
    /// Counts one answered request.
    pub fn record(&self, endpoint: Endpoint, status: u16, latency: Duration) {
        let r = endpoint.index();
        self.requests[r * STATUSES.len() + status_slot(status)].fetch_add(1, Relaxed);
        let secs = latency.as_secs_f64();
        let b = BUCKETS
            .iter()
            .position(|le| secs <= *le)
            .unwrap_or(BUCKETS.len());
        self.buckets[r * (BUCKETS.len() + 1) + b].fetch_add(1, Relaxed);
        self.latency_sum_us[r].fetch_add(latency.as_micros() as u64, Relaxed);
        self.latency_count[r].fetch_add(1, Relaxed);
    }

    /// The Prometheus text exposition of these counters and the library's live figures.
    pub fn render(&self, booking: &Booking) -> String {
        let mut out = String::with_capacity(16 * 1024);
        let routes = || {
            Endpoint::ALL
                .iter()
                .copied()
                .chain(std::iter::once(Endpoint::Unmatched))
        };
        header(
            &mut out,
            "booking_http_requests_total",
            COUNTER,
            "HTTP requests answered, by route and status.",
        );
        for e in routes() {
            for (i, status) in STATUSES.iter().enumerate() {
                let n = self.requests[e.index() * STATUSES.len() + i].load(Relaxed);
                if n > 0 {
                    let status = if *status == 0 {
                        "other".to_string()
                    } else {
                        status.to_string()
                    };
                    let _ = writeln!(
                        out,
                        "booking_http_requests_total{{route=\"{}\",status=\"{status}\"}} {n}",
                        e.label()
                    );
                }
            }
        }
        let name = "booking_http_request_duration_seconds";
        header(
            &mut out,
            name,
            "histogram",
            "Time from taking a request to having answered it.",
        );
        for e in routes() {
            let r = e.index();
            let count = self.latency_count[r].load(Relaxed);
            if count == 0 {
                continue;
            }
            let mut cumulative = 0;
            for (i, le) in BUCKETS
                .iter()
                .map(|b| b.to_string())
                .chain(["+Inf".to_string()])
                .enumerate()
            {
                cumulative += self.buckets[r * (BUCKETS.len() + 1) + i].load(Relaxed);
                let _ = writeln!(
                    out,
                    "{name}_bucket{{route=\"{}\",le=\"{le}\"}} {cumulative}",
                    e.label()
                );
            }
            let sum = self.latency_sum_us[r].load(Relaxed) as f64 / 1e6;
            let _ = writeln!(out, "{name}_sum{{route=\"{}\"}} {sum}", e.label());
            let _ = writeln!(out, "{name}_count{{route=\"{}\"}} {count}", e.label());
        }
        let own = [(
            "booking_http_panics_total",
            "Handler panics answered with 500 internal.",
            &self.panics,
        )];
        for (name, help, value) in own {
            single(&mut out, name, COUNTER, help, value.load(Relaxed));
        }
        match booking.operator().stats() {
            Ok(s) => {
                single(
                    &mut out,
                    "booking_queue_waiting",
                    GAUGE,
                    "Users waiting in the queue now.",
                    s.waiting,
                );
                single(
                    &mut out,
                    "booking_queue_active",
                    GAUGE,
                    "Users admitted (active) now.",
                    s.active,
                );
                single(
                    &mut out,
                    "booking_holds_live",
                    GAUGE,
                    "Seats held and not yet lapsed now.",
                    s.live_holds,
                );
                single(
                    &mut out,
                    "booking_payments_total",
                    COUNTER,
                    "Payments made (all processes on this database).",
                    s.payments,
                );
            }
            Err(e) => {
                tracing::warn!(target: "booking::http", error = %e, "metrics: stats unavailable")
            }
        }
        if let Some(b) = booking.batch_stats() {
            let (batches, ops) = (b.batches, b.operations);
            single(
                &mut out,
                "booking_group_commit_batches_total",
                COUNTER,
                "Group-commit batches (one commit each).",
                batches,
            );
            single(
                &mut out,
                "booking_group_commit_operations_total",
                COUNTER,
                "Request writes run through group commit.",
                ops,
            );
            let name = "booking_group_commit_batches_by_size_total";
            header(
                &mut out,
                name,
                COUNTER,
                "Group-commit batches by their number of operations.",
            );
            for (size, n) in &b.by_size {
                let _ = writeln!(out, "{name}{{size=\"{size}\"}} {n}");
            }
        }
        out
    }
}

const COUNTER: &str = "counter";
const GAUGE: &str = "gauge";

/// A metric with one value and no labels.
fn single(out: &mut String, name: &str, kind: &str, help: &str, value: impl std::fmt::Display) {
    header(out, name, kind, help);
    let _ = writeln!(out, "{name} {value}");
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_buckets_land_in_their_slots() {
        let m = Metrics::default();
        m.record(Endpoint::Concerts, 200, Duration::from_micros(300));
        m.record(Endpoint::Concerts, 200, Duration::from_millis(3));
        m.record(Endpoint::Unmatched, 418, Duration::from_secs(9));
        let r = Endpoint::Concerts.index();
        assert_eq!(
            m.requests[r * STATUSES.len() + status_slot(200)].load(Relaxed),
            2
        );
        assert_eq!(m.buckets[r * (BUCKETS.len() + 1)].load(Relaxed), 1);
        assert_eq!(m.buckets[r * (BUCKETS.len() + 1) + 3].load(Relaxed), 1);
        let u = Endpoint::Unmatched.index();
        assert_eq!(
            m.requests[u * STATUSES.len() + STATUSES.len() - 1].load(Relaxed),
            1
        );
        assert_eq!(
            m.buckets[u * (BUCKETS.len() + 1) + BUCKETS.len()].load(Relaxed),
            1
        );
    }
}
