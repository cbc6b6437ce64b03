//! Dates of time stacks: parsed from file names, or from a NetCDF time coordinate in any
//! CF calendar ([`Calendar`], [`cf_dates_in`]).

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Finds a date written as `YYYYMMDD`, `YYYY-MM-DD` or `YYYY_MM_DD` in a file name, e.g.
/// `rgbn_20160101.tif` (the first valid one not inside a longer run of digits).
///
/// ```
/// use rasterlab::raster::time::date_from_name;
/// use chrono::NaiveDate;
/// assert_eq!(date_from_name("data/rgbn_20160401.tif"), NaiveDate::from_ymd_opt(2016, 4, 1));
/// assert_eq!(date_from_name("rain_2020-01-05.nc"), NaiveDate::from_ymd_opt(2020, 1, 5));
/// assert_eq!(date_from_name("scene.tif"), None);
/// ```
pub fn date_from_name(path: impl AsRef<Path>) -> Option<NaiveDate> {
    let name = path.as_ref().file_name()?.to_string_lossy().into_owned();
    let bytes = name.as_bytes();
    let digits = |s: &[u8]| s.iter().all(u8::is_ascii_digit);
    let num = |b: &[u8]| {
        std::str::from_utf8(b)
            .ok()
            .and_then(|t| t.parse::<u32>().ok())
    };
    for start in 0..bytes.len() {
        if start > 0 && bytes[start - 1].is_ascii_digit() {
            continue;
        }
        for (len, sep) in [(10usize, true), (8, false)] {
            let Some(s) = bytes.get(start..start + len) else {
                continue;
            };
            if bytes.get(start + len).is_some_and(u8::is_ascii_digit) {
                continue;
            }
            let (y, m, d) = if sep {
                if !(s[4] == s[7] && (s[4] == b'-' || s[4] == b'_')) {
                    continue;
                }
                (&s[0..4], &s[5..7], &s[8..10])
            } else {
                (&s[0..4], &s[4..6], &s[6..8])
            };
            if !(digits(y) && digits(m) && digits(d)) {
                continue;
            }
            if let (Some(y), Some(m), Some(d)) = (num(y), num(m), num(d))
                && (1900..=2200).contains(&y)
                && let Some(date) = NaiveDate::from_ymd_opt(y as i32, m, d)
            {
                return Some(date);
            }
        }
    }
    None
}

/// Parses a date given by the user: `YYYY-MM-DD` or `YYYYMMDD`.
///
/// ```
/// use rasterlab::raster::time::parse_date;
/// assert!(parse_date("2016-01-01").is_ok());
/// assert!(parse_date("Jan 1st").is_err());
/// ```
pub fn parse_date(s: &str) -> Result<NaiveDate> {
    let s = s.trim();
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .or_else(|_| NaiveDate::parse_from_str(s, "%Y%m%d"))
        .map_err(|_| Error::invalid("date", format!("{s:?} is not a date (use YYYY-MM-DD)")))
}

/// A CF calendar: the `calendar` attribute of a NetCDF time coordinate.
///
/// rasterlab dates are [`NaiveDate`]s, i.e. proleptic Gregorian. Every calendar reaches
/// them by one fixed rule that keeps time order and never gives two different days of a
/// file the same date; what has no such rule is refused with [`Error::Calendar`]:
///
/// | calendar (CF names) | date |
/// |---|---|
/// | `standard`, `gregorian` (the CF default) | Julian calendar up to 1582-10-04, Gregorian from 1582-10-15; earlier days are written in the Gregorian calendar (Julian 1582-10-04 is 1582-10-14); 1582-10-05 to 10-14 do not exist |
/// | `proleptic_gregorian` | the date itself |
/// | `julian` | the same day written in the Gregorian calendar (Julian 2000-01-01 is 2000-01-14) |
/// | `noleap`, `365_day` | the date itself (it always exists in the Gregorian calendar) |
/// | `all_leap`, `366_day` | the date itself; 29 February of a year that is not a Gregorian leap year is refused (366 days do not fit 365 dates without merging or dropping one) |
/// | `360_day` | by position in the year, like xarray's `convert_calendar(.., align_on="year")`: day `d` (1..=360) of year `y` becomes day `round(n * d / 360)` of Gregorian year `y`, `n` = 365 or 366, ties to even; 2000-02-30 is 2000-03-01 and 2001-02-30 is 2001-03-02 |
///
/// Years before 1 are refused in the three real-world calendars (CF counts them without a
/// year 0); the idealised calendars keep their year numbers, year 0 included.
///
/// ```
/// use rasterlab::raster::time::Calendar;
/// assert_eq!(Calendar::from_cf(None)?, Calendar::Standard);
/// assert_eq!("365_day".parse::<Calendar>()?, Calendar::NoLeap);
/// assert_eq!(Calendar::from_cf(Some("360_day"))?.name(), "360_day");
/// let err = Calendar::from_cf(Some("none")).unwrap_err();
/// assert!(matches!(err, rasterlab::Error::Calendar { .. }));
/// # Ok::<(), rasterlab::Error>(())
/// ```
///
/// Serialized (in plans) as its CF name, [`Calendar::name`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Calendar {
    /// `standard` or `gregorian`: mixed Julian/Gregorian, the CF default.
    #[default]
    #[serde(rename = "standard")]
    Standard,
    /// `proleptic_gregorian`: Gregorian rules for every year.
    #[serde(rename = "proleptic_gregorian")]
    ProlepticGregorian,
    /// `julian`: a leap year every 4 years.
    #[serde(rename = "julian")]
    Julian,
    /// `noleap` or `365_day`: no 29 February.
    #[serde(rename = "noleap")]
    NoLeap,
    /// `all_leap` or `366_day`: 29 February every year.
    #[serde(rename = "all_leap")]
    AllLeap,
    /// `360_day`: twelve months of 30 days.
    #[serde(rename = "360_day")]
    Day360,
}

const SUPPORTED: &str =
    "standard, gregorian, proleptic_gregorian, julian, noleap, 365_day, all_leap, 366_day, 360_day";

impl Calendar {
    /// The calendar named by a time coordinate's `calendar` attribute; no attribute
    /// (`None`) is `standard`, the CF default. Names are case-insensitive, as in cftime.
    ///
    /// Errors: [`Error::Calendar`] for any other name (`none`, `utc`, `tai`, a typo).
    pub fn from_cf(attribute: Option<&str>) -> Result<Calendar> {
        attribute.map_or(Ok(Calendar::Standard), str::parse)
    }

    /// The CF name (the first of its aliases: `standard`, `noleap`, `all_leap`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Calendar::Standard => "standard",
            Calendar::ProlepticGregorian => "proleptic_gregorian",
            Calendar::Julian => "julian",
            Calendar::NoLeap => "noleap",
            Calendar::AllLeap => "all_leap",
            Calendar::Day360 => "360_day",
        }
    }

    /// How dates of this calendar were made Gregorian, for displays; `None` when they
    /// are Gregorian already.
    pub(crate) fn note(self) -> Option<String> {
        let how = match self {
            Calendar::Standard | Calendar::ProlepticGregorian => return None,
            Calendar::Julian => "same days, Gregorian dates",
            Calendar::NoLeap | Calendar::AllLeap => "dates as written",
            Calendar::Day360 => "dates mapped by day of year",
        };
        Some(format!("{} calendar, {how}", self.name()))
    }

    /// Days of month `m` (1-based) of year `y`.
    fn month_len(self, y: i64, m: u32) -> u32 {
        const DAYS: [u32; 12] = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
        let leap = match self {
            Calendar::Day360 => return 30,
            Calendar::NoLeap => false,
            Calendar::AllLeap => true,
            Calendar::Julian => y.rem_euclid(4) == 0,
            Calendar::ProlepticGregorian => gregorian_leap(y),
            // 1582 is no leap year in either rule.
            Calendar::Standard if y < 1582 => y.rem_euclid(4) == 0,
            Calendar::Standard => gregorian_leap(y),
        };
        if m == 2 && leap {
            29
        } else {
            DAYS[(m - 1) as usize]
        }
    }

    /// The real-world calendars count days as Julian day numbers; the idealised ones
    /// have fixed-length years and count days from 0000-01-01.
    fn is_real_world(self) -> bool {
        matches!(
            self,
            Calendar::Standard | Calendar::ProlepticGregorian | Calendar::Julian
        )
    }

    /// The day number of `y-m-d` in this calendar (Julian day number for the real-world
    /// calendars), or why that date does not exist in it.
    fn day_number(self, y: i64, m: u32, d: u32) -> std::result::Result<i64, String> {
        if !(1..=12).contains(&m) || d == 0 || d > self.month_len(y, m) {
            return Err(format!(
                "{y:04}-{m:02}-{d:02} is not a date of this calendar"
            ));
        }
        if self.is_real_world() && y < 1 {
            return Err(format!(
                "year {y} is before year 1 (CF counts these years without a year 0), which rasterlab does not decode"
            ));
        }
        let gregorian_days = self == Calendar::ProlepticGregorian
            || (self == Calendar::Standard && (y, m, d) >= (1582, 10, 15));
        if self == Calendar::Standard && (y, m, d) > (1582, 10, 4) && !gregorian_days {
            return Err(format!(
                "{y:04}-{m:02}-{d:02} does not exist in the standard calendar (Julian until 1582-10-04, Gregorian from 1582-10-15)"
            ));
        }
        let (m, d) = (i64::from(m), i64::from(d));
        Ok(match self {
            Calendar::NoLeap | Calendar::AllLeap | Calendar::Day360 => {
                let before: i64 = (1..m).map(|k| i64::from(self.month_len(y, k as u32))).sum();
                y * self.year_len() + before + d - 1
            }
            // Fliegel and Van Flandern's day numbers, with floor division for any year.
            _ => {
                let a = (14 - m) / 12;
                let yy = y + 4800 - a;
                let mm = m + 12 * a - 3;
                let common = d + (153 * mm + 2) / 5 + 365 * yy + yy.div_euclid(4);
                if gregorian_days {
                    common - yy.div_euclid(100) + yy.div_euclid(400) - 32045
                } else {
                    common - 32083
                }
            }
        })
    }

    /// Days per year of an idealised calendar.
    fn year_len(self) -> i64 {
        match self {
            Calendar::AllLeap => 366,
            Calendar::Day360 => 360,
            _ => 365,
        }
    }

    /// The Gregorian date of day number `n`; `at` names the time value for errors.
    fn gregorian_date(self, n: i64, at: &dyn Fn() -> String) -> Result<NaiveDate> {
        let out_of_range = || Error::invalid("time value", format!("{} is out of range", at()));
        if self.is_real_world() {
            // The real-world calendars count days alike, so day n is one day: write it as a
            // Gregorian date.
            let first = self.day_number(1, 1, 1).unwrap_or(i64::MIN);
            if n < first {
                return Err(calendar_error(
                    self.name(),
                    format!(
                        "{} falls before year 1, which rasterlab does not decode",
                        at()
                    ),
                ));
            }
            // Julian day number 1721426 is 0001-01-01, day 1 of chrono's count.
            return i32::try_from(n - 1_721_425)
                .ok()
                .and_then(NaiveDate::from_num_days_from_ce_opt)
                .ok_or_else(out_of_range);
        }
        let len = self.year_len();
        let y = i32::try_from(n.div_euclid(len)).map_err(|_| out_of_range())?;
        if NaiveDate::from_ymd_opt(y, 1, 1).is_none()
            || NaiveDate::from_ymd_opt(y, 12, 31).is_none()
        {
            return Err(out_of_range());
        }
        let doy = n.rem_euclid(len) as u32 + 1;
        match self {
            Calendar::Day360 => {
                // xarray's align_on="year": the same fraction of the year, rounded half to
                // even as numpy does; strictly increasing, since 365/360 > 1.
                let days: u32 = if gregorian_leap(i64::from(y)) {
                    366
                } else {
                    365
                };
                let (q, r) = ((days * doy) / 360, (days * doy) % 360);
                let ordinal = if 2 * r > 360 || (2 * r == 360 && q % 2 == 1) {
                    q + 1
                } else {
                    q
                };
                NaiveDate::from_yo_opt(y, ordinal).ok_or_else(out_of_range)
            }
            _ => {
                let (mut m, mut d) = (1, doy);
                while d > self.month_len(i64::from(y), m) {
                    d -= self.month_len(i64::from(y), m);
                    m += 1;
                }
                NaiveDate::from_ymd_opt(y, m, d).ok_or_else(|| {
                    calendar_error(
                        self.name(),
                        format!(
                            "{} is {y:04}-{m:02}-{d:02}, which does not exist in the Gregorian \
                             calendar; rasterlab would have to merge it with a neighbour or drop \
                             it, and does not guess (convert the file's calendar first, e.g. \
                             with xarray's convert_calendar)",
                            at()
                        ),
                    )
                })
            }
        }
    }
}

impl FromStr for Calendar {
    type Err = Error;

    /// Parses a CF calendar name (case-insensitive; aliases accepted).
    fn from_str(s: &str) -> Result<Calendar> {
        Ok(match s.trim().to_ascii_lowercase().as_str() {
            "standard" | "gregorian" => Calendar::Standard,
            "proleptic_gregorian" => Calendar::ProlepticGregorian,
            "julian" => Calendar::Julian,
            "noleap" | "365_day" => Calendar::NoLeap,
            "all_leap" | "366_day" => Calendar::AllLeap,
            "360_day" => Calendar::Day360,
            other => {
                let why = match other {
                    "none" => "a time axis without a calendar has no dates",
                    "utc" | "tai" => {
                        "dates in it need a leap-second table, which rasterlab does not have"
                    }
                    _ => "not a CF calendar",
                };
                return Err(calendar_error(
                    s,
                    format!("{why}; rasterlab decodes {SUPPORTED}"),
                ));
            }
        })
    }
}

impl fmt::Display for Calendar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

fn gregorian_leap(y: i64) -> bool {
    y.rem_euclid(4) == 0 && (y.rem_euclid(100) != 0 || y.rem_euclid(400) == 0)
}

/// An [`Error::Calendar`] without a file yet ([`decode_time_axis`] adds it).
fn calendar_error(calendar: &str, reason: String) -> Error {
    Error::Calendar {
        path: std::path::PathBuf::new(),
        calendar: calendar.to_string(),
        reason,
    }
}

const DAY_US: i128 = 86_400_000_000;

/// The origin of CF time units: a date in the file's calendar and a time of day.
struct Stamp {
    y: i64,
    m: u32,
    d: u32,
    micros: i64,
}

/// Parses `Y-M-D[( |T)h:m[:s[.f]]][ Z|UTC|+00:00]` by hand: the date may not exist in the
/// Gregorian calendar (`2000-02-30` in `360_day`).
fn parse_stamp(s: &str) -> std::result::Result<Stamp, String> {
    let number = |t: &str| -> std::result::Result<i64, String> {
        if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) || t.len() > 9 {
            return Err(format!("{t:?} is not a number"));
        }
        t.parse::<i64>().map_err(|e| e.to_string())
    };
    let s = s.trim();
    let (sign, rest) = match s.strip_prefix('-') {
        Some(r) => (-1, r),
        None => (1, s),
    };
    let end = rest
        .find(|c: char| c == 'T' || c == 't' || c.is_whitespace())
        .unwrap_or(rest.len());
    let (date, rest) = rest.split_at(end);
    let [y, m, d] = date.split('-').collect::<Vec<_>>()[..] else {
        return Err(format!("{date:?} is not a date Y-M-D"));
    };
    let (y, m, d) = (sign * number(y)?, number(m)?, number(d)?);
    let rest = rest.strip_prefix(['T', 't']).unwrap_or(rest).trim_start();
    let time_end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == ':' || c == '.'))
        .unwrap_or(rest.len());
    let (time, zone) = rest.split_at(time_end);
    let mut micros = 0;
    if !time.is_empty() {
        let fields: Vec<&str> = time.split(':').collect();
        let (h, mi, sec) = match fields[..] {
            [h, mi] => (number(h)?, number(mi)?, 0.0),
            [h, mi, sec] => {
                let whole = sec.split('.').next().unwrap_or_default();
                number(whole)?;
                let sec: f64 = sec.parse().map_err(|_| format!("{sec:?} is not seconds"))?;
                (number(h)?, number(mi)?, sec)
            }
            _ => return Err(format!("{time:?} is not a time h:m:s")),
        };
        if h > 23 || mi > 59 || sec >= 60.0 {
            return Err(format!("{time:?} is not a time of day"));
        }
        micros = (h * 3600 + mi * 60) * 1_000_000 + (sec * 1e6).round() as i64;
    }
    let zone = zone.trim();
    let utc = matches!(zone, "" | "Z" | "z" | "UTC" | "utc" | "GMT")
        || (zone.bytes().any(|b| b.is_ascii_digit())
            && zone
                .trim_start_matches(['+', '-'])
                .bytes()
                .all(|b| b == b'0' || b == b':'));
    if !utc {
        return Err(format!(
            "time zone {zone:?} is not supported (only UTC origins are)"
        ));
    }
    let m = u32::try_from(m).map_err(|e| e.to_string())?;
    let d = u32::try_from(d).map_err(|e| e.to_string())?;
    Ok(Stamp { y, m, d, micros })
}

/// Converts CF time values (`units` like `days since 2000-01-01 00:00:00`) in the
/// `standard` calendar (the CF default) to dates: [`cf_dates_in`] with
/// [`Calendar::Standard`].
///
/// ```
/// use rasterlab::raster::time::cf_dates;
/// let d = cf_dates(&[0.0, 1.0, 31.0], "days since 2020-01-01")?;
/// assert_eq!(d[2].to_string(), "2020-02-01");
/// let h = cf_dates(&[48.0], "hours since 2020-01-01 00:00:00")?;
/// assert_eq!(h[0].to_string(), "2020-01-03");
/// # Ok::<(), rasterlab::Error>(())
/// ```
pub fn cf_dates(values: &[f64], units: &str) -> Result<Vec<NaiveDate>> {
    cf_dates_in(values, units, Calendar::Standard)
}

/// Converts CF time values (`units` like `days since 2000-01-01 00:00:00`, with days,
/// hours, minutes, seconds, milliseconds or microseconds) counted in `calendar` to dates,
/// by the rule of [`Calendar`]: every calendar date is computed in its own calendar
/// (the origin in `units` is a date of that calendar), then made Gregorian.
///
/// Errors: [`Error::Invalid`] for units that are not `<unit> since <date>` (months and
/// years are refused: they have no fixed length) and for values that are not finite or
/// out of range; [`Error::Calendar`] for an origin that is not a date of `calendar` and for
/// dates the calendar's rule refuses.
///
/// ```
/// use rasterlab::raster::time::{Calendar, cf_dates_in};
/// let show = |d: Vec<chrono::NaiveDate>| d.iter().map(|d| d.to_string()).collect::<Vec<_>>();
///
/// // noleap: 2000-02-28 is followed by 2000-03-01.
/// let d = cf_dates_in(&[0.0, 1.0], "days since 2000-02-28", Calendar::NoLeap)?;
/// assert_eq!(show(d), ["2000-02-28", "2000-03-01"]);
///
/// // 360_day: by position in the year, 29 and 30 February (days 59 and 60 of 360) become
/// // days 60 and 61 of the Gregorian leap year 2000.
/// let d = cf_dates_in(&[0.0, 24.0, 48.0], "hours since 2000-02-29 06:00", Calendar::Day360)?;
/// assert_eq!(show(d), ["2000-02-29", "2000-03-01", "2000-03-02"]);
///
/// // julian: the same day in the Gregorian calendar.
/// let d = cf_dates_in(&[0.0], "days since 2000-01-01", Calendar::Julian)?;
/// assert_eq!(show(d), ["2000-01-14"]);
///
/// // standard: Julian before 1582-10-15.
/// let d = cf_dates_in(&[0.0, 1.0], "days since 1582-10-04", Calendar::Standard)?;
/// assert_eq!(show(d), ["1582-10-14", "1582-10-15"]);
///
/// // all_leap: 2001-02-29 has no Gregorian date.
/// let err = cf_dates_in(&[1.0], "days since 2001-02-28", Calendar::AllLeap).unwrap_err();
/// assert!(matches!(err, rasterlab::Error::Calendar { .. }));
/// # Ok::<(), rasterlab::Error>(())
/// ```
pub fn cf_dates_in(values: &[f64], units: &str, calendar: Calendar) -> Result<Vec<NaiveDate>> {
    let bad = |why: &str| {
        Error::invalid(
            "time units",
            format!("{units:?}: {why} (expected e.g. \"days since 2000-01-01\")"),
        )
    };
    let mut words = units.trim().splitn(3, char::is_whitespace);
    let (unit, since, origin) = (
        words.next().unwrap_or_default(),
        words.next().unwrap_or_default(),
        words.next().unwrap_or_default(),
    );
    if !since.eq_ignore_ascii_case("since") {
        return Err(bad("no \"since\""));
    }
    let micros_per: i64 = match unit.to_ascii_lowercase().as_str() {
        "days" | "day" | "d" => 86_400_000_000,
        "hours" | "hour" | "hrs" | "hr" | "h" => 3_600_000_000,
        "minutes" | "minute" | "mins" | "min" => 60_000_000,
        "seconds" | "second" | "secs" | "sec" | "s" => 1_000_000,
        "milliseconds" | "millisecond" | "msecs" | "msec" | "ms" => 1_000,
        "microseconds" | "microsecond" | "usecs" | "usec" | "us" => 1,
        "months" | "month" | "years" | "year" | "yr" => {
            return Err(bad(
                "months and years have no fixed length (CF advises against them); use days",
            ));
        }
        _ => return Err(bad("unknown unit")),
    };
    let origin = parse_stamp(origin).map_err(|why| bad(&why))?;
    let origin_day = calendar
        .day_number(origin.y, origin.m, origin.d)
        .map_err(|why| calendar_error(calendar.name(), format!("origin of {units:?}: {why}")))?;
    values
        .iter()
        .map(|&v| {
            let at = || format!("{v} {units}");
            let offset = v * micros_per as f64;
            // 1e20 us is about 3 million years, past chrono's range: checked exactly below.
            if !offset.is_finite() || offset.abs() > 1e20 {
                return Err(Error::invalid(
                    "time value",
                    format!("{} is out of range", at()),
                ));
            }
            let micros = i128::from(origin.micros) + offset.round() as i128;
            let day = i64::try_from(i128::from(origin_day) + micros.div_euclid(DAY_US))
                .map_err(|_| Error::invalid("time value", format!("{} is out of range", at())))?;
            calendar.gregorian_date(day, &at)
        })
        .collect()
}

/// Dates of the NetCDF time axis of `path`: its values, `units` and `calendar` attribute
/// (`None` when absent). Calendar errors name the file, and the calendar as the file
/// spells it.
pub(crate) fn decode_time_axis(
    path: &Path,
    values: &[f64],
    units: &str,
    calendar: Option<&str>,
) -> Result<(Calendar, Vec<NaiveDate>)> {
    let in_file = |e: Error| match e {
        Error::Calendar {
            calendar: name,
            reason,
            ..
        } => Error::Calendar {
            path: path.to_path_buf(),
            calendar: calendar.map_or(name, str::to_string),
            reason,
        },
        other => other,
    };
    let cal = Calendar::from_cf(calendar).map_err(in_file)?;
    let dates = cf_dates_in(values, units, cal).map_err(in_file)?;
    Ok((cal, dates))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ymd(s: &str) -> NaiveDate {
        parse_date(s).expect("date")
    }

    #[test]
    fn julian_day_numbers_match_the_published_ones() {
        // Second check only: the tests in tests/calendars.rs compare with cftime.
        let jdn = |c: Calendar, y, m, d| c.day_number(y, m, d).expect("day");
        assert_eq!(jdn(Calendar::ProlepticGregorian, 2000, 1, 1), 2_451_545);
        assert_eq!(jdn(Calendar::Julian, 2000, 1, 1), 2_451_558);
        assert_eq!(jdn(Calendar::Standard, 1582, 10, 4), 2_299_160);
        assert_eq!(jdn(Calendar::Standard, 1582, 10, 15), 2_299_161);
        assert_eq!(jdn(Calendar::Julian, 1, 1, 1), 1_721_424);
        assert_eq!(jdn(Calendar::ProlepticGregorian, 1, 1, 1), 1_721_426);
        assert!(Calendar::Standard.day_number(1582, 10, 10).is_err());
        assert!(Calendar::Standard.day_number(0, 1, 1).is_err());
    }

    #[test]
    fn idealised_days_round_trip_to_their_labels() {
        let none = || String::new();
        for cal in [Calendar::NoLeap, Calendar::AllLeap] {
            for y in [-3, 0, 1, 1999, 2000, 2100] {
                for m in 1..=12 {
                    for d in 1..=cal.month_len(y, m) {
                        let n = cal.day_number(y, m, d).expect("day");
                        match cal.gregorian_date(n, &none) {
                            Ok(date) => assert_eq!(
                                date,
                                NaiveDate::from_ymd_opt(y as i32, m, d).expect("date")
                            ),
                            // Only 29 February of a Gregorian common year is refused.
                            Err(Error::Calendar { .. }) => {
                                assert!(cal == Calendar::AllLeap && (m, d) == (2, 29));
                                assert!(!gregorian_leap(y));
                            }
                            Err(e) => panic!("{e}"),
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn day_360_fills_the_year_in_order() {
        let none = || String::new();
        for y in [1900, 2000, 2001] {
            let dates: Vec<NaiveDate> = (1..=12)
                .flat_map(|m| (1..=30).map(move |d| (m, d)))
                .map(|(m, d)| {
                    let n = Calendar::Day360.day_number(y, m, d).expect("day");
                    Calendar::Day360.gregorian_date(n, &none).expect("date")
                })
                .collect();
            assert!(dates.windows(2).all(|w| w[0] < w[1]));
            assert_eq!(dates[0], ymd(&format!("{y}-01-01")));
            assert_eq!(dates[359], ymd(&format!("{y}-12-31")));
        }
    }

    #[test]
    fn origins_in_common_spellings() {
        for units in [
            "days since 2000-1-1",
            "days since 2000-01-01 00:00:00",
            "days since 2000-01-01T00:00:00Z",
            "days since 2000-01-01 00:00:00.0",
            "days since 2000-01-01 00:00 UTC",
            "days since 2000-01-01 0:0:0 +00:00",
            "Days Since 2000-01-01",
        ] {
            let d = cf_dates_in(&[0.0], units, Calendar::NoLeap).expect(units);
            assert_eq!(d, [ymd("2000-01-01")], "{units}");
        }
        for units in [
            "months since 2000-01-01",
            "days after 2000-01-01",
            "days since 2000-01",
            "days since 2000-01-01 25:00",
            "days since 2000-01-01 00:00 +01:00",
        ] {
            let e = cf_dates_in(&[0.0], units, Calendar::NoLeap).expect_err(units);
            assert!(
                matches!(
                    e,
                    Error::Invalid {
                        what: "time units",
                        ..
                    }
                ),
                "{units}: {e}"
            );
        }
        let e = cf_dates_in(&[0.0], "days since 2001-02-29", Calendar::NoLeap).expect_err("29 Feb");
        assert!(matches!(e, Error::Calendar { .. }), "{e}");
    }

    #[test]
    fn errors_name_the_calendar_and_file() {
        let e = decode_time_axis(
            Path::new("x.nc"),
            &[0.0],
            "days since 2000-01-01",
            Some("noleep"),
        )
        .expect_err("typo");
        let msg = e.to_string();
        assert!(msg.contains("x.nc") && msg.contains("\"noleep\""), "{msg}");
        let e =
            cf_dates_in(&[f64::NAN], "days since 2000-01-01", Calendar::Day360).expect_err("nan");
        assert!(matches!(
            e,
            Error::Invalid {
                what: "time value",
                ..
            }
        ));
        let e = cf_dates_in(&[1e300], "days since 2000-01-01", Calendar::Julian).expect_err("far");
        assert!(matches!(
            e,
            Error::Invalid {
                what: "time value",
                ..
            }
        ));
    }
}
