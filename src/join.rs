//! The join of a closed window: forward path + reverse path + the service
//! behind the target, with caches that carry the last value of a reverse
//! path or a service across windows in which it did not report.
//!
//! Exactly the old aggregator's rules (SPEC.md, "Join"): an entry is
//! replaced whole, nulls included; among several instances of one SFR in a
//! window the greatest `(endpoint, sf_instance)` wins; a row needs all six
//! values.

use foldhash::HashMap;

use crate::lp::write::{is_portable, Line, MAX_SERIES_KEY};
use crate::window::{key, Mean, Window, WindowStart};

/// A cached network series: its mean latency in the window it last
/// reported in. (Only a reverse path is ever taken from the cache, and only
/// its latency; a forward path's values always come from its own window.)
#[derive(Debug, Clone)]
struct NetEntry {
    latency: Option<f64>,
    /// End of the window the entry was last updated in, in ns.
    updated_end: i64,
}

/// A cached service: the winning instance of its SFR in the window it last
/// reported in.
#[derive(Debug, Clone)]
struct SvcEntry {
    endpoint: Box<[u8]>,
    sf_instance: Box<[u8]>,
    response_time: Option<f64>,
    request_size: Option<f64>,
    response_size: Option<f64>,
    updated_end: i64,
}

/// What the output rows look like.
#[derive(Debug, Clone)]
pub struct RowFormat {
    /// The measurement of the rows.
    pub measurement: Vec<u8>,
    /// Nanoseconds per unit of the row timestamps.
    pub unit: i64,
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
#[derive(Debug)]
pub struct Join {
    network: HashMap<Box<[u8]>, NetEntry>,
    service: HashMap<Box<[u8]>, SvcEntry>,
    period: i64,
    ttl: Option<i64>,
    format: RowFormat,
}

/// A service series of a window: its key parts and means.
type Instance<'w> = ([&'w [u8]; 3], &'w [Mean; 3]);

/// The longest field key of a row, for InfluxDB's series-key limit.
const LONGEST_FIELD: usize = "avg_response_size".len();

impl Join {
    /// Empty caches. `period` and `ttl` are in ns.
    pub fn new(period: i64, ttl: Option<i64>, format: RowFormat) -> Self {
        Join {
            network: HashMap::default(),
            service: HashMap::default(),
            period,
            ttl,
            format,
        }
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
        self.expire(start.0);
        let end = start.0 + self.period;
        for (k, [lat, _]) in &window.network {
            let entry = NetEntry {
                latency: lat.value(),
                updated_end: end,
            };
            upsert(&mut self.network, k, entry);
        }
        self.update_services(&window, end);

        let mut forward: Vec<([&[u8]; 3], &[Mean; 2])> = window
            .network
            .iter()
            .map(|(k, m)| (key::decode(k), m))
            .collect();
        forward.sort_unstable_by(|a, b| a.0.cmp(&b.0));

        let mut closed = Closed::default();
        let mut scratch = Vec::new();
        for ([path, source, target], [lat, bw]) in forward {
            let Some(svc) = self.service.get(target) else {
                continue;
            };
            scratch.clear();
            key::encode([path, target, source], &mut scratch);
            let Some(reverse) = self.network.get(scratch.as_slice()) else {
                continue;
            };
            let values = [
                lat.value(),
                reverse.latency,
                svc.response_time,
                svc.request_size,
                svc.response_size,
                bw.value(),
            ];
            let [Some(fwd), Some(rev), Some(rt), Some(req), Some(resp), Some(bandwidth)] = values
            else {
                continue;
            };
            let tags: [(&[u8], &[u8]); 5] = [
                (b"endpoint", &svc.endpoint),
                (b"path_ID", path),
                (b"sf_instance", &svc.sf_instance),
                (b"source_SFR", source),
                (b"target_SFR", target),
            ];
            let fields = [fwd, rev, rt, req, resp, bandwidth];
            match self.check(&tags, &fields) {
                Ok(()) => {
                    let mut line = Line::new(out, &self.format.measurement);
                    for (k, v) in tags {
                        line = line.tag(k, v);
                    }
                    line.float(b"delay_forward", fwd)
                        .float(b"delay_reverse", rev)
                        .float(b"delay_service", rt)
                        .float(b"avg_request_size", req)
                        .float(b"avg_response_size", resp)
                        .float(b"avg_bandwidth", bandwidth)
                        .finish(start.0 / self.format.unit);
                    closed.rows += 1;
                }
                Err(reason) => closed.unwritable.push(Unwritable {
                    series: format!(
                        "path={} source={} target={}",
                        path.escape_ascii(),
                        source.escape_ascii(),
                        target.escape_ascii()
                    ),
                    reason,
                }),
            }
        }
        closed
    }

    /// Why a row cannot be written in the portable subset, if it cannot.
    fn check(&self, tags: &[(&[u8], &[u8]); 5], fields: &[f64; 6]) -> Result<(), &'static str> {
        if fields.iter().any(|f| !f.is_finite()) {
            return Err("a mean is not finite");
        }
        if tags.iter().any(|(_, v)| !is_portable(v)) {
            return Err("a tag value holds a backslash, a control character or invalid UTF-8");
        }
        let escaped = |t: &[u8]| t.len() + t.iter().filter(|b| b" ,=".contains(b)).count();
        let series_key = escaped(&self.format.measurement)
            + tags
                .iter()
                .map(|(k, v)| 2 + k.len() + escaped(v))
                .sum::<usize>();
        if series_key + LONGEST_FIELD >= MAX_SERIES_KEY {
            return Err("the series key is too long for InfluxDB");
        }
        Ok(())
    }

    /// Caches each SFR's winning instance of this window.
    fn update_services(&mut self, window: &Window, end: i64) {
        let mut winners: HashMap<&[u8], Instance<'_>> = HashMap::default();
        for (k, means) in &window.service {
            let parts = key::decode(k);
            let best = winners.entry(parts[0]).or_insert((parts, means));
            if (parts[1], parts[2]) > (best.0[1], best.0[2]) {
                *best = (parts, means);
            }
        }
        for (sfr, ([_, endpoint, sf_instance], [rt, req, resp])) in winners {
            let entry = SvcEntry {
                endpoint: endpoint.into(),
                sf_instance: sf_instance.into(),
                response_time: rt.value(),
                request_size: req.value(),
                response_size: resp.value(),
                updated_end: end,
            };
            upsert(&mut self.service, sfr, entry);
        }
    }

    /// Frees the entries that can serve neither the window starting at
    /// `start` nor any later one.
    fn expire(&mut self, start: i64) {
        let Some(ttl) = self.ttl else { return };
        let live =
            |updated_end: i64| (i128::from(start) - i128::from(updated_end)) < i128::from(ttl);
        self.network.retain(|_, e| live(e.updated_end));
        self.service.retain(|_, e| live(e.updated_end));
    }
}

/// Replaces a cache entry whole. Most series report in every window, so the
/// entry is replaced in place and a key allocated only for a new one.
fn upsert<V>(cache: &mut HashMap<Box<[u8]>, V>, key: &[u8], value: V) {
    match cache.get_mut(key) {
        Some(slot) => *slot = value,
        None => {
            cache.insert(key.into(), value);
        }
    }
}
