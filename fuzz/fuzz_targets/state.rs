//! Arbitrary bytes as a state file (`--state-file`).
//!
//! Checks: `snapshot::decode` + `snapshot::restore` never panic, whatever
//! the bytes; a state that restores, captured and encoded again, decodes
//! and restores to the same bytes (so saving a restored state is stable);
//! and the engine runs on it without a panic: a value of every kind added
//! to every restored series, a point at `max_ts`, every window closed.
//!
//! Then the journal: the bytes after the state's first line feed, read as
//! journal frames (torn, foreign or garbage as they come), are replayed
//! through the engine on the restored state: never a panic, and a replay
//! of whatever frames are whole.
//!
//! Settings: the defaults (`--period 5s`, ns, the standard measurement
//! names, which seeds written by the binary with its defaults match) plus
//! `--cache-ttl 10s`. For an input of odd length the restore is live, with
//! a wall clock one period past its `closed_until`.

#![no_main]

use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;

use e2e_aggregator::config::Options;
use e2e_aggregator::join::Join;
use e2e_aggregator::lp::Number;
use e2e_aggregator::pipeline::Pipeline;
use e2e_aggregator::schema::{Kind, Values};
use e2e_aggregator::settings::Settings;
use e2e_aggregator::journal;
use e2e_aggregator::schema::WindowEnd;
use e2e_aggregator::state::snapshot::{self, Identity};
use e2e_aggregator::window::Windows;

fn settings() -> &'static Arc<Settings> {
    static SETTINGS: OnceLock<Arc<Settings>> = OnceLock::new();
    SETTINGS.get_or_init(|| {
        let args = ["e2e-aggregator", "--cache-ttl", "10s", "--log-level=error"];
        let options = Options::load(args).expect("fuzz settings are valid");
        Arc::new(Settings::new(&options))
    })
}

/// The bytes a save of this state writes.
fn encoded(settings: &Settings, identity: &Identity, windows: &Windows, join: &Join) -> Vec<u8> {
    snapshot::encode(&snapshot::capture(settings, identity, windows, join))
}

/// Replays `frames` as a journal, then closes every window.
fn replay(mut pipeline: Pipeline, frames: &[u8]) {
    let (entries, _tail) = journal::frames(frames);
    pipeline.replay_journal(entries);
    pipeline.engine().keep_replayed_rows(WindowEnd(i64::MIN));
    pipeline.engine().close_all();
}

fuzz_target!(|data: &[u8]| {
    let settings = settings();
    let (data, frames) = match data.iter().position(|&b| b == b'\n') {
        Some(k) => data.split_at(k + 1),
        None => (data, &[][..]),
    };
    let Ok(decoded) = snapshot::decode(data) else {
        return replay(Pipeline::new((**settings).clone()), frames);
    };
    // An odd length: a live restore.
    let period = settings.period;
    let now = match data.len() % 2 {
        1 => Some(decoded.closed_until.unwrap_or(0).saturating_add(period)),
        _ => None,
    };
    let Ok(restored) = snapshot::restore(decoded, settings, now) else {
        return replay(Pipeline::new((**settings).clone()), frames);
    };
    let join = Join::from_caches(settings.clone(), restored.caches);
    let identity = restored.identity;
    let bytes = encoded(settings, &identity, &restored.windows, &join);

    let again = snapshot::decode(&bytes).expect("a saved state decodes");
    let again = snapshot::restore(again, settings, None).expect("a saved state restores");
    let join_again = Join::from_caches(settings.clone(), again.caches);
    assert!(
        encoded(settings, &identity, &again.windows, &join_again) == bytes,
        "save -> restore -> save changed the bytes: \"{}\"",
        bytes.escape_ascii()
    );

    // The engine on the restored state.
    let mut windows = restored.windows;
    let values: Values = [
        Some(Number::Unsigned(u64::MAX)),
        Some(Number::Integer(i64::MIN)),
        Some(Number::Float(f64::MAX)),
    ];
    let series: Vec<_> = windows
        .open()
        .flat_map(|(start, w)| {
            let net = w
                .network
                .keys()
                .map(move |k| (Kind::Network, *start, k.clone()));
            let svc = w
                .service
                .keys()
                .map(move |k| (Kind::Service, *start, k.clone()));
            net.chain(svc)
        })
        .collect();
    for (kind, start, key) in series {
        let _ = windows.add(kind, key.as_bytes(), start.0, start, &values, true);
    }
    let max_ts = windows.max_ts();
    let mut pipeline = Pipeline::new((**settings).clone());
    pipeline.engine().restore(windows, join, None);
    if let Some(ts) = max_ts {
        let line = format!("network_delays,path=p,source=a,target=b latency=1 {ts}\n");
        pipeline.feed(line.as_bytes(), None);
    }
    replay(pipeline, frames);
});
