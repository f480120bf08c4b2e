//! The state file's format: a versioned JSON document of its own, converted
//! to and from the engine's window state and caches, so the in-memory
//! layout can change without changing the file.
//!
//! Exact by construction: every f64 (a running sum, a cached mean) is
//! written as the shortest text that reads back as the same bits (ryu),
//! with `inf`, `-inf` and `NaN` spelled out; integer sums (128 bits) as
//! decimal strings; tag values as text when they are UTF-8, else as hex.
//! Entries are sorted, so saving the same state twice gives the same
//! bytes. Reading checks everything a damaged or foreign file could get
//! wrong and says what, in one line.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::join::{Caches, Join, NetEntry, SvcEntry};
use crate::schema::{
    Mean, NetworkMeans, SeriesKey, ServiceMeans, WindowEnd, WindowStart, TIME_MAX, TIME_MIN,
};
use crate::settings::Settings;
use crate::window::{Window, Windows};

use super::StateId;

/// The format version this program writes. Every older one stays readable:
/// format 1 lacks `state_id`, `journal` and `wall` (a state from before
/// the journal); a later change of shape adds a struct of its own and
/// converts the old ones up in [`decode`].
pub const FORMAT: u32 = 2;

/// The largest journal sequence number a file may name: far more saves
/// than any life of a state sees, with room to count on.
const MAX_JOURNAL: u64 = 1 << 62;

/// Just the version, read first.
#[derive(Deserialize)]
struct Header {
    format: u32,
}

/// Formats 1 and 2.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Snapshot {
    /// 1 or 2.
    pub format: u32,
    /// The state's id, which its `PATH.closed` and journal files carry
    /// (format 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_id: Option<String>,
    /// The journal files this state covers: those numbered up to this
    /// (format 2; 0 before any).
    #[serde(default)]
    pub journal: u64,
    /// The newest wall clock, ns, that a live process holding this state
    /// saw: the frontier may have advanced by idle time up to it (format
    /// 2; absent if only replays held it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wall: Option<i64>,
    /// The options that give the state its meaning.
    pub options: Meaning,
    /// The closing frontier in ns; absent before any window closed.
    pub closed_until: Option<i64>,
    /// The largest timestamp accepted, in ns.
    pub max_ts: Option<i64>,
    /// The open windows, oldest first.
    pub windows: Vec<WindowV1>,
    /// The network cache, by key.
    pub network_cache: Vec<NetCacheV1>,
    /// The service cache, by SFR.
    pub service_cache: Vec<SvcCacheV1>,
}

/// The options a state only makes sense under.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Meaning {
    /// `--period` in ns.
    pub period_ns: i64,
    /// `--precision`: `s`, `ms`, `us` or `ns`.
    pub precision: String,
    /// `--network-measurement`.
    pub network_measurement: String,
    /// `--service-measurement`.
    pub service_measurement: String,
}

/// An open window.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WindowV1 {
    /// Its start, ns.
    pub start: i64,
    /// Network series and their running sums.
    pub network: Vec<NetSeriesV1>,
    /// Service series and their running sums.
    pub service: Vec<SvcSeriesV1>,
}

/// A network series in a window.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct NetSeriesV1 {
    /// `path` tag.
    pub path: Text,
    /// `source` tag.
    pub source: Text,
    /// `target` tag.
    pub target: Text,
    /// Running sum of `latency`.
    pub latency: MeanV1,
    /// Running sum of `bandwidth`.
    pub bandwidth: MeanV1,
}

/// A service series in a window.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SvcSeriesV1 {
    /// `sfr` tag.
    pub sfr: Text,
    /// `endpoint` tag.
    pub endpoint: Text,
    /// `sf_instance` tag.
    pub sf_instance: Text,
    /// Running sum of `response_time`.
    pub response_time: MeanV1,
    /// Running sum of `request_size`.
    pub request_size: MeanV1,
    /// Running sum of `response_size`.
    pub response_size: MeanV1,
}

/// A running mean exactly as held: count, exact integer sum, float sum.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MeanV1 {
    /// Values summed (signed, so that a negative count is reported as such).
    pub count: i64,
    /// Sum of the integer and unsigned values, decimal.
    pub ints: String,
    /// Sum of the float values.
    pub floats: F64,
}

/// A cached network series.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct NetCacheV1 {
    /// `path` tag.
    pub path: Text,
    /// `source` tag.
    pub source: Text,
    /// `target` tag.
    pub target: Text,
    /// Mean latency of the window it was last updated in (null: none).
    pub latency: Option<F64>,
    /// End of that window, ns.
    pub updated_end: i64,
}

/// A cached service.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SvcCacheV1 {
    /// `sfr` tag.
    pub sfr: Text,
    /// `endpoint` of the winning instance.
    pub endpoint: Text,
    /// `sf_instance` of the winning instance.
    pub sf_instance: Text,
    /// Mean response time (null: none).
    pub response_time: Option<F64>,
    /// Mean request size (null: none).
    pub request_size: Option<F64>,
    /// Mean response size (null: none).
    pub response_size: Option<F64>,
    /// End of the window it was last updated in, ns.
    pub updated_end: i64,
}

/// Bytes of a tag value: a string when they are UTF-8, else `{"hex": ..}`.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum Text {
    /// UTF-8 text.
    Utf8(String),
    /// Any other bytes, as lower-case hex.
    Bytes {
        /// Two hex digits per byte.
        hex: String,
    },
}

impl Text {
    fn of(bytes: &[u8]) -> Text {
        match std::str::from_utf8(bytes) {
            Ok(s) => Text::Utf8(s.to_owned()),
            Err(_) => Text::Bytes {
                hex: bytes.iter().map(|b| format!("{b:02x}")).collect(),
            },
        }
    }

    fn bytes(&self) -> Result<Vec<u8>, String> {
        match self {
            Text::Utf8(s) => Ok(s.as_bytes().to_vec()),
            Text::Bytes { hex } => {
                let digits = hex.as_bytes();
                if digits.len() % 2 != 0 {
                    return Err(format!("bad hex tag value {hex:?}"));
                }
                digits
                    .chunks(2)
                    .map(|pair| {
                        std::str::from_utf8(pair)
                            .ok()
                            .and_then(|p| u8::from_str_radix(p, 16).ok())
                            .ok_or_else(|| format!("bad hex tag value {hex:?}"))
                    })
                    .collect()
            }
        }
    }
}

/// An f64 as exact text: ryu's shortest round-trip form, or `inf`,
/// `-inf`, `NaN`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct F64(pub f64);

impl Serialize for F64 {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let v = self.0;
        if v.is_nan() {
            s.serialize_str("NaN")
        } else if v.is_infinite() {
            s.serialize_str(if v > 0.0 { "inf" } else { "-inf" })
        } else {
            s.serialize_str(ryu::Buffer::new().format_finite(v))
        }
    }
}

impl<'de> Deserialize<'de> for F64 {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        match text.as_str() {
            "NaN" => Ok(F64(f64::NAN)),
            "inf" => Ok(F64(f64::INFINITY)),
            "-inf" => Ok(F64(f64::NEG_INFINITY)),
            // Finite only: Rust's parser also takes "infinity" and the like.
            t if t
                .bytes()
                .all(|b| b.is_ascii_digit() || b"+-.eE".contains(&b)) =>
            {
                t.parse()
                    .map(F64)
                    .map_err(|_| serde::de::Error::custom(format!("bad float {t:?}")))
            }
            t => Err(serde::de::Error::custom(format!("bad float {t:?}"))),
        }
    }
}

fn precision_name(unit: i64) -> &'static str {
    match unit {
        1_000_000_000 => "s",
        1_000_000 => "ms",
        1_000 => "us",
        _ => "ns",
    }
}

fn mean_v1(m: &Mean) -> MeanV1 {
    MeanV1 {
        count: i64::try_from(m.count).unwrap_or(i64::MAX),
        ints: m.ints.to_string(),
        floats: F64(m.floats),
    }
}

/// The largest count a file may hold: far more values than one series
/// gets in one window, and small enough that the values added after a
/// restore cannot overflow the 128-bit integer sum.
const MAX_COUNT: u64 = 1 << 62;

fn mean(m: &MeanV1) -> Result<Mean, String> {
    let count = u64::try_from(m.count).map_err(|_| format!("negative count {}", m.count))?;
    if count > MAX_COUNT {
        return Err(format!("count {count} out of range"));
    }
    let ints: i128 = m
        .ints
        .parse()
        .map_err(|_| format!("bad integer sum {:?}", m.ints))?;
    if count == 0 && (ints != 0 || m.floats.0.to_bits() != 0) {
        return Err("a count of 0 with a sum".into());
    }
    // What `count` i64 and u64 values can sum to (no overflow: count < 2^63).
    let (least, most) = (i128::from(i64::MIN), i128::from(u64::MAX));
    let count_wide = i128::from(count);
    if !(count_wide * least..=count_wide * most).contains(&ints) {
        return Err(format!(
            "integer sum {ints} out of range for a count of {count}"
        ));
    }
    Ok(Mean {
        count,
        ints,
        floats: m.floats.0,
    })
}

/// What a snapshot says beside the engine's state: the state's id, the
/// journal files it covers, the newest wall clock seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The state's id (`None`: a format 1 file, from before ids).
    pub id: Option<StateId>,
    /// Journal files `..=journal` are covered.
    pub journal: u64,
    /// See [`Snapshot::wall`].
    pub wall: Option<i64>,
}

/// The state of `windows` and `join` under `settings`, as format 2.
pub fn capture(
    settings: &Settings,
    identity: &Identity,
    windows: &Windows,
    join: &Join,
) -> Snapshot {
    let closed = windows.closed_until().0;
    let mut snapshot = Snapshot {
        format: FORMAT,
        state_id: identity.id.as_ref().map(|id| id.0.clone()),
        journal: identity.journal,
        wall: identity.wall,
        options: Meaning {
            period_ns: settings.period,
            precision: precision_name(settings.unit).into(),
            network_measurement: String::from_utf8_lossy(&settings.network).into_owned(),
            service_measurement: String::from_utf8_lossy(&settings.service).into_owned(),
        },
        closed_until: (closed != i64::MIN).then_some(closed),
        max_ts: windows.max_ts(),
        windows: Vec::new(),
        network_cache: Vec::new(),
        service_cache: Vec::new(),
    };
    for (start, window) in windows.open() {
        let mut network: Vec<_> = window.network.iter().collect();
        network.sort_unstable_by(|a, b| a.0.cmp(b.0));
        let mut service: Vec<_> = window.service.iter().collect();
        service.sort_unstable_by(|a, b| a.0.cmp(b.0));
        snapshot.windows.push(WindowV1 {
            start: start.0,
            network: network
                .into_iter()
                .map(|(k, m)| {
                    let s = k.network();
                    NetSeriesV1 {
                        path: Text::of(s.path),
                        source: Text::of(s.source),
                        target: Text::of(s.target),
                        latency: mean_v1(&m.latency),
                        bandwidth: mean_v1(&m.bandwidth),
                    }
                })
                .collect(),
            service: service
                .into_iter()
                .map(|(k, m)| {
                    let s = k.service();
                    SvcSeriesV1 {
                        sfr: Text::of(s.sfr),
                        endpoint: Text::of(s.endpoint),
                        sf_instance: Text::of(s.sf_instance),
                        response_time: mean_v1(&m.response_time),
                        request_size: mean_v1(&m.request_size),
                        response_size: mean_v1(&m.response_size),
                    }
                })
                .collect(),
        });
    }
    let mut network: Vec<_> = join.network_entries().collect();
    network.sort_unstable_by(|a, b| a.0.cmp(b.0));
    snapshot.network_cache = network
        .into_iter()
        .map(|(k, e)| {
            let s = k.network();
            NetCacheV1 {
                path: Text::of(s.path),
                source: Text::of(s.source),
                target: Text::of(s.target),
                latency: e.latency.map(F64),
                updated_end: e.updated.0,
            }
        })
        .collect();
    let mut service: Vec<_> = join.service_entries().collect();
    service.sort_unstable_by(|a, b| a.0.cmp(b.0));
    snapshot.service_cache = service
        .into_iter()
        .map(|(sfr, e)| SvcCacheV1 {
            sfr: Text::of(sfr),
            endpoint: Text::of(&e.endpoint),
            sf_instance: Text::of(&e.sf_instance),
            response_time: e.response_time.map(F64),
            request_size: e.request_size.map(F64),
            response_size: e.response_size.map(F64),
            updated_end: e.updated.0,
        })
        .collect();
    snapshot
}

/// The file's bytes for a snapshot.
pub fn encode(snapshot: &Snapshot) -> Vec<u8> {
    let mut out = serde_json::to_vec(snapshot).unwrap_or_default();
    out.push(b'\n');
    out
}

/// Reads a state file's bytes, whatever format version wrote them.
pub fn decode(bytes: &[u8]) -> Result<Snapshot, String> {
    let header: Header =
        serde_json::from_slice(bytes).map_err(|e| format!("cannot be parsed: {e}"))?;
    let snapshot: Snapshot = match header.format {
        1 | 2 => serde_json::from_slice(bytes).map_err(|e| format!("cannot be parsed: {e}"))?,
        v => {
            return Err(format!(
                "unknown format version {v} (this program reads 1 and 2)"
            ))
        }
    };
    let v2 = [
        snapshot.state_id.is_some(),
        snapshot.journal > 0,
        snapshot.wall.is_some(),
    ];
    match (snapshot.format, &snapshot.state_id) {
        (1, _) if v2.contains(&true) => Err("format 1 with fields of format 2".into()),
        (2, None) => Err("no state_id".into()),
        (2, Some(id)) if StateId::parse(id).is_none() => Err(format!("bad state_id {id:?}")),
        (_, _) if snapshot.journal > MAX_JOURNAL => {
            Err(format!("journal {} out of range", snapshot.journal))
        }
        _ => Ok(snapshot),
    }
}

/// What a restore yields: the window state and caches, checked.
pub struct Restored {
    /// The window state.
    pub windows: Windows,
    /// The caches.
    pub caches: Caches,
    /// The id, the journal covered, the wall clock seen.
    pub identity: Identity,
}

/// A period in ns as `--period` is written (`5s`); a negative one, which
/// only a crafted file holds, as its number.
fn go_duration(ns: i64) -> String {
    u64::try_from(ns).map_or_else(
        |_| format!("{ns}ns"),
        |n| crate::duration::Duration::from_nanos(n).to_string(),
    )
}

/// Turns a snapshot back into engine state under `settings`, checking that
/// it was written under the same meaning and is consistent. `now` is the
/// wall clock, ns, when live: no time in the state may lie more than
/// `--max-future` ahead of it.
pub fn restore(
    snapshot: Snapshot,
    settings: &Arc<Settings>,
    now: Option<i64>,
) -> Result<Restored, String> {
    let o = &snapshot.options;
    let expected = [
        (
            "--period",
            go_duration(settings.period),
            go_duration(o.period_ns),
        ),
        (
            "--precision",
            precision_name(settings.unit).to_string(),
            o.precision.clone(),
        ),
        (
            "--network-measurement",
            String::from_utf8_lossy(&settings.network).into_owned(),
            o.network_measurement.clone(),
        ),
        (
            "--service-measurement",
            String::from_utf8_lossy(&settings.service).into_owned(),
            o.service_measurement.clone(),
        ),
    ];
    for (flag, now, then) in expected {
        if now != then {
            // Say what the operator loses by the refusal: the open
            // windows' rows (the caches fill again as points come).
            let lost = match snapshot.windows.len() {
                0 => "it holds no open window".to_string(),
                1 => "its 1 open window is not restored".to_string(),
                n => format!("its {n} open windows are not restored"),
            };
            return Err(format!("written with {flag} {then}, not {now}: {lost}"));
        }
    }
    let period = settings.period;
    let aligned = |t: i64| t.rem_euclid(period) == 0;
    if let Some(c) = snapshot.closed_until.filter(|&c| !aligned(c)) {
        return Err(format!("closed_until {c} is not aligned to the period"));
    }
    let saved_until = snapshot.closed_until.unwrap_or(i64::MIN);
    let identity = Identity {
        id: snapshot.state_id.as_deref().and_then(StateId::parse),
        journal: snapshot.journal,
        wall: snapshot.wall,
    };
    let max_ts = snapshot.max_ts;
    let bound = Bound::new(period, max_ts, identity.wall, now, settings.max_future);
    if let Some(m) = max_ts {
        bound.check("max_ts", m)?;
    }
    if let Some(c) = snapshot.closed_until {
        bound.check("closed_until", c)?;
    }
    let mut open = BTreeMap::new();
    for w in &snapshot.windows {
        let start = w.start;
        let end = start.checked_add(period).filter(|&e| e <= TIME_MAX);
        let Some(end) = end.filter(|_| aligned(start) && start >= TIME_MIN) else {
            return Err(format!("window {start} is not aligned to the period"));
        };
        if end <= saved_until {
            return Err(format!(
                "window {start} ends at or before closed_until {saved_until}"
            ));
        }
        if max_ts.is_none_or(|m| m < start) {
            return Err(format!(
                "window {start} starts after max_ts {}",
                max_ts.map_or("none".into(), |m| m.to_string())
            ));
        }
        let mut window = Window::default();
        for s in &w.network {
            let key = SeriesKey::new([&s.path.bytes()?, &s.source.bytes()?, &s.target.bytes()?]);
            let means = NetworkMeans {
                latency: mean(&s.latency)?,
                bandwidth: mean(&s.bandwidth)?,
            };
            if window.network.insert(key, means).is_some() {
                return Err(format!("a network series twice in window {start}"));
            }
        }
        for s in &w.service {
            let key = SeriesKey::new([
                &s.sfr.bytes()?,
                &s.endpoint.bytes()?,
                &s.sf_instance.bytes()?,
            ]);
            let means = ServiceMeans {
                response_time: mean(&s.response_time)?,
                request_size: mean(&s.request_size)?,
                response_size: mean(&s.response_size)?,
            };
            if window.service.insert(key, means).is_some() {
                return Err(format!("a service series twice in window {start}"));
            }
        }
        if open.insert(WindowStart(start), window).is_some() {
            return Err(format!("window {start} twice"));
        }
    }
    let mut caches = Caches::default();
    for e in &snapshot.network_cache {
        if !aligned(e.updated_end) {
            return Err(format!(
                "cache entry updated at {} is not aligned to the period",
                e.updated_end
            ));
        }
        let key = SeriesKey::new([&e.path.bytes()?, &e.source.bytes()?, &e.target.bytes()?]);
        let entry = NetEntry {
            latency: e.latency.map(|f| f.0),
            updated: WindowEnd(e.updated_end),
        };
        if caches.network.insert(key, entry).is_some() {
            return Err("a network series twice in the cache".into());
        }
    }
    for e in &snapshot.service_cache {
        if !aligned(e.updated_end) {
            return Err(format!(
                "cache entry updated at {} is not aligned to the period",
                e.updated_end
            ));
        }
        let entry = SvcEntry {
            endpoint: e.endpoint.bytes()?.into(),
            sf_instance: e.sf_instance.bytes()?.into(),
            response_time: e.response_time.map(|f| f.0),
            request_size: e.request_size.map(|f| f.0),
            response_size: e.response_size.map(|f| f.0),
            updated: WindowEnd(e.updated_end),
        };
        if caches
            .service
            .insert(e.sfr.bytes()?.into(), entry)
            .is_some()
        {
            return Err("an SFR twice in the service cache".into());
        }
    }
    Ok(Restored {
        windows: Windows::from_parts(period, WindowEnd(saved_until), max_ts, open),
        caches,
        identity,
    })
}

/// How far the times of a state may reach: a timestamp is accepted only
/// if its window lies in InfluxDB's time range, so `max_ts` is at most the
/// end of such a window; the frontier is at most the end of `max_ts`'s
/// window, or the newest wall clock a live process holding the state saw
/// (idle advance moves it by wall time); and live, nothing is more than
/// `--max-future` ahead of now.
#[derive(Debug, Clone, Copy)]
pub struct Bound {
    most: i64,
    /// Live: now + `--max-future`.
    live: Option<i64>,
}

impl Bound {
    /// The bound for a state whose newest timestamp is `max_ts`.
    pub fn new(
        period: i64,
        max_ts: Option<i64>,
        wall: Option<i64>,
        now: Option<i64>,
        max_future: i64,
    ) -> Bound {
        let end_of_max = max_ts
            .and_then(|m| {
                m.div_euclid(period)
                    .checked_mul(period)?
                    .checked_add(period)
            })
            .unwrap_or(i64::MIN);
        Bound {
            most: end_of_max.max(wall.unwrap_or(i64::MIN)).min(TIME_MAX),
            live: now.map(|n| n.saturating_add(max_future)),
        }
    }

    /// Checks `value`, named `what`, against the bound.
    pub fn check(&self, what: &str, value: i64) -> Result<(), String> {
        if !(TIME_MIN..=TIME_MAX).contains(&value) {
            return Err(format!("{what} {value} is outside the time range"));
        }
        if let Some(live) = self.live.filter(|&l| value > l) {
            return Err(format!(
                "{what} {value} is more than --max-future ahead of the wall clock ({live})"
            ));
        }
        if value > self.most {
            return Err(format!(
                "{what} {value} is beyond what the state's timestamps and wall clock allow ({})",
                self.most
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_journal_number_near_the_limit_is_refused() {
        let doc = |journal: u64| {
            format!(
                r#"{{"format":2,"state_id":"0123456789abcdef","journal":{journal},"options":{{"period_ns":5000000000,"precision":"ns","network_measurement":"n","service_measurement":"s"}},"closed_until":null,"max_ts":null,"windows":[],"network_cache":[],"service_cache":[]}}"#
            )
        };
        assert_eq!(
            decode(doc(MAX_JOURNAL).as_bytes()).unwrap().journal,
            MAX_JOURNAL
        );
        assert_eq!(
            decode(doc(u64::MAX).as_bytes()).unwrap_err(),
            format!("journal {} out of range", u64::MAX)
        );
    }

    #[test]
    fn floats_survive_exactly_including_infinities() {
        for v in [
            0.1,
            -0.0,
            5e-324,
            1.7976931348623157e308,
            f64::INFINITY,
            f64::NEG_INFINITY,
        ] {
            let text = serde_json::to_string(&F64(v)).unwrap();
            let back: F64 = serde_json::from_str(&text).unwrap();
            assert_eq!(back.0.to_bits(), v.to_bits(), "{text}");
        }
        let nan: F64 = serde_json::from_str("\"NaN\"").unwrap();
        assert!(nan.0.is_nan());
        assert!(serde_json::from_str::<F64>("\"infinity\"").is_err());
    }

    #[test]
    fn tag_values_survive_any_bytes() {
        for bytes in [&b"plain"[..], b"", b"\xff\x00a", "µs".as_bytes()] {
            let text = serde_json::to_string(&Text::of(bytes)).unwrap();
            let back: Text = serde_json::from_str(&text).unwrap();
            assert_eq!(back.bytes().unwrap(), bytes, "{text}");
        }
        assert_eq!(
            serde_json::to_string(&Text::of(b"\xff")).unwrap(),
            r#"{"hex":"ff"}"#
        );
    }

    #[test]
    fn a_mean_must_be_consistent() {
        let m = |count, ints: &str, floats| MeanV1 {
            count,
            ints: ints.into(),
            floats: F64(floats),
        };
        assert_eq!(mean(&m(-1, "0", 0.0)), Err("negative count -1".into()));
        assert_eq!(mean(&m(0, "3", 0.0)), Err("a count of 0 with a sum".into()));
        assert_eq!(
            mean(&m(0, "0", -0.0)),
            Err("a count of 0 with a sum".into())
        );
        let big = (2 * i128::from(u64::MAX)).to_string();
        assert_eq!(
            mean(&m(2, &big, 1.5)).unwrap().ints,
            2 * i128::from(u64::MAX)
        );
        assert_eq!(
            mean(&m(3, &i128::MIN.to_string(), 0.0)).unwrap_err(),
            format!("integer sum {} out of range for a count of 3", i128::MIN)
        );
    }

    /// An integer sum near `i128::MAX` used to pass the checks, and the
    /// next value added to the series overflowed it: a panic with overflow
    /// checks on (the `state` fuzz target, on a hand-made input), a wrapped
    /// sum without. Now a sum must be one `count` values can reach, and
    /// `count` leaves room for more values.
    #[test]
    fn a_sum_no_count_of_values_can_reach_is_refused() {
        let m = |count, ints: String| MeanV1 {
            count,
            ints,
            floats: F64(0.0),
        };
        assert_eq!(
            mean(&m(1, i128::MAX.to_string())).unwrap_err(),
            format!("integer sum {} out of range for a count of 1", i128::MAX)
        );
        assert_eq!(
            mean(&m(1, (i128::from(u64::MAX) + 1).to_string())).unwrap_err(),
            "integer sum 18446744073709551616 out of range for a count of 1"
        );
        assert_eq!(
            mean(&m(i64::MAX, "0".into())).unwrap_err(),
            "count 9223372036854775807 out of range"
        );
        let mut most = mean(&m(
            1 << 62,
            ((1i128 << 62) * i128::from(u64::MAX)).to_string(),
        ))
        .unwrap();
        for _ in 0..1000 {
            most.add(crate::lp::Number::Unsigned(u64::MAX));
        }
        assert_eq!(most.count, (1 << 62) + 1000);
        assert_eq!(
            mean(&m(1, i64::MIN.to_string())).unwrap().ints,
            i128::from(i64::MIN)
        );
    }
}
