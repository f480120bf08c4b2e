//! The conversion between a snapshot and the engine's window state and
//! caches: [`capture`] for a save, [`restore`] (with every check a damaged
//! or foreign file could fail) at a start.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::join::{Caches, Join, NetEntry, SvcEntry};
use crate::schema::{
    Mean, NetworkMeans, SeriesKey, ServiceMeans, WindowEnd, WindowStart, TIME_MAX, TIME_MIN,
};
use crate::settings::Settings;
use crate::window::{Window, Windows};

use super::super::StateId;

use super::*;

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

pub(super) fn mean(m: &MeanV1) -> Result<Mean, String> {
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
    Snapshot {
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
        windows: windows
            .open()
            .map(|(start, window)| window_v1(*start, window))
            .collect(),
        network_cache: network_cache_v1(join),
        service_cache: service_cache_v1(join),
    }
}

/// An open window as format 2 holds it, series sorted.
fn window_v1(start: WindowStart, window: &Window) -> WindowV1 {
    let mut network: Vec<_> = window.network.iter().collect();
    network.sort_unstable_by(|a, b| a.0.cmp(b.0));
    let mut service: Vec<_> = window.service.iter().collect();
    service.sort_unstable_by(|a, b| a.0.cmp(b.0));
    WindowV1 {
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
    }
}

/// The network cache as format 2 holds it, sorted.
fn network_cache_v1(join: &Join) -> Vec<NetCacheV1> {
    let mut network: Vec<_> = join.network_entries().collect();
    network.sort_unstable_by(|a, b| a.0.cmp(b.0));
    network
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
        .collect()
}

/// The service cache as format 2 holds it, sorted.
fn service_cache_v1(join: &Join) -> Vec<SvcCacheV1> {
    let mut service: Vec<_> = join.service_entries().collect();
    service.sort_unstable_by(|a, b| a.0.cmp(b.0));
    service
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
        .collect()
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

/// Turns a snapshot back into engine state under `settings`, checking that
/// it was written under the same meaning and is consistent. `now` is the
/// wall clock, ns, when live: no time in the state may lie more than
/// `--max-future` ahead of it.
pub fn restore(
    snapshot: Snapshot,
    settings: &Arc<Settings>,
    now: Option<i64>,
) -> Result<Restored, String> {
    check_meaning(&snapshot, settings)?;
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
    let open = restore_windows(&snapshot.windows, period, saved_until, max_ts)?;
    let caches = restore_caches(&snapshot, period)?;
    Ok(Restored {
        windows: Windows::from_parts(period, WindowEnd(saved_until), max_ts, open),
        caches,
        identity,
    })
}

/// The options the state was written under, which must be this process's.
fn check_meaning(snapshot: &Snapshot, settings: &Settings) -> Result<(), String> {
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
    Ok(())
}

/// A period in ns as `--period` is written (`5s`); a negative one, which
/// only a crafted file holds, as its number.
fn go_duration(ns: i64) -> String {
    u64::try_from(ns).map_or_else(
        |_| format!("{ns}ns"),
        |n| crate::duration::Duration::from_nanos(n).to_string(),
    )
}

/// The open windows, checked against the period, the frontier and
/// `max_ts`.
fn restore_windows(
    saved: &[WindowV1],
    period: i64,
    saved_until: i64,
    max_ts: Option<i64>,
) -> Result<BTreeMap<WindowStart, Window>, String> {
    let aligned = |t: i64| t.rem_euclid(period) == 0;
    let mut open = BTreeMap::new();
    for w in saved {
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
    Ok(open)
}

/// The caches, each entry aligned to the period and there once.
fn restore_caches(snapshot: &Snapshot, period: i64) -> Result<Caches, String> {
    let aligned = |t: i64| t.rem_euclid(period) == 0;
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
    Ok(caches)
}
