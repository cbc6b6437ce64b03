//! Reductions over time and resampling to weeks or months, per pixel, skipping nodata.

use std::fmt;

use chrono::{Datelike, Days, NaiveDate};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// A statistic over the time axis. Nodata (NaN) is skipped, as xarray's `skipna=True`;
/// a pixel with no valid value is NaN (and 0 for `Count`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Stat {
    /// Number of valid values.
    Count,
    /// Sum of valid values.
    Sum,
    /// Mean of valid values.
    Mean,
    /// Population standard deviation (ddof = 0, xarray's default).
    Std,
    /// Smallest valid value.
    Min,
    /// Largest valid value.
    Max,
}

impl Stat {
    /// Lower-case name, as used in band descriptions and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Stat::Count => "count",
            Stat::Sum => "sum",
            Stat::Mean => "mean",
            Stat::Std => "std",
            Stat::Min => "min",
            Stat::Max => "max",
        }
    }
}

impl std::str::FromStr for Stat {
    type Err = Error;

    /// ```
    /// use rasterlab::array::Stat;
    /// assert_eq!("std".parse::<Stat>()?, Stat::Std);
    /// # Ok::<(), rasterlab::Error>(())
    /// ```
    fn from_str(s: &str) -> Result<Stat> {
        Ok(match s.trim().to_ascii_lowercase().as_str() {
            "count" => Stat::Count,
            "sum" => Stat::Sum,
            "mean" => Stat::Mean,
            "std" => Stat::Std,
            "min" => Stat::Min,
            "max" => Stat::Max,
            _ => {
                return Err(Error::invalid(
                    "statistic",
                    format!("{s:?}; choose from count, sum, mean, std, min, max"),
                ));
            }
        })
    }
}

impl fmt::Display for Stat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A resampling period, with pandas' labels: weeks end on Sunday (`W-SUN`), months on
/// their last day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Period {
    /// Monday to Sunday, labelled by the Sunday.
    Week,
    /// Calendar month, labelled by its last day.
    Month,
}

impl Period {
    /// The label of the period holding `date`.
    ///
    /// ```
    /// use rasterlab::array::Period;
    /// use chrono::NaiveDate;
    /// let d = NaiveDate::from_ymd_opt(2020, 1, 1).unwrap(); // a Wednesday
    /// assert_eq!(Period::Week.label(d).to_string(), "2020-01-05");
    /// assert_eq!(Period::Month.label(d).to_string(), "2020-01-31");
    /// ```
    pub fn label(self, date: NaiveDate) -> NaiveDate {
        match self {
            Period::Week => {
                let to_sunday = 6 - date.weekday().num_days_from_monday();
                date.checked_add_days(Days::new(u64::from(to_sunday)))
                    .unwrap_or(date)
            }
            Period::Month => {
                let (y, m) = if date.month() == 12 {
                    (date.year() + 1, 1)
                } else {
                    (date.year(), date.month() + 1)
                };
                NaiveDate::from_ymd_opt(y, m, 1)
                    .and_then(|d| d.pred_opt())
                    .unwrap_or(date)
            }
        }
    }

    /// The label of the next period after `label`.
    fn next(self, label: NaiveDate) -> NaiveDate {
        match self {
            Period::Week => label.checked_add_days(Days::new(7)).unwrap_or(label),
            Period::Month => label.succ_opt().map_or(label, |d| self.label(d)),
        }
    }
}

impl std::str::FromStr for Period {
    type Err = Error;

    fn from_str(s: &str) -> Result<Period> {
        match s.trim().to_ascii_lowercase().as_str() {
            "week" | "w" | "1w" | "weekly" => Ok(Period::Week),
            "month" | "m" | "1m" | "monthly" => Ok(Period::Month),
            _ => Err(Error::invalid(
                "resample period",
                format!("{s:?}; choose week or month"),
            )),
        }
    }
}

/// A step of the time pipeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum TimeOp {
    /// Group steps by period (every period from the first to the last date, empty ones
    /// giving nodata, as pandas does) and reduce each group.
    Resample(Period, Stat),
    /// Reduce the whole axis to one value per statistic (ends the pipeline).
    Reduce(Vec<Stat>),
}

/// Labels (dates or statistic names) along the time axis after `ops`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Axis {
    Dates(Vec<NaiveDate>),
    Stats(Vec<Stat>),
}

impl Axis {
    pub(crate) fn len(&self) -> usize {
        match self {
            Axis::Dates(d) => d.len(),
            Axis::Stats(s) => s.len(),
        }
    }
}

/// Groups of step indices per period label, from the first to the last date.
fn groups(dates: &[NaiveDate], period: Period) -> (Vec<NaiveDate>, Vec<Vec<usize>>) {
    let Some(first) = dates.iter().min().map(|d| period.label(*d)) else {
        return (Vec::new(), Vec::new());
    };
    let last = dates.iter().max().map_or(first, |d| period.label(*d));
    let mut labels = vec![first];
    while let Some(&l) = labels.last()
        && l < last
    {
        labels.push(period.next(l));
    }
    let mut members = vec![Vec::new(); labels.len()];
    for (t, d) in dates.iter().enumerate() {
        let label = period.label(*d);
        if let Ok(g) = labels.binary_search(&label) {
            members[g].push(t);
        }
    }
    (labels, members)
}

/// The axis after applying `ops` to a series dated `dates`.
pub(crate) fn axis_after(dates: &[NaiveDate], ops: &[TimeOp]) -> Result<Axis> {
    let mut axis = Axis::Dates(dates.to_vec());
    for op in ops {
        axis = match (axis, op) {
            (Axis::Dates(d), TimeOp::Resample(p, _)) => {
                if d.is_empty() {
                    return Err(Error::invalid(
                        "resample",
                        "the array has no time axis (no dates)",
                    ));
                }
                Axis::Dates(groups(&d, *p).0)
            }
            (Axis::Dates(_), TimeOp::Reduce(stats)) => Axis::Stats(stats.clone()),
            (Axis::Stats(_), _) => {
                return Err(Error::invalid(
                    "time reduction",
                    "the time axis is already reduced",
                ));
            }
        };
    }
    Ok(axis)
}

/// Accumulators reused across the groups of one chunk: sized once per chunk rather than
/// once per week (each is a few hundred KB, which the allocator would map and fault in
/// again every time).
#[derive(Default)]
struct Scratch {
    count: Vec<u32>,
    acc: Vec<f64>,
    ss: Vec<f64>,
}

impl Scratch {
    /// Zeroes the sums and counts for `n` values (`ss` only when `Std` needs it).
    fn reset(&mut self, n: usize, squares: bool) {
        let vs: &mut [&mut Vec<f64>] = if squares {
            &mut [&mut self.acc, &mut self.ss]
        } else {
            &mut [&mut self.acc]
        };
        for v in vs {
            v.clear();
            v.resize(n, 0.0);
        }
        self.count.clear();
        self.count.resize(n, 0);
    }
}

/// Reduces `rows` (each `n` values) with `stat` into `out` (`n` values). NaN is skipped;
/// the loops are branch-free so that they vectorize.
fn reduce_rows(rows: &[&[f32]], stat: Stat, out: &mut [f32], s: &mut Scratch) {
    if let Stat::Min | Stat::Max = stat {
        // NaN never wins `min`/`max`, so starting from NaN skips missing values.
        out.fill(f32::NAN);
        for row in rows {
            if stat == Stat::Min {
                out.iter_mut()
                    .zip(row.iter())
                    .for_each(|(o, &v)| *o = o.min(v));
            } else {
                out.iter_mut()
                    .zip(row.iter())
                    .for_each(|(o, &v)| *o = o.max(v));
            }
        }
        return;
    }
    s.reset(out.len(), stat == Stat::Std);
    for row in rows {
        for ((a, &v), c) in s.acc.iter_mut().zip(row.iter()).zip(s.count.iter_mut()) {
            let ok = !v.is_nan();
            *a += if ok { f64::from(v) } else { 0.0 };
            *c += u32::from(ok);
        }
    }
    let nan_if_empty = |c: u32, v: f64| if c == 0 { f32::NAN } else { v as f32 };
    match stat {
        Stat::Count => out
            .iter_mut()
            .zip(&s.count)
            .for_each(|(o, &c)| *o = c as f32),
        Stat::Sum => out
            .iter_mut()
            .zip(s.acc.iter().zip(&s.count))
            .for_each(|(o, (&a, &c))| *o = nan_if_empty(c, a)),
        Stat::Mean => out
            .iter_mut()
            .zip(s.acc.iter().zip(&s.count))
            .for_each(|(o, (&a, &c))| *o = nan_if_empty(c, a / f64::from(c.max(1)))),
        Stat::Std => {
            // Two passes: the mean first, then squared deviations (stable for large means).
            s.acc
                .iter_mut()
                .zip(&s.count)
                .for_each(|(a, &c)| *a /= f64::from(c.max(1)));
            for row in rows {
                for ((q, &v), &m) in s.ss.iter_mut().zip(row.iter()).zip(&s.acc) {
                    let d = if v.is_nan() { 0.0 } else { f64::from(v) - m };
                    *q += d * d;
                }
            }
            out.iter_mut()
                .zip(s.ss.iter().zip(&s.count))
                .for_each(|(o, (&q, &c))| *o = nan_if_empty(c, (q / f64::from(c.max(1))).sqrt()));
        }
        Stat::Min | Stat::Max => {}
    }
}

/// Applies `ops` to a time-major series of `dates.len()` rows of `n` values.
pub(crate) fn apply(series: &[f32], n: usize, dates: &[NaiveDate], ops: &[TimeOp]) -> Vec<f32> {
    let mut owned: Option<Vec<f32>> = None;
    let mut dates = dates.to_vec();
    let mut scratch = Scratch::default();
    for op in ops {
        let current = owned.as_deref().unwrap_or(series);
        let rows: Vec<&[f32]> = current.chunks_exact(n.max(1)).collect();
        let next = match op {
            TimeOp::Resample(period, stat) => {
                let (labels, members) = groups(&dates, *period);
                let mut out = vec![0f32; labels.len() * n];
                for (g, m) in members.iter().enumerate() {
                    let group: Vec<&[f32]> = m.iter().map(|&t| rows[t]).collect();
                    reduce_rows(&group, *stat, &mut out[g * n..(g + 1) * n], &mut scratch);
                }
                dates = labels;
                out
            }
            TimeOp::Reduce(stats) => {
                let mut out = vec![0f32; stats.len() * n];
                for (k, stat) in stats.iter().enumerate() {
                    reduce_rows(&rows, *stat, &mut out[k * n..(k + 1) * n], &mut scratch);
                }
                out
            }
        };
        owned = Some(next);
    }
    owned.unwrap_or_else(|| series.to_vec())
}
