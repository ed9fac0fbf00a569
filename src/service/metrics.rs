//! Prometheus metrics: request counts and latency histograms per route, embedded texts and
//! tokens, start-up phase times, RSS. A handful of series, so plain atomics and one mutex-held
//! map, rendered in the text exposition format.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Latency bucket upper bounds, seconds.
const BUCKETS: [f64; 12] = [0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Histogram {
    fn observe(&mut self, elapsed: Duration) {
        let s = elapsed.as_secs_f64();
        for (i, b) in BUCKETS.iter().enumerate() {
            if s <= *b {
                self.counts[i] += 1;
            }
        }
        self.count += 1;
        self.sum += s;
    }
}

#[derive(Default)]
pub struct Metrics {
    /// (route, method, status) → count.
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    /// route → latency.
    latency: Mutex<BTreeMap<String, Histogram>>,
    texts: AtomicU64,
    tokens: AtomicU64,
    /// Corpus searches (from /search and the webhook): embedding + scan time.
    searches: Mutex<Histogram>,
}

impl Metrics {
    pub fn record_request(&self, route: &str, method: &str, status: u16, elapsed: Duration) {
        if let Ok(mut m) = self.requests.lock() {
            *m.entry((route.to_owned(), method.to_owned(), status)).or_default() += 1;
        }
        if let Ok(mut m) = self.latency.lock() {
            m.entry(route.to_owned()).or_default().observe(elapsed);
        }
    }

    pub fn record_embedded(&self, texts: usize, tokens: usize) {
        self.texts.fetch_add(texts as u64, Ordering::Relaxed);
        self.tokens.fetch_add(tokens as u64, Ordering::Relaxed);
    }

    pub fn record_search(&self, elapsed: Duration) {
        if let Ok(mut h) = self.searches.lock() {
            h.observe(elapsed);
        }
    }

    /// The exposition text; `gauges` are (name, help, value) read at scrape time.
    pub fn render(&self, gauges: &[(&str, &str, f64)]) -> String {
        let mut out = String::new();
        out.push_str("# HELP snapembed_http_requests_total HTTP requests by route, method and status.\n");
        out.push_str("# TYPE snapembed_http_requests_total counter\n");
        if let Ok(m) = self.requests.lock() {
            for ((route, method, status), n) in m.iter() {
                let _ = writeln!(out, "snapembed_http_requests_total{{route=\"{route}\",method=\"{method}\",status=\"{status}\"}} {n}");
            }
        }
        out.push_str("# HELP snapembed_http_request_duration_seconds Request latency by route.\n");
        out.push_str("# TYPE snapembed_http_request_duration_seconds histogram\n");
        if let Ok(m) = self.latency.lock() {
            for (route, h) in m.iter() {
                for (b, c) in BUCKETS.iter().zip(h.counts) {
                    let _ = writeln!(out, "snapembed_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{b}\"}} {c}");
                }
                let _ = writeln!(out, "snapembed_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}", h.count);
                let _ = writeln!(out, "snapembed_http_request_duration_seconds_sum{{route=\"{route}\"}} {}", h.sum);
                let _ = writeln!(out, "snapembed_http_request_duration_seconds_count{{route=\"{route}\"}} {}", h.count);
            }
        }
        if let Ok(h) = self.searches.lock() {
            let name = "snapembed_search_duration_seconds";
            let _ = write!(out, "# HELP snapembed_searches_total Corpus searches answered.\n# TYPE snapembed_searches_total counter\nsnapembed_searches_total {}\n", h.count);
            let _ = write!(out, "# HELP {name} Corpus search latency: query embedding and scan.\n# TYPE {name} histogram\n");
            for (b, c) in BUCKETS.iter().zip(h.counts) {
                let _ = writeln!(out, "{name}_bucket{{le=\"{b}\"}} {c}");
            }
            let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {}\n{name}_sum {}\n{name}_count {}", h.count, h.sum, h.count);
        }
        for (name, help, v) in [
            ("snapembed_embedded_texts_total", "Texts embedded.", self.texts.load(Ordering::Relaxed)),
            ("snapembed_embedded_tokens_total", "Tokens embedded, special tokens included.", self.tokens.load(Ordering::Relaxed)),
        ] {
            let _ = write!(out, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}\n");
        }
        for (name, help, v) in gauges {
            let _ = write!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}\n");
        }
        out
    }
}

/// One series of one sample in the exposition format, for values kept elsewhere.
pub fn exposition(name: &str, kind: &str, help: &str, value: f64) -> String {
    format!("# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_cumulative_buckets() {
        let m = Metrics::default();
        m.record_request("/embed", "POST", 200, Duration::from_millis(7));
        m.record_request("/embed", "POST", 200, Duration::from_millis(70));
        m.record_embedded(3, 42);
        m.record_search(Duration::from_millis(3));
        let text = m.render(&[("snapembed_rss_bytes", "RSS.", 1.0)]);
        assert!(text.contains("snapembed_http_requests_total{route=\"/embed\",method=\"POST\",status=\"200\"} 2"));
        assert!(text.contains("le=\"0.01\"} 1"), "{text}");
        assert!(text.contains("le=\"0.1\"} 2"));
        assert!(text.contains("snapembed_embedded_tokens_total 42"));
        assert!(text.contains("snapembed_rss_bytes 1"));
        assert!(text.contains("snapembed_searches_total 1"));
        assert!(text.contains("snapembed_search_duration_seconds_bucket{le=\"0.005\"} 1"), "{text}");
    }
}
