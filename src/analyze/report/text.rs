//! The report as text, aligned for a terminal: one method per section.

use std::fmt::Write as _;

use super::{at_least, go, Report};

impl Report {
    /// Go text of the figure under `key`, `at least` when it was saturated.
    fn duration(&self, key: &str, ns: u64) -> String {
        if self.saturated.iter().any(|k| k == key) {
            at_least(i128::MAX)
        } else {
            go(ns)
        }
    }

    /// The report aligned for a terminal.
    pub fn text(&self) -> String {
        let mut t = Text::default();
        self.text_heading(&mut t);
        self.text_lines(&mut t);
        self.text_event_time(&mut t);
        self.text_disorder(&mut t);
        self.text_grace(&mut t);
        self.text_coverage(&mut t);
        t.0
    }

    /// The recording and the options it was replayed with.
    fn text_heading(&self, t: &mut Text) {
        let o = &self.options;
        t.line(format!("Recording {}", self.source));
        let ttl = o
            .cache_ttl
            .as_deref()
            .map(|d| format!(", cache TTL {d}"))
            .unwrap_or_default();
        t.line(format!(
            "  replayed with period {}, grace {}, precision {}{ttl}",
            o.period, o.grace, o.precision
        ));
    }

    /// What happened to each line.
    fn text_lines(&self, t: &mut Text) {
        let o = &self.options;
        t.head("Lines");
        let l = &self.lines;
        t.count("lines in", l.lines_in);
        t.count("ignored (blank, comment)", l.ignored);
        t.count("invalid", l.invalid);
        t.count("other measurements", l.other);
        t.count("delay points aggregated", l.aggregated);
        t.count(&format!("delay points late (grace {})", o.grace), l.late);
        t.count("delay points skipped", l.skipped);
        for (reason, n) in l.skipped_by_reason.all().filter(|(_, n)| *n > 0) {
            t.count(&format!("  {}", reason.replace('_', " ")), n);
        }
    }

    /// The span and rate of event time.
    fn text_event_time(&self, t: &mut Text) {
        t.head("Event time");
        let e = &self.event_time;
        match (e.first_ns, e.last_ns) {
            (Some(first), Some(last)) => {
                t.pair("first", &time(first));
                t.pair("last", &time(last));
                t.pair("span", &self.duration("event_time.span_ns", e.span_ns));
            }
            _ => t.pair("span", "no delay point"),
        }
        t.count("delay points (not skipped)", e.delay_points);
        t.pair(
            "delay points per second",
            &format!("{:.1}", e.points_per_second),
        );
        let s = &self.series;
        let at_least = if s.exact { "" } else { "at least " };
        t.pair(
            "series",
            &format!(
                "{at_least}{} network, {} service; {} SFRs, {} paths",
                thousands(s.network),
                thousands(s.service),
                thousands(s.sfrs),
                thousands(s.paths)
            ),
        );
    }

    /// How far points came behind the newest before them.
    fn text_disorder(&self, t: &mut Text) {
        t.head("Disorder: lateness of a point behind the newest before it");
        let q = &self.lateness_ns;
        for (name, v) in [
            ("p50", q.p50),
            ("p90", q.p90),
            ("p99", q.p99),
            ("p99.9", q.p999),
            ("max", q.max),
        ] {
            let key = format!("lateness_ns.{}", name.replace('.', ""));
            t.pair(name, &self.duration(&key, v));
        }
        if !self.worst_series.is_empty() {
            t.line("  worst series (max lateness):".into());
            let width = self
                .worst_series
                .iter()
                .map(|w| w.max_lateness.chars().count())
                .max()
                .unwrap_or(0);
            for w in &self.worst_series {
                t.line(format!("    {:>width$}  {}", w.max_lateness, w.series));
            }
        }
    }

    /// The smallest grace, the suggestion and the late points per grace.
    fn text_grace(&self, t: &mut Text) {
        let o = &self.options;
        t.head("Grace");
        t.pair("smallest grace with no late point", &self.smallest_grace);
        t.pair("suggested grace", &self.suggested_grace);
        t.line("  late points by grace:".into());
        let width = self
            .late_by_grace
            .iter()
            .map(|(g, _)| g.chars().count())
            .max()
            .unwrap_or(0);
        let counts: Vec<String> = self
            .late_by_grace
            .iter()
            .map(|(_, n)| thousands(*n))
            .collect();
        let cw = counts.iter().map(String::len).max().unwrap_or(0);
        for ((g, _), n) in self.late_by_grace.iter().zip(&counts) {
            let marks: Vec<&str> = [
                (&self.smallest_grace, "smallest"),
                (&self.suggested_grace, "suggested"),
                (&o.grace, "given"),
            ]
            .into_iter()
            .filter(|(v, _)| *v == g)
            .map(|(_, mark)| mark)
            .collect();
            let marks = if marks.is_empty() {
                String::new()
            } else {
                format!("  ({})", marks.join(", "))
            };
            t.line(
                format!("    {g:>width$}  {n:>cw$}{marks}")
                    .trim_end()
                    .into(),
            );
        }
    }

    /// The join's coverage, the series with most windows without a row, and the bounds reached.
    fn text_coverage(&self, t: &mut Text) {
        t.head("Join coverage: forward (series, window) pairs");
        let cov = &self.coverage;
        t.count("pairs", cov.pairs);
        t.count("rows written", cov.rows);
        t.count("without a row", cov.pairs - cov.rows);
        for (name, n) in cov.without.occurred() {
            t.count(&format!("  {}", reason_text(name)), n);
        }
        if !self.missing_rows.is_empty() {
            t.line("  forward series with the most windows without a row:".into());
            for m in &self.missing_rows {
                let why: Vec<String> = m
                    .reasons
                    .occurred()
                    .map(|(r, n)| format!("{} {}", reason_text(r), thousands(n)))
                    .collect();
                let windows = match m.windows {
                    1 => "1 window".to_string(),
                    n => format!("{} windows", thousands(n)),
                };
                t.line(format!(
                    "    path={} source={} target={}: {windows} ({})",
                    m.path,
                    m.source,
                    m.target,
                    why.join(", ")
                ));
            }
        }
        for bound in &self.bounds_reached {
            t.line(format!(
                "note: {bound} reached its memory bound (see docs/analyze.md, \"Memory\"); \
                 those figures are lower bounds"
            ));
        }
    }
}

/// The text report being built: labels and values in two columns.
#[derive(Default)]
struct Text(String);

impl Text {
    const LABEL: usize = 36;

    fn line(&mut self, s: String) {
        self.0.push_str(&s);
        self.0.push('\n');
    }

    fn head(&mut self, s: &str) {
        self.0.push('\n');
        self.line(s.into());
    }

    fn pair(&mut self, label: &str, value: &str) {
        let _ = writeln!(self.0, "  {label:<w$} {value}", w = Self::LABEL);
    }

    fn count(&mut self, label: &str, n: u64) {
        let _ = writeln!(
            self.0,
            "  {label:<w$} {:>13}",
            thousands(n),
            w = Self::LABEL
        );
    }
}

/// A reason as the text report says it.
pub(crate) fn reason_text(name: &str) -> String {
    match name {
        "no_service" => "no service for the target SFR".into(),
        "no_reverse" => "no reverse series".into(),
        "expired" => "expired by --cache-ttl".into(),
        "unwritable" => "unwritable".into(),
        null => format!("{} is null", null.trim_start_matches("null_")),
    }
}

/// An instant as RFC 3339 in UTC.
fn time(ns: i64) -> String {
    chrono::DateTime::from_timestamp_nanos(ns).to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

/// `1234567` → `1,234,567`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, d) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(d);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_have_thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000), "1,000");
        assert_eq!(thousands(100_800), "100,800");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }

    #[test]
    fn reasons_read_as_sentences() {
        assert_eq!(reason_text("null_delay_reverse"), "delay_reverse is null");
        assert_eq!(reason_text("no_service"), "no service for the target SFR");
    }
}
