//! `analyze --plot FILE.svg`: the report drawn as one SVG of two charts,
//! from the report's own figures ([`Report::curves`] and the graces), not
//! from a second computation.
//!
//! 1. The lateness distribution: the fraction of delay points later than
//!    x (the complementary CDF of the lateness histogram, exact at its
//!    bucket bounds), both axes logarithmic, with the given and the
//!    suggested grace as labelled vertical lines. Where the curve meets
//!    the bottom no point is later; a grace to its right makes none late.
//! 2. Forward pairs per window over event time: rows written at the
//!    bottom, the pairs without a row stacked above by reason. A long
//!    recording is drawn in buckets of whole windows (at most
//!    [`super::MAX_BUCKETS`]); the axis title says how many windows a
//!    bar holds.
//!
//! Drawn with `plotters`' SVG backend and no font library: text is written
//! as SVG `<text>` for the viewer to lay out, and plotters estimates its
//! size only to place axis labels.

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::report::{reason_text, Report};
use crate::duration::Duration;

/// Width and height of the picture, px.
const SIZE: (u32, u32) = (1000, 900);
const FONT: &str = "sans-serif";
const CURVE: RGBColor = RGBColor(31, 119, 180);
const GIVEN: RGBColor = RGBColor(214, 39, 40);
const SUGGESTED: RGBColor = RGBColor(44, 160, 44);
const ROWS: RGBColor = RGBColor(160, 190, 220);
/// One colour per reason, in [`crate::join::NoRow::index`] order.
const REASONS: [RGBColor; crate::join::NoRow::KINDS] = [
    RGBColor(214, 39, 40),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
    RGBColor(127, 127, 127),
    RGBColor(255, 187, 120),
    RGBColor(0, 0, 0),
];

/// The title of the lateness chart.
pub const LATENESS_TITLE: &str = "Lateness: fraction of delay points later than x";
/// The title of the coverage chart.
pub const WINDOWS_TITLE: &str = "Forward pairs per window: rows written and missing rows by reason";

/// The picture of `report`, as SVG text.
pub fn svg(report: &Report) -> String {
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, SIZE).into_drawing_area();
        draw(report, &root).expect("drawing into a string cannot fail");
        root.present().expect("drawing into a string cannot fail");
    }
    out
}

type Area<'a> = DrawingArea<SVGBackend<'a>, plotters::coord::Shift>;
type Result<T> = std::result::Result<T, DrawingAreaErrorKind<std::io::Error>>;

fn draw(report: &Report, root: &Area<'_>) -> std::result::Result<(), String> {
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let (top, bottom) = root.split_vertically(SIZE.1 / 2);
    lateness(report, &top).map_err(|e| e.to_string())?;
    windows(report, &bottom).map_err(|e| e.to_string())?;
    Ok(())
}

/// Go text of `ns` (tick labels, graces).
fn go(ns: f64) -> String {
    Duration::from_nanos(ns.round().clamp(0.0, i64::MAX as f64) as u64).to_string()
}

/// The lateness chart.
fn lateness(report: &Report, area: &Area<'_>) -> Result<()> {
    let c = &report.curves;
    let points = report.event_time.delay_points.max(1) as f64;
    let given = c.grace_ns.max(0) as f64;
    let suggested = report.suggested_grace_ns as f64;
    // x: from a decade below the first positive lateness to a decade
    // boundary past the max and both graces.
    let first = c
        .later_than
        .iter()
        .map(|(b, _)| *b)
        .find(|b| *b > 0)
        .unwrap_or(1_000) as f64;
    let last = (report.lateness_ns.max as f64)
        .max(given)
        .max(suggested)
        .max(first);
    let x0 = 10f64.powf(first.log10().floor());
    // Room right of the largest grace for its label.
    let x1 = 10f64.powf((last * 20.0).log10().ceil());
    // y: down to a decade below one point in all.
    let y0 = 10f64.powf((1.0 / points).log10().floor() - 1.0);
    let mut chart = ChartBuilder::on(area)
        .caption(LATENESS_TITLE, (FONT, 22))
        .margin(15)
        .margin_right(45)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d((x0..x1).log_scale(), (y0..1.0f64).log_scale())?;
    chart
        .configure_mesh()
        .x_desc("lateness x (how far a point is behind the newest before it)")
        .y_desc("fraction later than x")
        .x_label_formatter(&|x| go(*x))
        .y_label_formatter(&|y| format!("{y:e}"))
        .label_style((FONT, 14))
        .light_line_style(RGBColor(238, 238, 238))
        .draw()?;
    // The curve: at each bucket bound with points, the fraction later;
    // once none is later it drops to the bottom.
    let mut curve: Vec<(f64, f64)> = Vec::new();
    let mut later = 1.0;
    for &(bound, above) in &c.later_than {
        let x = (bound as f64).max(x0);
        curve.push((x, later));
        later = above as f64 / points;
        curve.push((x, later.max(y0)));
    }
    curve.dedup();
    chart
        .draw_series(LineSeries::new(curve, CURVE.stroke_width(2)))?
        .label("delay points later than x")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], CURVE.stroke_width(2)));
    // The graces: one line each, labels on two rows so they never overlap.
    let marks = [
        (
            given,
            format!("given grace {}", report.options.grace),
            GIVEN,
            0.5,
        ),
        (
            suggested,
            format!("suggested grace {}", report.suggested_grace),
            SUGGESTED,
            0.12,
        ),
    ];
    for (ns, label, color, at) in marks {
        let x = ns.max(x0);
        chart.draw_series(LineSeries::new([(x, y0), (x, 1.0)], color.stroke_width(2)))?;
        // Right of the line (the x axis leaves room for it).
        let pos = Pos::new(HPos::Left, VPos::Center);
        let style = TextStyle::from((FONT, 15).into_font())
            .color(&color)
            .pos(pos);
        let nudge = 1.06;
        chart.draw_series(std::iter::once(Text::new(label, (x * nudge, at), style)))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerLeft)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .label_font((FONT, 14))
        .draw()?;
    Ok(())
}

/// The coverage chart: stacked bars per bucket of windows.
fn windows(report: &Report, area: &Area<'_>) -> Result<()> {
    let c = &report.curves;
    let first = c.windows.first().map_or(0, |w| w.start_ns);
    let last = c.windows.last().map_or(0, |w| w.start_ns) + c.bucket_ns.max(1);
    let span = ((last - first) as f64 / 1e9).max(1.0);
    let top = c
        .windows
        .iter()
        .map(|w| w.rows + w.without.0.iter().sum::<u64>())
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let per = match c.bucket_ns / c.period_ns.max(1) {
        n if n <= 1 => "per window".to_string(),
        n => format!("per {n} windows (bucketed)"),
    };
    let start = chrono::DateTime::from_timestamp_nanos(first)
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let mut chart = ChartBuilder::on(area)
        .caption(WINDOWS_TITLE, (FONT, 22))
        .margin(15)
        .margin_right(45)
        .x_label_area_size(45)
        .y_label_area_size(70)
        // Room above the bars for the legend.
        .build_cartesian_2d(0f64..span, 0f64..top * 1.45)?;
    chart
        .configure_mesh()
        .x_desc(format!("event time of the window since {start}"))
        .y_desc(format!("forward pairs {per}"))
        .x_label_formatter(&|s| go(s * 1e9))
        .y_label_formatter(&|y| format!("{y:.0}"))
        .label_style((FONT, 14))
        .light_line_style(RGBColor(238, 238, 238))
        .draw()?;
    let width = c.bucket_ns as f64 / 1e9;
    let x = |w: &super::report::WindowCounts| (w.start_ns - first) as f64 / 1e9;
    // Layer 0 the rows, then each reason that occurred, stacked.
    let totals = &report.coverage.without;
    let mut layers: Vec<(String, RGBColor, usize)> =
        vec![(format!("rows written ({})", report.coverage.rows), ROWS, 0)];
    for (i, (name, n)) in totals.all().enumerate() {
        if n > 0 {
            layers.push((
                format!("no row: {} ({n})", reason_text(name)),
                REASONS[i],
                i + 1,
            ));
        }
    }
    let mut base: Vec<f64> = vec![0.0; c.windows.len()];
    for (label, color, slot) in layers {
        let bars: Vec<_> = c
            .windows
            .iter()
            .zip(&mut base)
            .filter_map(|(w, b)| {
                let n = if slot == 0 {
                    w.rows
                } else {
                    w.without.0[slot - 1]
                };
                if n == 0 {
                    return None;
                }
                let (lo, hi) = (*b, *b + n as f64);
                *b = hi;
                Some(Rectangle::new(
                    [(x(w), lo), (x(w) + width * 0.9, hi)],
                    color.filled(),
                ))
            })
            .collect();
        chart
            .draw_series(bars)?
            .label(label)
            .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 14, y + 6)], color.filled()));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .label_font((FONT, 14))
        .draw()?;
    Ok(())
}
