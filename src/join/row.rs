//! A row's text: the tags of a forward series and the service behind its
//! target, escaped and checked once per (series, service instance), and
//! the checks that decide whether a row can be written.

use crate::lp::write::Line;
use crate::schema::{tag, NetworkSeries, WindowEnd};

use super::{Join, SvcEntry};

/// A row as the join found it, before it is written.
pub(super) struct Row<'a> {
    /// The service behind the target.
    pub(super) service: &'a SvcEntry,
    /// The measurement and tags as written.
    pub(super) series: &'a [u8],
    /// The six values, in [`field::ROW`] order.
    pub(super) values: [f64; 6],
    /// When the reverse latency was last updated (its window's end).
    pub(super) reverse_from: WindowEnd,
}

/// A service instance: endpoint and sf_instance.
type Instance = (Box<[u8]>, Box<[u8]>);

/// What a forward series' rows share, worked out once per (series,
/// service instance) and reused while the SFR's winning instance stays the
/// same: the reverse path's key, and the row's measurement and tags as
/// written (escaped, checked portable and short enough for InfluxDB).
#[derive(Debug)]
pub(super) struct RowText {
    /// The key of the same path in the other direction.
    pub(super) reverse: Box<[u8]>,
    /// The instance `series` was prepared for (`None`: not yet).
    pub(super) service: Option<Instance>,
    /// The measurement and tags as written, or why they cannot be.
    pub(super) series: Result<Vec<u8>, &'static str>,
}

impl RowText {
    pub(super) fn new(series: &NetworkSeries<'_>) -> RowText {
        let mut reverse = Vec::new();
        series.reverse_key(&mut reverse);
        RowText {
            reverse: reverse.into(),
            service: None,
            series: Err("not prepared"),
        }
    }

    /// The series text for a row with `service`, prepared if the service
    /// instance changed.
    pub(super) fn series(
        &mut self,
        join: &Join,
        series: &NetworkSeries<'_>,
        service: &SvcEntry,
    ) -> Result<&[u8], &'static str> {
        let same = self
            .service
            .as_ref()
            .is_some_and(|(e, i)| **e == *service.endpoint && **i == *service.sf_instance);
        if !same {
            let tags = tags(series, service);
            self.series = join.check_tags(&tags).map(|()| {
                let mut text = Vec::new();
                let mut line = Line::new(&mut text, &join.settings.output);
                for (k, v) in tags {
                    line = line.tag(k, v);
                }
                text
            });
            self.service = Some((service.endpoint.clone(), service.sf_instance.clone()));
        }
        self.series.as_deref().map_err(|e| *e)
    }
}

/// Why a row's values cannot be written, if they cannot.
pub(super) fn check_fields(fields: &[f64; 6]) -> Result<(), &'static str> {
    if fields.iter().any(|f| !f.is_finite()) {
        return Err("a mean is not finite");
    }
    Ok(())
}

/// The tags of a row, sorted by key.
pub(super) fn tags<'a>(
    series: &NetworkSeries<'a>,
    service: &'a SvcEntry,
) -> [(&'a [u8], &'a [u8]); 5] {
    [
        (tag::ENDPOINT, &service.endpoint),
        (tag::PATH_ID, series.path),
        (tag::SF_INSTANCE, &service.sf_instance),
        (tag::SOURCE_SFR, series.source),
        (tag::TARGET_SFR, series.target),
    ]
}

/// A forward series as the warnings name it.
pub(super) fn describe(s: &NetworkSeries<'_>) -> String {
    format!(
        "path={} source={} target={}",
        s.path.escape_ascii(),
        s.source.escape_ascii(),
        s.target.escape_ascii()
    )
}
