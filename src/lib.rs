//! e2e-aggregator: a Telegraf `processors.execd` processor that turns raw
//! `network_delays` and `service_delays` into windowed `e2e_delays` rows.
//!
//! Data flows one way: bytes in ([`engine`]) → records ([`lp`]) → points →
//! window state ([`window`]) → rows ([`join`]) → bytes out. [`run`] wires
//! the engine to stdin, stdout, a ticker and signals.

pub mod config;
pub mod duration;
pub mod engine;
pub mod join;
pub mod logging;
pub mod lp;
pub mod records;
pub mod run;
pub mod stats;
pub mod window;
