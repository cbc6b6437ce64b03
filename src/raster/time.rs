//! Dates of time stacks: parsed from file names, or from a NetCDF time coordinate.

use std::path::Path;

use chrono::{Duration, NaiveDate, NaiveDateTime};

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

/// Converts CF time values (`units` like `days since 2000-01-01 00:00:00`) to dates.
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
    let bad = || {
        Error::invalid(
            "time units",
            format!("{units:?} (expected e.g. \"days since 2000-01-01\")"),
        )
    };
    let (unit, origin) = units.split_once(" since ").ok_or_else(bad)?;
    let seconds_per = match unit.trim().to_ascii_lowercase().as_str() {
        "days" | "day" | "d" => 86_400.0,
        "hours" | "hour" | "h" => 3_600.0,
        "minutes" | "minute" | "min" => 60.0,
        "seconds" | "second" | "s" => 1.0,
        _ => return Err(bad()),
    };
    let origin = origin.trim().trim_end_matches('Z');
    let midnight = |d: NaiveDate| d.and_hms_opt(0, 0, 0).unwrap_or_default();
    let origin = NaiveDateTime::parse_from_str(origin, "%Y-%m-%d %H:%M:%S")
        .or_else(|_| NaiveDateTime::parse_from_str(origin, "%Y-%m-%dT%H:%M:%S"))
        .or_else(|_| NaiveDateTime::parse_from_str(origin, "%Y-%m-%d %H:%M"))
        .or_else(|_| NaiveDate::parse_from_str(origin, "%Y-%m-%d").map(midnight))
        .map_err(|_| bad())?;
    values
        .iter()
        .map(|v| {
            if !v.is_finite() {
                return Err(Error::invalid("time value", format!("{v} in {units:?}")));
            }
            let secs = (v * seconds_per).round() as i64;
            Ok((origin + Duration::seconds(secs)).date())
        })
        .collect()
}
