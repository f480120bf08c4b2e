//! Where each record of a recording goes, as the scale-out's Kafka routes
//! it: sarama's hash partitioner for the network topic's keys, the consumer
//! group's strategy for the partitions' owners, the services topic to every
//! instance.

use clap::ValueEnum;
use e2e_aggregator::lp::{parse_record, resume_after, Escaped, Outcome, Value, Visitor};
use e2e_aggregator::schema::Kind;

use crate::splitmix::SplitMix64;

/// How a consumer group spreads one topic's partitions over its members;
/// both as sarama computes them (`balance_strategy.go`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Strategy {
    /// Consecutive ranges: the first `P % N` members get one partition more.
    Range,
    /// Partitions sorted as the strings `<topic>-<n>` (so 10 sorts before
    /// 2), dealt out to the members in turn.
    Roundrobin,
}

/// FNV-1a, 32 bits: Go's `hash/fnv` `New32a`, sarama's default hasher.
fn fnv1a32(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5, |h: u32, &b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

/// The partition sarama's `NewHashPartitioner` gives a key: the hash as an
/// `int32`, Go's `%` (which keeps the dividend's sign, as Rust's does),
/// negated when negative (`partitioner.go`, `hashPartitioner.Partition`).
/// Not the Java client's `& 0x7fffffff`: the two disagree for half of all
/// keys.
fn hash_partition(key: &[u8], partitions: u32) -> u32 {
    let n = i32::try_from(partitions).expect("partitions fit in i32");
    let p = (fnv1a32(key) as i32) % n;
    p.unsigned_abs()
}

/// The instance (member index in sorted member-id order) that owns each
/// partition of the one topic, as sarama's strategy plans it.
pub fn assign(strategy: Strategy, partitions: u32, instances: u32) -> Vec<usize> {
    let (p, n) = (partitions as usize, instances as usize);
    let mut owner = vec![0; p];
    match strategy {
        Strategy::Range => {
            let (per, extra) = (p / n, p % n);
            for member in 0..n {
                let start = member * per + member.min(extra);
                let len = per + usize::from(member < extra);
                owner[start..start + len].fill(member);
            }
        }
        Strategy::Roundrobin => {
            // sarama sorts `fmt.Sprintf("%s-%d", topic, partition)`: with one
            // topic that is the order of the partition numbers as text.
            let mut order: Vec<usize> = (0..p).collect();
            order.sort_by_key(|k| k.to_string());
            for (turn, &partition) in order.iter().enumerate() {
                owner[partition] = turn % n;
            }
        }
    }
    owner
}

/// Where a record goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// A network-delay record, to the owner of this partition.
    Partition(u32),
    /// A service-delay record, to every instance.
    Services,
    /// Anything else, to `--other-instance`.
    Other,
}

/// One record of the recording.
#[derive(Debug, Clone)]
pub struct Record {
    /// Start of the byte range in the recording.
    pub start: usize,
    /// End of the byte range, line ending included.
    pub end: usize,
    /// Where it goes.
    pub route: Route,
    /// The largest timestamp of the recording up to and including this
    /// record (in `--precision` units): the event-time clock of the
    /// recording when this record was produced. `None` before the first.
    pub clock: Option<i64>,
}

/// What went where, for the summary.
#[derive(Debug, Default)]
pub struct Counts {
    /// Every record.
    pub records: u64,
    /// Network records keyed by the `--key` tag.
    pub network_keyed: u64,
    /// Network records keyed by `--routing-key`.
    pub network_fallback: u64,
    /// Network records without a key (a random partition).
    pub network_keyless: u64,
    /// Service records.
    pub services: u64,
    /// Everything else.
    pub other: u64,
}

/// Splits a recording into routed records.
pub struct Router {
    /// Measurement of network delays (the keyed topic).
    pub network: Vec<u8>,
    /// Measurement of service delays (the broadcast topic).
    pub service: Vec<u8>,
    /// The tag whose value keys a network record (`routing_tag`).
    pub key: Vec<u8>,
    /// The key of a network record without the tag (`routing_key`).
    pub routing_key: Option<String>,
    /// Partitions of the network topic.
    pub partitions: u32,
    /// Seed of the random partitions of keyless records.
    pub seed: u64,
}

/// The fields of a record the router needs, collected by the parser.
#[derive(Default)]
struct Found {
    /// The delay kind of the measurement; `None` for any other record.
    kind: Option<Kind>,
    key: Option<Vec<u8>>,
    timestamp: Option<i64>,
}

/// The parser's visitor: a [`Found`] for one record.
struct Classify<'r> {
    router: &'r Router,
    found: Found,
}

impl<'a> Visitor<'a> for Classify<'_> {
    fn measurement(&mut self, name: Escaped<'a>) -> bool {
        self.found.kind = if name.is(&self.router.network) {
            Some(Kind::Network)
        } else if name.is(&self.router.service) {
            Some(Kind::Service)
        } else {
            None
        };
        // Tags are needed only for the key of a network record.
        self.found.kind == Some(Kind::Network)
    }

    fn tag(&mut self, key: Escaped<'a>, value: Escaped<'a>) {
        // A later duplicate wins, as in Telegraf's metric.
        if key.is(&self.router.key) {
            self.found.key = Some(value.unescaped().into_owned());
        }
    }

    fn field(&mut self, _: Escaped<'a>, _: Value<'a>) {}

    fn timestamp(&mut self, ts: i64) {
        self.found.timestamp = Some(ts);
    }
}

impl Router {
    /// The records of `input` in order, each with its route and clock, and
    /// the counts of what went where.
    pub fn split(&self, input: &[u8]) -> (Vec<Record>, Counts) {
        let mut records = Vec::new();
        let mut counts = Counts::default();
        // sarama's random partitioner for keyless messages; seeded here.
        let mut random = SplitMix64::new(self.seed ^ 0x6b65_796c_6573_7321);
        let mut clock: Option<i64> = None;
        let mut pos = 0;
        while pos < input.len() {
            let mut v = Classify {
                router: self,
                found: Found::default(),
            };
            let (len, found) = match parse_record(&input[pos..], true, &mut v) {
                Outcome::Record(rec) => (rec.len.max(1), v.found),
                // Resumed where e2e-aggregator and Telegraf's parser resume.
                Outcome::Invalid(err) => {
                    (resume_after(&input[pos..], err.offset), Found::default())
                }
                // Not returned when at_eof is set; treat the rest as one record.
                Outcome::NeedMore => (input.len() - pos, Found::default()),
            };
            if let Some(ts) = found.timestamp {
                clock = Some(clock.map_or(ts, |c| c.max(ts)));
            }
            let route = match found.kind {
                Some(Kind::Network) => {
                    Route::Partition(self.partition(found.key, &mut random, &mut counts))
                }
                Some(Kind::Service) => {
                    counts.services += 1;
                    Route::Services
                }
                None => {
                    counts.other += 1;
                    Route::Other
                }
            };
            counts.records += 1;
            records.push(Record {
                start: pos,
                end: pos + len,
                route,
                clock,
            });
            pos += len;
        }
        (records, counts)
    }

    /// The partition of a network record, as `outputs.kafka` keys it
    /// (`routingKey`: the tag, else `routing_key`; `"random"` is a fresh
    /// UUID per message; an empty key is no key) and sarama places it.
    fn partition(&self, tag: Option<Vec<u8>>, random: &mut SplitMix64, counts: &mut Counts) -> u32 {
        let key = match (tag, self.routing_key.as_deref()) {
            (Some(value), _) => {
                counts.network_keyed += 1;
                Some(value)
            }
            (None, Some(fixed)) if !fixed.is_empty() && fixed != "random" => {
                counts.network_fallback += 1;
                Some(fixed.as_bytes().to_vec())
            }
            (None, _) => {
                counts.network_keyless += 1;
                None
            }
        };
        match key {
            Some(key) => hash_partition(&key, self.partitions),
            None => random.below(u64::from(self.partitions)) as u32,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a32_matches_the_reference_vectors() {
        // FNV reference values (Go's hash/fnv tests use the same).
        assert_eq!(fnv1a32(b""), 0x811c_9dc5);
        assert_eq!(fnv1a32(b"a"), 0xe40c_292c);
        assert_eq!(fnv1a32(b"foobar"), 0xbf9c_f968);
    }

    #[test]
    fn hash_partition_negates_a_negative_remainder_as_sarama_does() {
        // sarama's partitioner_test.go: "1468509572224" hashes to 2^31,
        // i.e. int32 min; -2147483648 % 50 = -48, negated: 48.
        assert_eq!(fnv1a32(b"1468509572224"), 0x8000_0000);
        assert_eq!(hash_partition(b"1468509572224", 50), 48);
        // "a" hashes to 0xe40c292c = -468965076 as int32; % 7 = -6 → 6.
        // (The Java client's `& 0x7fffffff` would give 1678518572 % 7 = 2.)
        assert_eq!(hash_partition(b"a", 7), 6);
        assert_eq!(hash_partition(b"anything", 1), 0);
    }

    #[test]
    fn range_gives_the_first_members_one_partition_more() {
        assert_eq!(assign(Strategy::Range, 7, 3), [0, 0, 0, 1, 1, 2, 2]);
        assert_eq!(assign(Strategy::Range, 2, 4), [0, 1]);
        assert_eq!(assign(Strategy::Range, 1, 1), [0]);
    }

    #[test]
    fn roundrobin_deals_partitions_in_text_order() {
        // Order 0, 1, 10, 11, 2, 3, ..., 9, dealt to members 0, 1, 2, 0, 1, ...:
        // 0→0, 1→1, 10→2, 11→0, 2→1, 3→2, ..., 9→2.
        let owner = assign(Strategy::Roundrobin, 12, 3);
        assert_eq!(owner[0], 0);
        assert_eq!(owner[1], 1);
        assert_eq!(owner[10], 2);
        assert_eq!(owner[11], 0);
        assert_eq!(owner[2], 1);
        assert_eq!(owner[9], 2);
        assert_eq!(assign(Strategy::Roundrobin, 5, 2), [0, 1, 0, 1, 0]);
    }
}
