//! The options as the pipeline uses them: every time in ns, every name in
//! bytes. Built once from [`Options`] and shared by reference (an `Arc`)
//! by the parse workers, the engine and the join, so each name and limit is
//! held in one place.

use crate::config::Options;

/// The settings the pipeline works with, all times in ns.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Measurement of network delays.
    pub network: Vec<u8>,
    /// Measurement of service delays.
    pub service: Vec<u8>,
    /// Measurement of the rows.
    pub output: Vec<u8>,
    /// Measurement of the self-metrics.
    pub stats_measurement: Vec<u8>,
    /// Do not pass delay lines through.
    pub drop_original: bool,
    /// Nanoseconds per unit of input timestamps.
    pub unit: i64,
    /// Window length.
    pub period: i64,
    /// Watermark lag.
    pub grace: i64,
    /// Quiet time before the watermark advances by wall time.
    pub idle: i64,
    /// How far ahead of the wall clock a point may be.
    pub max_future: i64,
    /// Longest record, line ending excluded.
    pub max_line: usize,
    /// Cap on (series, window) pairs plus cache entries; 0 = none.
    pub max_series: usize,
    /// Cache expiry, if any.
    pub cache_ttl: Option<i64>,
    /// Rows carry `reverse_age` and `service_age`.
    pub age_fields: bool,
}

impl Settings {
    /// The settings for a set of options.
    pub fn new(o: &Options) -> Settings {
        Settings {
            network: o.network_measurement.as_bytes().to_vec(),
            service: o.service_measurement.as_bytes().to_vec(),
            output: o.output_measurement.as_bytes().to_vec(),
            stats_measurement: o.stats_measurement.as_bytes().to_vec(),
            drop_original: o.drop_original,
            unit: o.precision.nanos(),
            period: o.period.as_nanos_i64(),
            grace: o.grace.as_nanos_i64(),
            idle: o.idle.as_nanos_i64(),
            max_future: o.max_future.as_nanos_i64(),
            max_line: o.max_line_size.0,
            max_series: o.max_series,
            cache_ttl: o.cache_ttl.map(|d| d.as_nanos_i64()),
            age_fields: o.age_fields,
        }
    }

    /// The measurement name of a kind of delay series.
    pub fn measurement(&self, kind: crate::schema::Kind) -> &[u8] {
        match kind {
            crate::schema::Kind::Network => &self.network,
            crate::schema::Kind::Service => &self.service,
        }
    }
}
