//! Request counters and a latency histogram per route (`prometheus-client` families), exposed
//! with the library's live figures in the OpenMetrics text format at `GET /metrics`.
//!
//! The per-request families live as long as the server; each scrape registers them, with the
//! figures read at that moment (panics, queue, holds, payments, group commit), in one
//! [`Registry`] and encodes it. So a figure that cannot be read is left out rather than shown
//! stale, and two scrapes never race on shared gauges.

use super::router::Endpoint;
use crate::{BatchStats, Booking, Stats};
use prometheus_client::encoding::{text, EncodeLabelSet};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::OnceLock;
use std::time::Duration;

/// Upper bounds (seconds) of the latency histogram's buckets.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// One series of `booking_http_requests_total`: a route and the status it answered with.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: &'static str,
    status: u16,
}

/// One histogram of `booking_http_request_duration_seconds`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabel {
    route: &'static str,
}

type Latency = Family<RouteLabel, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    Histogram::new(BUCKETS)
}

/// The server's own counters.
pub struct Metrics {
    requests: Family<RequestLabels, Counter>,
    latency: Latency,
    /// Each route's series of `latency`, by [`Endpoint::index`]: a handle taken the first time
    /// the route answers (series are never removed), so a request skips that family's lookup.
    latency_by_route: Vec<OnceLock<Histogram>>,
    /// Handler panics turned into `500 internal`.
    pub panics: AtomicU64,
    /// `POST /token` refused by the per-address limit (`429`).
    pub rate_limited: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            requests: Family::default(),
            latency: Family::new_with_constructor(latency_histogram),
            latency_by_route: (0..=Endpoint::ALL.len()).map(|_| OnceLock::new()).collect(),
            panics: AtomicU64::new(0),
            rate_limited: AtomicU64::new(0),
        }
    }
}

// prometheus-client ends every help text with a period and every counter's samples with
// `_total`: the names and help texts below leave both out.
impl Metrics {
    /// Counts one answered request.
    pub fn record(&self, endpoint: Endpoint, status: u16, latency: Duration) {
        let route = endpoint.label();
        self.requests
            .get_or_create(&RequestLabels { route, status })
            .inc();
        self.latency_by_route[endpoint.index()]
            .get_or_init(|| self.latency.get_or_create(&RouteLabel { route }).clone())
            .observe(latency.as_secs_f64());
    }

    /// The OpenMetrics text exposition of these counters and the library's live figures.
    pub fn render(&self, booking: &Booking, tracked_addresses: usize) -> String {
        let stats = booking
            .operator()
            .stats()
            .inspect_err(|e| {
                tracing::warn!(target: "booking::http", error = %e, "metrics: stats unavailable")
            })
            .ok();
        self.exposition(stats, booking.batch_stats(), tracked_addresses)
    }

    fn exposition(
        &self,
        stats: Option<Stats>,
        batches: Option<BatchStats>,
        tracked_addresses: usize,
    ) -> String {
        let mut r = Registry::default();
        r.register(
            "booking_http_requests",
            "HTTP requests answered, by route and status",
            self.requests.clone(),
        );
        r.register(
            "booking_http_request_duration_seconds",
            "Time from taking a request to having answered it",
            self.latency.clone(),
        );
        r.register(
            "booking_http_panics",
            "Handler panics answered with 500 internal",
            ConstCounter::new(self.panics.load(Relaxed)),
        );
        r.register(
            "booking_http_rate_limited",
            "New queue entries refused by the per-address limit (429)",
            ConstCounter::new(self.rate_limited.load(Relaxed)),
        );
        r.register(
            "booking_http_rate_limit_addresses",
            "Client addresses the per-address limit remembers now",
            ConstGauge::new(i64::try_from(tracked_addresses).unwrap_or(i64::MAX)),
        );
        if let Some(s) = stats {
            r.register(
                "booking_queue_waiting",
                "Places in line behind the admission frontier now (an upper bound of the users waiting)",
                ConstGauge::new(s.waiting),
            );
            r.register(
                "booking_queue_active",
                "Users admitted (active) now",
                ConstGauge::new(s.active),
            );
            r.register(
                "booking_queue_prequeue",
                "Users in the prequeue, not placed in line yet",
                ConstGauge::new(s.prequeue),
            );
            r.register(
                "booking_queue_admissions",
                "Users admitted, ever (all processes on this database; its rate is admissions per second)",
                ConstCounter::new(u64::try_from(s.admitted_total).unwrap_or(0)),
            );
            r.register(
                "booking_queue_paused",
                "1 while an operator has paused admission",
                ConstGauge::new(i64::from(s.paused)),
            );
            r.register(
                "booking_holds_live",
                "Seats held and not yet lapsed now",
                ConstGauge::new(s.live_holds),
            );
            r.register(
                "booking_payments",
                "Payments made (all processes on this database)",
                ConstCounter::new(u64::try_from(s.payments).unwrap_or(0)),
            );
        }
        if let Some(b) = batches {
            r.register(
                "booking_group_commit_batches",
                "Group-commit batches (one commit each)",
                ConstCounter::new(b.batches),
            );
            r.register(
                "booking_group_commit_operations",
                "Request writes run through group commit",
                ConstCounter::new(b.operations),
            );
            let by_size = Family::<[(&str, &str); 1], Counter>::default();
            for (size, n) in b.by_size {
                by_size.get_or_create(&[("size", size)]).inc_by(n);
            }
            r.register(
                "booking_group_commit_batches_by_size",
                "Group-commit batches by their number of operations",
                by_size,
            );
        }
        let mut out = String::with_capacity(16 * 1024);
        text::encode(&mut out, &r).expect("writing to a String does not fail");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_series_per_route_and_status_with_cumulative_buckets() {
        let m = Metrics::default();
        m.record(Endpoint::Concerts, 200, Duration::from_micros(300));
        m.record(Endpoint::Concerts, 200, Duration::from_millis(3));
        m.record(Endpoint::Unmatched, 418, Duration::from_secs(9));
        m.panics.fetch_add(2, Relaxed);
        m.rate_limited.fetch_add(7, Relaxed);
        let stats = Stats {
            waiting: 3,
            active: 1,
            prequeue: 9,
            admitted_total: 11,
            paused: true,
            live_holds: 2,
            payments: 5,
        };
        let batches = BatchStats {
            batches: 4,
            operations: 6,
            by_size: vec![("1", 3), ("2-3", 1)],
        };
        let text = m.exposition(Some(stats), Some(batches), 13);
        let concerts = Endpoint::Concerts.label();
        for line in [
            "# TYPE booking_http_requests counter".to_string(),
            format!("booking_http_requests_total{{route=\"{concerts}\",status=\"200\"}} 2"),
            "booking_http_requests_total{route=\"unmatched\",status=\"418\"} 1".to_string(),
            "# TYPE booking_http_request_duration_seconds histogram".to_string(),
            format!(
                "booking_http_request_duration_seconds_bucket{{le=\"0.0005\",route=\"{concerts}\"}} 1"
            ),
            format!(
                "booking_http_request_duration_seconds_bucket{{le=\"0.005\",route=\"{concerts}\"}} 2"
            ),
            format!("booking_http_request_duration_seconds_count{{route=\"{concerts}\"}} 2"),
            "booking_http_request_duration_seconds_bucket{le=\"2.5\",route=\"unmatched\"} 0"
                .to_string(),
            "booking_http_request_duration_seconds_bucket{le=\"+Inf\",route=\"unmatched\"} 1"
                .to_string(),
            "# HELP booking_http_panics Handler panics answered with 500 internal.".to_string(),
            "booking_http_panics_total 2".to_string(),
            "booking_queue_waiting 3".to_string(),
            "booking_queue_active 1".to_string(),
            "booking_queue_prequeue 9".to_string(),
            "booking_queue_admissions_total 11".to_string(),
            "booking_queue_paused 1".to_string(),
            "booking_http_rate_limited_total 7".to_string(),
            "booking_http_rate_limit_addresses 13".to_string(),
            "booking_holds_live 2".to_string(),
            "booking_payments_total 5".to_string(),
            "booking_group_commit_batches_total 4".to_string(),
            "booking_group_commit_operations_total 6".to_string(),
            "booking_group_commit_batches_by_size_total{size=\"2-3\"} 1".to_string(),
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
        assert!(text.ends_with("# EOF\n"), "{text}");
        assert!(
            !text.contains(".."),
            "a help text ends with two periods:\n{text}"
        );
    }

    #[test]
    fn figures_that_cannot_be_read_are_left_out() {
        let text = Metrics::default().exposition(None, None, 0);
        assert!(text.contains("booking_http_panics_total 0"), "{text}");
        assert!(!text.contains("booking_queue"), "{text}");
        assert!(!text.contains("booking_group_commit"), "{text}");
    }
}
