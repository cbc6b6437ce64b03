//! Reductions over time and resampling to weeks or months, per pixel, skipping nodata.

use std::fmt;

use chrono::{Datelike, Days, NaiveDate};

use crate::error::{Error, Result};

/// A statistic over the time axis. Nodata (NaN) is skipped, as xarray's `skipna=True`;
/// a pixel with no valid value is NaN (and 0 for `Count`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
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
#[derive(Debug, Clone, PartialEq)]
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

/// Reduces `rows` (each `n` values) with `stat` into `out` (`n` values).
fn reduce_rows(rows: &[&[f32]], stat: Stat, out: &mut [f32]) {
    let n = out.len();
    let mut count = vec![0u32; n];
    let mut acc = vec![0f64; n];
    match stat {
        Stat::Min | Stat::Max => {
            out.fill(f32::NAN);
            for row in rows {
                for ((o, &v), c) in out.iter_mut().zip(row.iter()).zip(count.iter_mut()) {
                    if !v.is_nan() {
                        *o = if *c == 0 {
                            v
                        } else if stat == Stat::Min {
                            o.min(v)
                        } else {
                            o.max(v)
                        };
                        *c += 1;
                    }
                }
            }
            return;
        }
        _ => {
            for row in rows {
                for ((a, &v), c) in acc.iter_mut().zip(row.iter()).zip(count.iter_mut()) {
                    if !v.is_nan() {
                        *a += f64::from(v);
                        *c += 1;
                    }
                }
            }
        }
    }
    match stat {
        Stat::Count => out.iter_mut().zip(&count).for_each(|(o, &c)| *o = c as f32),
        Stat::Sum => out
            .iter_mut()
            .zip(acc.iter().zip(&count))
            .for_each(|(o, (&a, &c))| *o = if c == 0 { f32::NAN } else { a as f32 }),
        Stat::Mean => out
            .iter_mut()
            .zip(acc.iter().zip(&count))
            .for_each(|(o, (&a, &c))| {
                *o = if c == 0 {
                    f32::NAN
                } else {
                    (a / f64::from(c)) as f32
                }
            }),
        Stat::Std => {
            // Two passes: the mean first, then squared deviations (stable for large means).
            let mean: Vec<f64> = acc
                .iter()
                .zip(&count)
                .map(|(&a, &c)| if c == 0 { 0.0 } else { a / f64::from(c) })
                .collect();
            let mut ss = vec![0f64; n];
            for row in rows {
                for ((s, &v), &m) in ss.iter_mut().zip(row.iter()).zip(&mean) {
                    if !v.is_nan() {
                        *s += (f64::from(v) - m).powi(2);
                    }
                }
            }
            out.iter_mut()
                .zip(ss.iter().zip(&count))
                .for_each(|(o, (&s, &c))| {
                    *o = if c == 0 {
                        f32::NAN
                    } else {
                        (s / f64::from(c)).sqrt() as f32
                    }
                });
        }
        Stat::Min | Stat::Max => {}
    }
}

/// Applies `ops` to a time-major series of `dates.len()` rows of `n` values.
pub(crate) fn apply(series: Vec<f32>, n: usize, dates: &[NaiveDate], ops: &[TimeOp]) -> Vec<f32> {
    let mut series = series;
    let mut dates = dates.to_vec();
    for op in ops {
        let rows: Vec<&[f32]> = series.chunks_exact(n.max(1)).collect();
        series = match op {
            TimeOp::Resample(period, stat) => {
                let (labels, members) = groups(&dates, *period);
                let mut out = vec![0f32; labels.len() * n];
                for (g, m) in members.iter().enumerate() {
                    let group: Vec<&[f32]> = m.iter().map(|&t| rows[t]).collect();
                    reduce_rows(&group, *stat, &mut out[g * n..(g + 1) * n]);
                }
                dates = labels;
                out
            }
            TimeOp::Reduce(stats) => {
                let mut out = vec![0f32; stats.len() * n];
                for (k, stat) in stats.iter().enumerate() {
                    reduce_rows(&rows, *stat, &mut out[k * n..(k + 1) * n]);
                }
                out
            }
        };
    }
    series
}
