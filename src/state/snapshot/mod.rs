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

use serde::{Deserialize, Serialize};

use super::StateId;

mod bound;
mod convert;

pub use bound::Bound;
pub use convert::{capture, restore, Identity, Restored};

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

#[cfg(test)]
mod tests {
    use super::convert::mean;
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
