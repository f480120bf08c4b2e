//! The join of a closed window: forward path + reverse path + the service
//! behind the target, with caches that carry the last value of a reverse
//! path or a service across windows in which it did not report.
//!
//! Exactly the old aggregator's rules (SPEC.md, "Join"): an entry is
//! replaced whole, nulls included; among several instances of one SFR in a
//! window the greatest `(endpoint, sf_instance)` wins; a row needs all six
//! values. It writes rows; it never parses input or decides lateness.

use std::sync::Arc;

use foldhash::HashMap;

use crate::lp::write::{is_portable, Line, MAX_SERIES_KEY};
use crate::schema::{field, tag, NetworkSeries, SeriesKey, ServiceMeans, WindowEnd, WindowStart};
use crate::settings::Settings;
use crate::window::Window;

/// A cached network series: its mean latency in the window it last
/// reported in. (Only a reverse path is ever taken from the cache, and only
/// its latency; a forward path's values always come from its own window.)
#[derive(Debug, Clone, PartialEq)]
pub struct NetEntry {
    /// Mean latency, `None` when that window carried none.
    pub latency: Option<f64>,
    /// End of the window the entry was last updated in.
    pub updated: WindowEnd,
}

/// A cached service: the winning instance of its SFR in the window it last
/// reported in.
#[derive(Debug, Clone, PartialEq)]
pub struct SvcEntry {
    /// Endpoint of the winning instance.
    pub endpoint: Box<[u8]>,
    /// The winning instance.
    pub sf_instance: Box<[u8]>,
    /// Mean response time.
    pub response_time: Option<f64>,
    /// Mean request size.
    pub request_size: Option<f64>,
    /// Mean response size.
    pub response_size: Option<f64>,
    /// End of the window the entry was last updated in.
    pub updated: WindowEnd,
}

/// Both caches, as a state file holds them.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Caches {
    /// Network series by key.
    pub network: HashMap<SeriesKey, NetEntry>,
    /// Services by SFR.
    pub service: HashMap<Box<[u8]>, SvcEntry>,
}

/// A row that could not be written in the portable subset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unwritable {
    /// The forward series, for the warning.
    pub series: String,
    /// Why.
    pub reason: &'static str,
}

/// What closing a window produced.
#[derive(Debug, Default)]
pub struct Closed {
    /// Rows written.
    pub rows: u64,
    /// Rows that could not be written.
    pub unwritable: Vec<Unwritable>,
}

/// The caches of the join.
#[derive(Debug, Clone)]
pub struct Join {
    /// Network series by key.
    network: HashMap<SeriesKey, NetEntry>,
    /// Services by SFR.
    service: HashMap<Box<[u8]>, SvcEntry>,
    settings: Arc<Settings>,
}

impl Join {
    /// Empty caches.
    pub fn new(settings: Arc<Settings>) -> Self {
        Join::from_caches(settings, Caches::default())
    }

    /// The join with caches a state file restored.
    pub fn from_caches(settings: Arc<Settings>, caches: Caches) -> Self {
        Join {
            network: caches.network,
            service: caches.service,
            settings,
        }
    }

    /// The cached network series.
    pub fn network_entries(&self) -> impl Iterator<Item = (&SeriesKey, &NetEntry)> {
        self.network.iter()
    }

    /// The cached services, by SFR.
    pub fn service_entries(&self) -> impl Iterator<Item = (&[u8], &SvcEntry)> {
        self.service.iter().map(|(k, v)| (&**k, v))
    }

    /// Entries held in both caches.
    pub fn len(&self) -> usize {
        self.network.len() + self.service.len()
    }

    /// Whether both caches are empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Joins a closed window and appends its rows to `out`.
    pub fn close(&mut self, start: WindowStart, window: Window, out: &mut Vec<u8>) -> Closed {
        self.expire(start);
        let end = start.end(self.settings.period);
        for (key, means) in &window.network {
            let entry = NetEntry {
                latency: means.latency.value(),
                updated: end,
            };
            upsert(&mut self.network, key.as_bytes(), entry, |k| {
                SeriesKey::from_encoded(k)
            });
        }
        self.update_services(&window, end);

        let mut forward: Vec<_> = window
            .network
            .iter()
            .map(|(key, means)| (key.network(), means))
            .collect();
        forward.sort_unstable_by(|a, b| a.0.cmp(&b.0));

        let mut closed = Closed::default();
        let mut reverse_key = Vec::new();
        for (series, means) in forward {
            let Some(svc) = self.service.get(series.target) else {
                continue;
            };
            reverse_key.clear();
            series.reverse_key(&mut reverse_key);
            let Some(reverse) = self.network.get(reverse_key.as_slice()) else {
                continue;
            };
            let values = [
                means.latency.value(),
                reverse.latency,
                svc.response_time,
                svc.request_size,
                svc.response_size,
                means.bandwidth.value(),
            ];
            let [Some(fwd), Some(rev), Some(rt), Some(req), Some(resp), Some(bw)] = values else {
                continue;
            };
            let fields = [fwd, rev, rt, req, resp, bw];
            let tags: [(&[u8], &[u8]); 5] = [
                (tag::ENDPOINT, &svc.endpoint),
                (tag::PATH_ID, series.path),
                (tag::SF_INSTANCE, &svc.sf_instance),
                (tag::SOURCE_SFR, series.source),
                (tag::TARGET_SFR, series.target),
            ];
            match self.check(&tags, &fields) {
                Ok(()) => {
                    self.write_row(out, start, &tags, &fields);
                    closed.rows += 1;
                }
                Err(reason) => closed.unwritable.push(Unwritable {
                    series: describe(&series),
                    reason,
                }),
            }
        }
        closed
    }

    fn write_row(
        &self,
        out: &mut Vec<u8>,
        start: WindowStart,
        tags: &[(&[u8], &[u8]); 5],
        fields: &[f64; 6],
    ) {
        let mut line = Line::new(out, &self.settings.output);
        for (k, v) in tags {
            line = line.tag(k, v);
        }
        for (k, v) in field::ROW.iter().zip(fields) {
            line = line.float(k, *v);
        }
        line.finish(start.0 / self.settings.unit);
    }

    /// Why a row cannot be written in the portable subset, if it cannot.
    fn check(&self, tags: &[(&[u8], &[u8]); 5], fields: &[f64; 6]) -> Result<(), &'static str> {
        if fields.iter().any(|f| !f.is_finite()) {
            return Err("a mean is not finite");
        }
        if tags.iter().any(|(_, v)| !is_portable(v)) {
            return Err("a tag value holds a backslash, a control character or invalid UTF-8");
        }
        // As written: the measurement escapes space and comma, tag keys
        // and values also '='.
        let escaped =
            |t: &[u8], specials: &[u8]| t.len() + t.iter().filter(|b| specials.contains(b)).count();
        let series_key = escaped(&self.settings.output, b" ,")
            + tags
                .iter()
                .map(|(k, v)| 2 + escaped(k, b" ,=") + escaped(v, b" ,="))
                .sum::<usize>();
        if series_key + field::LONGEST_ROW >= MAX_SERIES_KEY {
            return Err("the series key is too long for InfluxDB");
        }
        Ok(())
    }

    /// Caches each SFR's winning instance of this window: the greatest
    /// `(endpoint, sf_instance)`, as InfluxDB's series order has it last.
    fn update_services(&mut self, window: &Window, end: WindowEnd) {
        let mut winners: HashMap<&[u8], (_, &ServiceMeans)> = HashMap::default();
        for (key, means) in &window.service {
            let s = key.service();
            let best = winners.entry(s.sfr).or_insert((s, means));
            if (s.endpoint, s.sf_instance) > (best.0.endpoint, best.0.sf_instance) {
                *best = (s, means);
            }
        }
        for (sfr, (s, means)) in winners {
            let entry = SvcEntry {
                endpoint: s.endpoint.into(),
                sf_instance: s.sf_instance.into(),
                response_time: means.response_time.value(),
                request_size: means.request_size.value(),
                response_size: means.response_size.value(),
                updated: end,
            };
            upsert(&mut self.service, sfr, entry, |k| k.into());
        }
    }

    /// Frees the entries that can serve neither the window starting at
    /// `start` nor any later one.
    fn expire(&mut self, start: WindowStart) {
        let Some(ttl) = self.settings.cache_ttl else {
            return;
        };
        let live =
            |updated: WindowEnd| (i128::from(start.0) - i128::from(updated.0)) < i128::from(ttl);
        self.network.retain(|_, e| live(e.updated));
        self.service.retain(|_, e| live(e.updated));
    }
}

/// A forward series as the warnings name it.
fn describe(s: &NetworkSeries<'_>) -> String {
    format!(
        "path={} source={} target={}",
        s.path.escape_ascii(),
        s.source.escape_ascii(),
        s.target.escape_ascii()
    )
}

/// Replaces a cache entry whole. Most series report in every window, so the
/// entry is replaced in place and a key allocated only for a new one.
fn upsert<K, V>(cache: &mut HashMap<K, V>, key: &[u8], value: V, own: impl FnOnce(&[u8]) -> K)
where
    K: std::borrow::Borrow<[u8]> + std::hash::Hash + Eq,
{
    match cache.get_mut(key) {
        Some(slot) => *slot = value,
        None => {
            cache.insert(own(key), value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Options;

    fn join(output: &str) -> Join {
        let o = Options::load(["e2e-aggregator", "--output-measurement", output]).unwrap();
        Join::new(Arc::new(Settings::new(&o)))
    }

    #[test]
    fn the_series_key_limit_counts_escapes_as_written() {
        // The measurement `m=x` is written as is ('=' is escaped only in
        // tags), so its key is 3 + 56 (tag keys, ',' and '=') + the values.
        let j = join("m=x");
        let fields = [1.0; 6];
        let check = |path_len: usize| {
            let path = vec![b'a'; path_len];
            let tags: [(&[u8], &[u8]); 5] = [
                (tag::ENDPOINT, b"e"),
                (tag::PATH_ID, &path),
                (tag::SF_INSTANCE, b"i"),
                (tag::SOURCE_SFR, b"s"),
                (tag::TARGET_SFR, b"t"),
            ];
            j.check(&tags, &fields)
        };
        // 3 + 56 + 4 + path + 17 (`avg_response_size`) < 65535.
        assert_eq!(check(65_454), Ok(()));
        assert_eq!(
            check(65_455),
            Err("the series key is too long for InfluxDB")
        );
        // A tag value's ',' is escaped: one byte more.
        let j = join("m");
        let path = [vec![b'a'; 65_455], b",".to_vec()].concat();
        let tags: [(&[u8], &[u8]); 5] = [
            (tag::ENDPOINT, b"e"),
            (tag::PATH_ID, &path),
            (tag::SF_INSTANCE, b"i"),
            (tag::SOURCE_SFR, b"s"),
            (tag::TARGET_SFR, b"t"),
        ];
        assert!(j.check(&tags, &fields).is_err());
    }
}
