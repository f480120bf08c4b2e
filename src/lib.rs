//! e2e-aggregator: a Telegraf `processors.execd` processor that turns raw
//! `network_delays` and `service_delays` into windowed `e2e_delays` rows.
//!
//! Data flows one way, one module per stage: bytes in ([`input`]) →
//! records ([`lp`], [`records`]) → points placed in windows ([`engine`],
//! [`window`]) → rows ([`join`], written with [`lp::write`]) → bytes out.
//! [`schema`] names the delay measurements' tags, fields and means;
//! [`settings`] holds the options as the stages use them; [`pipeline`]
//! puts input and engine on one thread; [`run`] wires it to stdin, stdout,
//! a ticker and signals. [`analyze`] replays a recording through the same
//! pipeline, told the engine's decisions through [`observe`], and reports
//! on the data.

pub mod analyze;
pub mod clock;
pub mod config;
pub mod duration;
pub mod engine;
pub mod input;
pub mod join;
pub mod journal;
pub mod lateness;
pub mod logging;
pub mod lp;
pub mod observe;
pub mod pipeline;
pub mod records;
pub mod run;
pub mod schema;
pub mod settings;
pub mod state;
pub mod stats;
pub mod window;
