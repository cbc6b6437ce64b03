//! Floats in plans: equality that treats NaN as a value, and JSON that keeps every float
//! bit for bit.
//!
//! JSON has no NaN or infinity (serde_json writes them as `null`), yet a nodata value, a
//! constant of an expression or a clip bound may be one. In plans they are written as the
//! strings `"NaN"`, `"inf"` and `"-inf"`; finite values are JSON numbers that read back
//! to the same bits (`f32` values are written as the shortest decimal that does).

use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// Same value for a computation: equal bits, or both NaN.
pub(crate) fn same_f64(a: f64, b: f64) -> bool {
    a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
}

/// [`same_f64`] for `f32`.
pub(crate) fn same_f32(a: f32, b: f32) -> bool {
    a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
}

/// [`same_f64`] for optional values.
pub(crate) fn same_opt_f64(a: Option<f64>, b: Option<f64>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => same_f64(a, b),
        (None, None) => true,
        _ => false,
    }
}

/// An `f64` as plans write it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct F64(pub(crate) f64);

/// An `f32` as plans write it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct F32(pub(crate) f32);

fn non_finite<S: Serializer>(v: f64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(if v.is_nan() {
        "NaN"
    } else if v > 0.0 {
        "inf"
    } else {
        "-inf"
    })
}

impl Serialize for F64 {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.0.is_finite() {
            s.serialize_f64(self.0)
        } else {
            non_finite(self.0, s)
        }
    }
}

impl Serialize for F32 {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let v = self.0;
        if !v.is_finite() {
            return non_finite(f64::from(v), s);
        }
        // Readers parse a number as f64 and narrow it: write the shortest decimal of the
        // f32 (0.3, not 0.30000001192092896) when it narrows back to the same bits, else
        // the exact f64 of the value.
        let short: f64 = format!("{v:e}").parse().unwrap_or(f64::from(v));
        let wide = if (short as f32).to_bits() == v.to_bits() {
            short
        } else {
            f64::from(v)
        };
        s.serialize_f64(wide)
    }
}

struct NumberVisitor;

impl Visitor<'_> for NumberVisitor {
    type Value = f64;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a number, \"NaN\", \"inf\" or \"-inf\"")
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<f64, E> {
        Ok(v)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<f64, E> {
        Ok(v as f64)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<f64, E> {
        Ok(v as f64)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<f64, E> {
        match v {
            "NaN" => Ok(f64::NAN),
            "inf" => Ok(f64::INFINITY),
            "-inf" => Ok(f64::NEG_INFINITY),
            _ => Err(E::invalid_value(de::Unexpected::Str(v), &self)),
        }
    }
}

impl<'de> Deserialize<'de> for F64 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<F64, D::Error> {
        d.deserialize_any(NumberVisitor).map(F64)
    }
}

impl<'de> Deserialize<'de> for F32 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<F32, D::Error> {
        // NaN narrows to f32's NaN, infinities to infinities.
        d.deserialize_any(NumberVisitor).map(|v| F32(v as f32))
    }
}

/// `#[serde(with = "crate::core::float::with_f64")]`
pub(crate) mod with_f64 {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        F64(*v).serialize(s)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        F64::deserialize(d).map(|v| v.0)
    }
}

/// `#[serde(with = "crate::core::float::with_f32")]`
pub(crate) mod with_f32 {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(v: &f32, s: S) -> Result<S::Ok, S::Error> {
        F32(*v).serialize(s)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f32, D::Error> {
        F32::deserialize(d).map(|v| v.0)
    }
}

/// `#[serde(with = "crate::core::float::with_opt_f64")]`: `None` is `null`.
pub(crate) mod with_opt_f64 {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(v: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
        v.map(F64).serialize(s)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
        Option::<F64>::deserialize(d).map(|v| v.map(|v| v.0))
    }
}

/// `#[serde(with = "crate::core::float::with_f64x6")]`, for geotransforms.
pub(crate) mod with_f64x6 {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(v: &[f64; 6], s: S) -> Result<S::Ok, S::Error> {
        v.map(F64).serialize(s)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[f64; 6], D::Error> {
        <[F64; 6]>::deserialize(d).map(|v| v.map(|v| v.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_f64(v: f64) -> f64 {
        let text = serde_json::to_string(&F64(v)).unwrap();
        serde_json::from_str::<F64>(&text).unwrap().0
    }

    fn round_f32(v: f32) -> (String, f32) {
        let text = serde_json::to_string(&F32(v)).unwrap();
        (text.clone(), serde_json::from_str::<F32>(&text).unwrap().0)
    }

    #[test]
    fn f64_round_trips_bit_for_bit() {
        let mut x = 0x1234_5678_9abc_def0u64;
        let mut values = vec![
            0.0,
            -0.0,
            1e-4,
            0.1 + 0.2,
            f64::MIN_POSITIVE,
            5e-324,
            f64::MAX,
            -f64::MAX,
            399960.0,
            -29.999999999999996,
        ];
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let v = f64::from_bits(x);
            if v.is_finite() {
                values.push(v);
            }
        }
        for v in values {
            assert_eq!(round_f64(v).to_bits(), v.to_bits(), "{v:e}");
        }
        assert!(round_f64(f64::NAN).is_nan());
        assert_eq!(round_f64(f64::INFINITY), f64::INFINITY);
        assert_eq!(round_f64(f64::NEG_INFINITY), f64::NEG_INFINITY);
    }

    #[test]
    fn f32_round_trips_bit_for_bit_and_reads_short() {
        assert_eq!(round_f32(0.3).0, "0.3");
        assert_eq!(round_f32(1.0).0, "1.0");
        assert_eq!(round_f32(f32::NAN).0, "\"NaN\"");
        assert!(round_f32(f32::NAN).1.is_nan());
        assert_eq!(round_f32(f32::NEG_INFINITY).1, f32::NEG_INFINITY);
        let mut x = 0x9e37_79b9u32;
        for _ in 0..200_000 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            let v = f32::from_bits(x);
            if v.is_finite() {
                assert_eq!(round_f32(v).1.to_bits(), v.to_bits(), "{v:e}");
            }
        }
        for v in [
            0.0f32,
            -0.0,
            f32::MIN_POSITIVE,
            1e-45,
            f32::MAX,
            f32::MIN,
            0.1,
        ] {
            assert_eq!(round_f32(v).1.to_bits(), v.to_bits(), "{v:e}");
        }
    }

    #[test]
    fn nan_is_the_same_value_and_signed_zeros_are_not() {
        assert!(same_f64(f64::NAN, -f64::NAN));
        assert!(!same_f64(0.0, -0.0));
        assert!(same_f32(f32::NAN, f32::NAN));
        assert!(same_opt_f64(None, None));
        assert!(!same_opt_f64(Some(0.0), None));
    }
}
