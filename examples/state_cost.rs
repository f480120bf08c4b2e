//! What a state save costs: for N series held open (half network series in
//! one open window, half cached from a closed one), the bytes of the file
//! and the time of each step. Run with
//! `cargo run --release --example state_cost -- 1000 10000 100000`.
//!
//! A periodic save stalls the event loop only for `clone` (a copy of the
//! window state and caches); `capture` (state → snapshot), `encode`
//! (snapshot → bytes) and `write` (temporary file, fsync, rename,
//! directory fsync) run on the saver thread. A save at stop does all of it
//! on the loop.

use std::time::Instant;

use e2e_aggregator::config::Options;
use e2e_aggregator::pipeline::Pipeline;
use e2e_aggregator::settings::Settings;
use e2e_aggregator::state::{snapshot, StateFile, StateId};

fn main() {
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("a number of series"))
        .collect();
    let dir = tempfile_dir();
    println!("series   file_bytes  clone_ms  capture_ms  encode_ms  write_ms");
    for n in sizes {
        let options = Options::load(["x", "--replay", "--max-series", "0", "--log-level", "error"])
            .expect("options");
        let mut p = Pipeline::new(Settings::new(&options));
        let t0 = 1_700_000_000_000_000_000i64;
        // Window 0: n/2 series that will be cached; window 4 (still open
        // at the end): n/2 series.
        let mut input = String::new();
        for (k, t) in [(0, t0), (1, t0 + 20_000_000_000)] {
            for i in 0..n / 2 {
                input.push_str(&format!(
                    "network_delays,path=path-{i:06},source=sfr-{:03},target=sfr-{:03} latency={}.25,bandwidth={}i {}\n",
                    i % 97,
                    (i + k) % 89,
                    i % 50,
                    i,
                    t + i as i64
                ));
            }
        }
        p.feed(input.as_bytes(), None);
        let engine = p.engine();
        let (windows, join) = engine.state();
        let start = Instant::now();
        let copy = (windows.clone(), join.caches());
        let cloned = start.elapsed();
        drop(copy);
        let start = Instant::now();
        let identity = snapshot::Identity {
            id: Some(StateId::new()),
            journal: 0,
            wall: None,
        };
        let snap = snapshot::capture(engine.settings(), &identity, windows, join);
        let captured = start.elapsed();
        let bytes = snapshot::encode(&snap);
        let encoded = start.elapsed() - captured;
        let path = dir.join(format!("state-{n}.json"));
        let file = StateFile::open(&path).expect("state file");
        let before = Instant::now();
        file.save(&bytes).expect("save");
        let written = before.elapsed();
        let ms = |d: std::time::Duration| d.as_secs_f64() * 1e3;
        println!(
            "{n:>7} {:>12} {:>9.1} {:>11.1} {:>10.1} {:>9.1}",
            bytes.len(),
            ms(cloned),
            ms(captured),
            ms(encoded),
            ms(written)
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("e2e-state-cost-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temporary directory");
    dir
}
