//! Byte sizes as people write them (`512MiB`, `2GB`, `1.5 gib`).

use crate::error::{Error, Result};

/// Parses a byte size: a number (fractions allowed) and an optional, case-insensitive unit.
///
/// Units with an `i` are binary (`KiB`, `MiB`, `GiB`, `TiB`), all others decimal
/// (`K`/`KB`, `M`/`MB`, `G`/`GB`, `T`/`TB`), as in dask's `parse_bytes`; so `64k` is
/// 64 000 bytes. `B` or no unit means bytes. Spaces between number and unit are allowed;
/// fractional results are rounded to the nearest byte.
///
/// ```
/// use rasterlab::runtime::resources::parse_bytes;
///
/// # fn main() -> rasterlab::Result<()> {
/// assert_eq!(parse_bytes("512MiB")?, 512 << 20);
/// assert_eq!(parse_bytes("2GB")?, 2_000_000_000);
/// assert_eq!(parse_bytes("1.5 gib")?, 3 << 29);
/// assert_eq!(parse_bytes("64k")?, 64_000);
/// assert_eq!(parse_bytes("1073741824")?, 1 << 30);
/// assert!(parse_bytes("12 parsecs").is_err());
/// # Ok(())
/// # }
/// ```
pub fn parse_bytes(s: &str) -> Result<u64> {
    let bad = |why: &str| Error::invalid("byte size", format!("{s:?} {why}"));
    let text = s.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    if number.is_empty() {
        return Err(bad("does not start with a number"));
    }
    let multiplier = byte_unit(unit.trim())
        .ok_or_else(|| bad("has an unknown unit (use B, KB, KiB, MB, MiB, GB, GiB, TB or TiB)"))?;
    if let Ok(whole) = number.parse::<u64>() {
        return whole
            .checked_mul(multiplier)
            .ok_or_else(|| bad("is too large"));
    }
    let value: f64 = number.parse().map_err(|_| bad("is not a number"))?;
    let bytes = (value * multiplier as f64).round();
    if !bytes.is_finite() || bytes >= u64::MAX as f64 {
        return Err(bad("is too large"));
    }
    Ok(bytes as u64)
}

/// Bytes per unit, or `None` for an unknown unit.
fn byte_unit(unit: &str) -> Option<u64> {
    Some(match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1_000,
        "kib" => 1 << 10,
        "m" | "mb" => 1_000_000,
        "mib" => 1 << 20,
        "g" | "gb" => 1_000_000_000,
        "gib" => 1 << 30,
        "t" | "tb" => 1_000_000_000_000,
        "tib" => 1 << 40,
        _ => return None,
    })
}
