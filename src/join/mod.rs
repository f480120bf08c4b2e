//! The join of a closed window: forward path + reverse path + the service
//! behind the target, with caches that carry the last value of a reverse
//! path or a service across windows in which it did not report.
//!
//! Exactly the old aggregator's rules (SPEC.md, "Join"): an entry is
//! replaced whole, nulls included; among several instances of one SFR in a
//! window the greatest `(endpoint, sf_instance)` wins; a row needs all six
//! values. It writes rows; it never parses input or decides lateness.

use std::hash::BuildHasher;
use std::sync::Arc;

use foldhash::fast::FixedState;
use foldhash::{HashMap, HashSet};

use crate::lp::write::{is_portable, Line, MAX_SERIES_KEY};
use crate::schema::{
    field, NetworkMeans, NetworkSeries, SeriesKey, ServiceMeans, WindowEnd, WindowStart,
};
use crate::settings::Settings;
use crate::window::Window;

mod row;
mod verdict;

use row::{check_fields, describe, Row, RowText};
pub use verdict::NoRow;

/// Expired keys remembered per cache when asked ([`Join::remember_expired`]).
pub const EXPIRED_CAP: usize = 1_000_000;

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
    /// Rows written whose reverse latency came from an earlier window.
    pub reverse_cached: u64,
    /// Rows written whose service came from an earlier window.
    pub service_cached: u64,
    /// Rows that could not be written.
    pub unwritable: Vec<Unwritable>,
}

/// The keys of cache entries freed by `--cache-ttl` and not reported
/// since, as 64-bit hashes: kept only when an observer asks why rows are
/// missing, so that "expired" can be told from "never reported". At most
/// [`EXPIRED_CAP`] per cache; an expiry past that reads as "never".
#[derive(Debug, Default)]
struct Expired {
    network: HashSet<u64>,
    service: HashSet<u64>,
}

fn key_hash(key: &[u8]) -> u64 {
    FixedState::with_seed(0).hash_one(key)
}

/// The caches of the join.
#[derive(Debug)]
pub struct Join {
    /// Network series by key.
    network: HashMap<SeriesKey, NetEntry>,
    /// Services by SFR.
    service: HashMap<Box<[u8]>, SvcEntry>,
    /// The row text of forward series that are in `network` (derived:
    /// not saved in a state file).
    rows: HashMap<SeriesKey, RowText>,
    settings: Arc<Settings>,
    /// Freed keys, when remembered.
    expired: Option<Box<Expired>>,
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
            rows: HashMap::default(),
            settings,
            expired: None,
        }
    }

    /// A copy of both caches (what a state file holds; the derived row
    /// text is left out).
    pub fn caches(&self) -> Caches {
        Caches {
            network: self.network.clone(),
            service: self.service.clone(),
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

    /// From now on, remembers the keys that `--cache-ttl` frees, so that
    /// a verdict can say [`NoRow::Expired`] (for `analyze`; a processor
    /// needs no such memory).
    pub fn remember_expired(&mut self) {
        self.expired.get_or_insert_with(Box::default);
    }

    /// Entries held in both caches.
    pub fn len(&self) -> usize {
        self.network.len() + self.service.len()
    }

    /// Whether both caches are empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Joins a closed window and appends its rows to `out`. `seen` is told
    /// the verdict of each forward series, in row order.
    pub fn close(
        &mut self,
        start: WindowStart,
        window: &Window,
        out: &mut Vec<u8>,
        mut seen: impl FnMut(&NetworkSeries<'_>, Result<(), NoRow>),
    ) -> Closed {
        self.expire(start);
        let end = start.end(self.settings.period);
        for (key, means) in &window.network {
            let entry = NetEntry {
                latency: means.latency.value(),
                updated: end,
            };
            let new = upsert(&mut self.network, key.as_bytes(), entry, |k| {
                SeriesKey::from_encoded(k)
            });
            if let (true, Some(expired)) = (new, &mut self.expired) {
                expired.network.remove(&key_hash(key.as_bytes()));
            }
        }
        self.update_services(window, end);

        let mut forward: Vec<_> = window
            .network
            .iter()
            .map(|(key, means)| (key.network(), key, means))
            .collect();
        forward.sort_unstable_by(|a, b| a.0.cmp(&b.0));

        let mut closed = Closed::default();
        let mut rows = std::mem::take(&mut self.rows);
        for (series, key, means) in forward {
            let text = match rows.get_mut(key.as_bytes()) {
                Some(text) => text,
                None => rows.entry(key.clone()).or_insert(RowText::new(&series)),
            };
            let verdict = self.verdict(&series, means, text);
            match &verdict {
                Ok(row) => {
                    self.write_row(out, start, row);
                    closed.rows += 1;
                    closed.reverse_cached += u64::from(row.reverse_from != end);
                    closed.service_cached += u64::from(row.service.updated != end);
                }
                Err(NoRow::Unwritable(reason)) => closed.unwritable.push(Unwritable {
                    series: describe(&series),
                    reason,
                }),
                Err(_) => {}
            }
            seen(&series, verdict.map(|_| ()));
        }
        self.rows = rows;
        closed
    }

    /// Whether a forward series gets a row in this window, and if not the
    /// first reason why, in SPEC.md's order: no service, no reverse, an
    /// expired entry, a null value (the first in row order), unwritable.
    /// The one place this is decided, for the rows and for `analyze`.
    fn verdict<'a>(
        &'a self,
        series: &NetworkSeries<'_>,
        means: &NetworkMeans,
        text: &'a mut RowText,
    ) -> Result<Row<'a>, NoRow> {
        let reverse_key = &text.reverse;
        let (service, reverse) = match (
            self.service.get(series.target),
            self.network.get(&**reverse_key),
        ) {
            (Some(service), Some(reverse)) => (service, reverse),
            (None, _) if !self.was_expired(false, series.target) => return Err(NoRow::NoService),
            (_, None) if !self.was_expired(true, reverse_key) => return Err(NoRow::NoReverse),
            _ => return Err(NoRow::Expired),
        };
        let values = [
            means.latency.value(),
            reverse.latency,
            service.response_time,
            service.request_size,
            service.response_size,
            means.bandwidth.value(),
        ];
        if let Some(null) = values.iter().position(Option::is_none) {
            return Err(NoRow::Null(null));
        }
        let values = values.map(Option::unwrap_or_default);
        check_fields(&values).map_err(NoRow::Unwritable)?;
        let series = text
            .series(self, series, service)
            .map_err(NoRow::Unwritable)?;
        Ok(Row {
            service,
            series,
            values,
            reverse_from: reverse.updated,
        })
    }

    /// Whether a key missing from the network (`network`) or service cache
    /// was freed by `--cache-ttl` (known only when remembered).
    fn was_expired(&self, network: bool, key: &[u8]) -> bool {
        self.expired.as_ref().is_some_and(|e| {
            let set = if network { &e.network } else { &e.service };
            set.contains(&key_hash(key))
        })
    }

    /// Writes a row; with `--age-fields`, how old its reverse latency and
    /// its service are: `end − updated` = this window's start − the start
    /// of the window the mean came from, in seconds.
    fn write_row(&self, out: &mut Vec<u8>, start: WindowStart, row: &Row<'_>) {
        out.extend_from_slice(row.series);
        let mut line = Line::after_series(out);
        for (k, v) in field::ROW.iter().zip(row.values) {
            line = line.float_plain_key(k, v);
        }
        if self.settings.age_fields {
            let end = start.end(self.settings.period);
            let age = |from: WindowEnd| (i128::from(end.0) - i128::from(from.0)) as f64 / 1e9;
            line = line
                .float_plain_key(field::AGES[0], age(row.reverse_from))
                .float_plain_key(field::AGES[1], age(row.service.updated));
        }
        line.finish(start.0 / self.settings.unit);
    }

    /// Why a row cannot be written in the portable subset, if it cannot.
    #[cfg(test)]
    fn check(&self, tags: &[(&[u8], &[u8]); 5], fields: &[f64; 6]) -> Result<(), &'static str> {
        check_fields(fields)?;
        self.check_tags(tags)
    }

    /// Why a row's measurement and tags cannot be written in the portable
    /// subset, if they cannot.
    fn check_tags(&self, tags: &[(&[u8], &[u8]); 5]) -> Result<(), &'static str> {
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
            let new = upsert(&mut self.service, sfr, entry, |k| k.into());
            if let (true, Some(expired)) = (new, &mut self.expired) {
                expired.service.remove(&key_hash(sfr));
            }
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
        let rows = &mut self.rows;
        let mut free_row = |key: &SeriesKey| {
            rows.remove(key.as_bytes());
        };
        let Some(expired) = &mut self.expired else {
            self.network.retain(|k, e| {
                live(e.updated) || {
                    free_row(k);
                    false
                }
            });
            self.service.retain(|_, e| live(e.updated));
            return;
        };
        let remember = |set: &mut HashSet<u64>, key: &[u8]| {
            if set.len() < EXPIRED_CAP {
                set.insert(key_hash(key));
            }
        };
        self.network.retain(|k, e| {
            live(e.updated) || {
                remember(&mut expired.network, k.as_bytes());
                free_row(k);
                false
            }
        });
        self.service.retain(|k, e| {
            live(e.updated) || {
                remember(&mut expired.service, k);
                false
            }
        });
    }
}

/// Replaces a cache entry whole. Most series report in every window, so the
/// entry is replaced in place and a key allocated only for a new one.
/// Returns whether the key is new.
fn upsert<K, V>(
    cache: &mut HashMap<K, V>,
    key: &[u8],
    value: V,
    own: impl FnOnce(&[u8]) -> K,
) -> bool
where
    K: std::borrow::Borrow<[u8]> + std::hash::Hash + Eq,
{
    match cache.get_mut(key) {
        Some(slot) => {
            *slot = value;
            false
        }
        None => {
            cache.insert(own(key), value);
            true
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Options;
    use crate::schema::tag;

    fn join(output: &str) -> Join {
        let o = Options::load(["e2e-aggregator", "--output-measurement", output]).unwrap();
        Join::new(Arc::new(Settings::new(&o)))
    }

    #[test]
    fn the_series_key_limit_counts_escapes_as_written() {
        // The measurement `m=x` is written as is ('=' is escaped only in
        // tags), so its key is 3 + 56 (tag keys, ',' and '=') + the values.
        let fields = [1.0; 6];
        let check = |measurement: &str, path: &[u8]| {
            let tags: [(&[u8], &[u8]); 5] = [
                (tag::ENDPOINT, b"e"),
                (tag::PATH_ID, path),
                (tag::SF_INSTANCE, b"i"),
                (tag::SOURCE_SFR, b"s"),
                (tag::TARGET_SFR, b"t"),
            ];
            join(measurement).check(&tags, &fields)
        };
        let too_long = Err("the series key is too long for InfluxDB");
        // 3 + 56 + 4 + path + 17 (`avg_response_size`) < 65535.
        assert_eq!(check("m=x", &[b'a'; 65_454]), Ok(()));
        assert_eq!(check("m=x", &[b'a'; 65_455]), too_long);
        // A tag value's ',' is escaped: one byte more.
        let path = [vec![b'a'; 65_455], b",".to_vec()].concat();
        assert_eq!(check("m", &path), too_long);
    }
}
