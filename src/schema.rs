//! The delay schema as types: the two measurements, the tags that key
//! their series and the fields that are averaged, by name; the running
//! means of one series in one window with a named field each; series keys;
//! window start and end instants.
//!
//! Every other stage speaks these types, so a name or a position is written
//! once, here. This module knows nothing of parsing, windows or the join:
//! it imports no stage of the pipe, only the line protocol's number type
//! ([`Number`], a field value as the protocol defines it), which the
//! running means add up.

use crate::lp::Number;

/// The earliest instant InfluxDB can store, in ns.
pub const TIME_MIN: i64 = -9_223_372_036_854_775_806;
/// The latest instant InfluxDB can store, in ns.
pub const TIME_MAX: i64 = 9_223_372_036_854_775_806;

/// The two kinds of delay series.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// `network_delays`: keyed by path, source, target.
    Network,
    /// `service_delays`: keyed by sfr, endpoint, sf_instance.
    Service,
}

impl Kind {
    /// The tags that key a series of this kind, in key order.
    pub fn key_tags(self) -> &'static [&'static [u8]; 3] {
        match self {
            Kind::Network => &[tag::PATH, tag::SOURCE, tag::TARGET],
            Kind::Service => &[tag::SFR, tag::ENDPOINT, tag::SF_INSTANCE],
        }
    }

    /// The averaged fields of this kind, in slot order.
    pub fn fields(self) -> &'static [&'static [u8]] {
        match self {
            Kind::Network => &[field::LATENCY, field::BANDWIDTH],
            Kind::Service => &[
                field::RESPONSE_TIME,
                field::REQUEST_SIZE,
                field::RESPONSE_SIZE,
            ],
        }
    }

    /// The slot of a key tag (`is_tag`) or averaged field named `name`:
    /// its position in [`Kind::key_tags`] or [`Kind::fields`]. Called for
    /// every tag and field of every delay point, so no library call: a
    /// length compare rules out most of the two or three candidates and
    /// the one left is compared a word at a time ([`same_short`]).
    #[inline]
    pub fn slot(self, is_tag: bool, name: &[u8]) -> Option<usize> {
        let names: &[&[u8]] = if is_tag {
            self.key_tags()
        } else {
            self.fields()
        };
        names
            .iter()
            .position(|n| n.len() == name.len() && same_short(n, name))
    }
}

/// Whether two byte strings of the same length are equal: for 4 to 16
/// bytes, two overlapping loads from each end; otherwise bytewise.
#[inline(always)]
fn same_short(a: &[u8], b: &[u8]) -> bool {
    debug_assert_eq!(a.len(), b.len());
    let n = a.len();
    let w8 = |s: &[u8], at: usize| u64::from_le_bytes(s[at..at + 8].try_into().unwrap_or([0; 8]));
    let w4 = |s: &[u8], at: usize| u32::from_le_bytes(s[at..at + 4].try_into().unwrap_or([0; 4]));
    match n {
        8..=16 => w8(a, 0) == w8(b, 0) && w8(a, n - 8) == w8(b, n - 8),
        4..=7 => w4(a, 0) == w4(b, 0) && w4(a, n - 4) == w4(b, n - 4),
        _ => a == b,
    }
}

/// The two input measurements' default names (`--network-measurement`,
/// `--service-measurement`). Text, not bytes: they are option defaults; the
/// stages use the names the options hold.
pub mod measurement {
    /// Network delays ([`Kind::Network`](super::Kind::Network)).
    pub const NETWORK: &str = "network_delays";
    /// Service delays ([`Kind::Service`](super::Kind::Service)).
    pub const SERVICE: &str = "service_delays";
}

/// Tag names of the inputs and of the rows.
pub mod tag {
    /// Network path id (input).
    pub const PATH: &[u8] = b"path";
    /// Sending SFR of a network path (input).
    pub const SOURCE: &[u8] = b"source";
    /// Receiving SFR of a network path (input).
    pub const TARGET: &[u8] = b"target";
    /// The SFR a service sits behind (input).
    pub const SFR: &[u8] = b"sfr";
    /// Service endpoint (input and row).
    pub const ENDPOINT: &[u8] = b"endpoint";
    /// Service function instance (input and row).
    pub const SF_INSTANCE: &[u8] = b"sf_instance";
    /// Row tag: the path.
    pub const PATH_ID: &[u8] = b"path_ID";
    /// Row tag: the source SFR.
    pub const SOURCE_SFR: &[u8] = b"source_SFR";
    /// Row tag: the target SFR.
    pub const TARGET_SFR: &[u8] = b"target_SFR";
}

/// Field names of the inputs and of the rows.
pub mod field {
    /// Network latency (input).
    pub const LATENCY: &[u8] = b"latency";
    /// Network bandwidth (input).
    pub const BANDWIDTH: &[u8] = b"bandwidth";
    /// Service response time (input).
    pub const RESPONSE_TIME: &[u8] = b"response_time";
    /// Service request size (input).
    pub const REQUEST_SIZE: &[u8] = b"request_size";
    /// Service response size (input).
    pub const RESPONSE_SIZE: &[u8] = b"response_size";
    /// Row fields written after [`ROW`] with `--age-fields`, in order:
    /// how old the reverse latency and the service are, in seconds.
    pub const AGES: [&[u8]; 2] = [b"reverse_age", b"service_age"];
    /// Row fields, in the order they are written.
    pub const ROW: [&[u8]; 6] = [
        b"delay_forward",
        b"delay_reverse",
        b"delay_service",
        b"avg_request_size",
        b"avg_response_size",
        b"avg_bandwidth",
    ];
    /// The longest row field key, for InfluxDB's series-key limit.
    pub const LONGEST_ROW: usize = 17;
}

/// The numbers a delay point carried for its averaged fields, by slot
/// ([`Kind::slot`]); `None` where the field was absent or not a number.
pub type Values = [Option<Number>; 3];

/// The running mean of one field over the points that carried it.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Mean {
    /// Points that carried the field.
    pub count: u64,
    /// Integers and unsigned values, summed exactly.
    pub ints: i128,
    /// Floats, summed from `0.0` so that a mean of `-0.0` values is `0.0`.
    pub floats: f64,
}

impl Mean {
    /// Adds one value.
    #[inline]
    pub fn add(&mut self, n: Number) {
        self.count += 1;
        match n {
            Number::Float(f) => self.floats += f,
            Number::Integer(i) => self.ints += i128::from(i),
            Number::Unsigned(u) => self.ints += i128::from(u),
        }
    }

    /// Adds a value if there is one.
    #[inline]
    fn add_opt(&mut self, n: Option<Number>) {
        if let Some(n) = n {
            self.add(n);
        }
    }

    /// The mean, or `None` when no point carried the field.
    pub fn value(&self) -> Option<f64> {
        (self.count > 0).then(|| (self.ints as f64 + self.floats) / self.count as f64)
    }
}

/// The means of a network series in one window.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct NetworkMeans {
    /// Of `latency`.
    pub latency: Mean,
    /// Of `bandwidth`.
    pub bandwidth: Mean,
}

impl NetworkMeans {
    /// Folds in a point's values.
    #[inline]
    pub fn add(&mut self, v: &Values) {
        self.latency.add_opt(v[0]);
        self.bandwidth.add_opt(v[1]);
    }
}

/// The means of a service series in one window.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ServiceMeans {
    /// Of `response_time`.
    pub response_time: Mean,
    /// Of `request_size`.
    pub request_size: Mean,
    /// Of `response_size`.
    pub response_size: Mean,
}

impl ServiceMeans {
    /// Folds in a point's values.
    #[inline]
    pub fn add(&mut self, v: &Values) {
        self.response_time.add_opt(v[0]);
        self.request_size.add_opt(v[1]);
        self.response_size.add_opt(v[2]);
    }
}

/// A series key: its three key-tag values (unescaped), length-prefixed into
/// one byte string so that any bytes may occur in them and a lookup needs
/// no tuple of owned strings. Network: (path, source, target); service:
/// (sfr, endpoint, sf_instance).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SeriesKey(Box<[u8]>);

impl SeriesKey {
    /// Appends the encoding of `parts` to `out`.
    pub fn encode(parts: [&[u8]; 3], out: &mut Vec<u8>) {
        for p in parts {
            out.extend_from_slice(&(p.len() as u32).to_le_bytes());
            out.extend_from_slice(p);
        }
    }

    /// Appends the encoding of three parts that `write` appends to `out`
    /// in turn (`write(out, i)` for part `i`): for parts that are
    /// unescaped on the way in, with no copy of their own.
    #[inline]
    pub fn encode_with(out: &mut Vec<u8>, mut write: impl FnMut(&mut Vec<u8>, usize)) {
        for i in 0..3 {
            let at = out.len();
            out.extend_from_slice(&[0; 4]);
            write(out, i);
            let len = (out.len() - at - 4) as u32;
            out[at..at + 4].copy_from_slice(&len.to_le_bytes());
        }
    }

    /// The key of `parts`.
    pub fn new(parts: [&[u8]; 3]) -> SeriesKey {
        let mut out = Vec::with_capacity(12 + parts.iter().map(|p| p.len()).sum::<usize>());
        SeriesKey::encode(parts, &mut out);
        SeriesKey(out.into())
    }

    /// Takes an encoding made by [`SeriesKey::encode`].
    pub fn from_encoded(encoded: &[u8]) -> SeriesKey {
        SeriesKey(encoded.into())
    }

    /// The encoded bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The three parts.
    pub fn parts(&self) -> [&[u8]; 3] {
        decode(&self.0)
    }

    /// The parts of a network key.
    pub fn network(&self) -> NetworkSeries<'_> {
        let [path, source, target] = self.parts();
        NetworkSeries {
            path,
            source,
            target,
        }
    }

    /// The parts of a service key.
    pub fn service(&self) -> ServiceSeries<'_> {
        let [sfr, endpoint, sf_instance] = self.parts();
        ServiceSeries {
            sfr,
            endpoint,
            sf_instance,
        }
    }
}

impl std::borrow::Borrow<[u8]> for SeriesKey {
    fn borrow(&self) -> &[u8] {
        &self.0
    }
}

/// The three parts of an encoded key ([`SeriesKey::encode`]).
pub fn decode(key: &[u8]) -> [&[u8]; 3] {
    let mut rest = key;
    let mut part = || {
        let (len, tail) = rest.split_at(4.min(rest.len()));
        let n = u32::from_le_bytes(len.try_into().unwrap_or([0; 4])) as usize;
        let (p, tail) = tail.split_at(n.min(tail.len()));
        rest = tail;
        p
    };
    [part(), part(), part()]
}

/// A network series by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct NetworkSeries<'a> {
    /// The path id.
    pub path: &'a [u8],
    /// The sending SFR.
    pub source: &'a [u8],
    /// The receiving SFR.
    pub target: &'a [u8],
}

impl NetworkSeries<'_> {
    /// The key of the same path in the other direction.
    pub fn reverse_key(&self, out: &mut Vec<u8>) {
        SeriesKey::encode([self.path, self.target, self.source], out);
    }
}

/// A service series by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServiceSeries<'a> {
    /// The SFR the service sits behind.
    pub sfr: &'a [u8],
    /// The endpoint.
    pub endpoint: &'a [u8],
    /// The service function instance.
    pub sf_instance: &'a [u8],
}

/// The start of a window, in ns since the epoch (inclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WindowStart(pub i64);

/// The end of a window, in ns since the epoch (exclusive); also the
/// closing frontier `closed_until` and a cache entry's update time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WindowEnd(pub i64);

impl WindowStart {
    /// The end of the window of length `period` starting here.
    pub fn end(self, period: i64) -> WindowEnd {
        WindowEnd(self.0 + period)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_follow_the_name_lists() {
        for kind in [Kind::Network, Kind::Service] {
            for (i, name) in kind.key_tags().iter().enumerate() {
                assert_eq!(kind.slot(true, name), Some(i));
                assert_eq!(kind.slot(false, name), None);
            }
            for (i, name) in kind.fields().iter().enumerate() {
                assert_eq!(kind.slot(false, name), Some(i));
                assert_eq!(kind.slot(true, name), None);
            }
        }
        assert_eq!(
            field::LONGEST_ROW,
            field::ROW.iter().map(|f| f.len()).max().unwrap()
        );
    }

    #[test]
    fn a_slot_needs_every_byte_of_the_name() {
        for kind in [Kind::Network, Kind::Service] {
            for (is_tag, names) in [(true, &kind.key_tags()[..]), (false, kind.fields())] {
                for name in names {
                    for k in 0..name.len() {
                        let mut other = name.to_vec();
                        other[k] ^= 0x20;
                        assert_eq!(kind.slot(is_tag, &other), None, "{other:?}");
                    }
                    assert_eq!(kind.slot(is_tag, &name[1..]), None);
                    assert_eq!(kind.slot(is_tag, &[name, &b"x"[..]].concat()), None);
                }
            }
        }
    }

    #[test]
    fn keys_round_trip_any_bytes() {
        let key = SeriesKey::new([b"a\0b", b"", b"\xff,="]);
        assert_eq!(key.parts(), [&b"a\0b"[..], b"", b"\xff,="]);
        let n = key.network();
        let mut rev = Vec::new();
        n.reverse_key(&mut rev);
        assert_eq!(
            SeriesKey::from_encoded(&rev).parts(),
            [&b"a\0b"[..], b"\xff,=", b""]
        );
    }

    #[test]
    fn means_sum_integers_exactly_and_start_from_zero() {
        let mut m = Mean::default();
        assert_eq!(m.value(), None);
        m.add(Number::Integer(i64::MAX));
        m.add(Number::Integer(i64::MAX));
        m.add(Number::Unsigned(u64::MAX));
        let exact = (2.0 * i64::MAX as f64 + u64::MAX as f64) / 3.0;
        assert_eq!(m.value(), Some(exact));
        let mut z = Mean::default();
        z.add(Number::Float(-0.0));
        assert!(z.value().unwrap().is_sign_positive());
    }
}
