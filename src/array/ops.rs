//! Element-wise operations, comparisons, masks and time reductions on [`LazyArray`].

use std::ops;

use super::expr::{Binary, Expr, Unary};
use super::time::{Period, Stat, TimeOp};
use super::{LazyArray, Operand, OutputType};

macro_rules! binary_methods {
    ($($(#[$doc:meta])* $name:ident => $op:ident;)*) => {
        impl LazyArray {
            $(
                $(#[$doc])*
                pub fn $name(self, other: impl Into<Operand>) -> LazyArray {
                    self.binary(Binary::$op, other.into())
                }
            )*
        }
    };
}

binary_methods! {
    /// `self ^ other`.
    pow => Pow;
    /// Element-wise minimum (NaN if either is nodata).
    minimum => Min;
    /// Element-wise maximum (NaN if either is nodata).
    maximum => Max;
    /// 1 where `self > other`, else 0; nodata stays nodata.
    gt => Gt;
    /// 1 where `self >= other`, else 0.
    ge => Ge;
    /// 1 where `self < other`, else 0.
    lt => Lt;
    /// 1 where `self <= other`, else 0.
    le => Le;
    /// 1 where `self == other`, else 0.
    eq_ => Eq;
    /// 1 where `self != other`, else 0.
    ne_ => Ne;
    /// 1 where both are non-zero.
    and => And;
    /// 1 where either is non-zero.
    or => Or;
}

impl LazyArray {
    /// Absolute value.
    pub fn abs(self) -> LazyArray {
        self.unary(Unary::Abs)
    }

    /// Square root.
    pub fn sqrt(self) -> LazyArray {
        self.unary(Unary::Sqrt)
    }

    /// Natural logarithm.
    pub fn ln(self) -> LazyArray {
        self.unary(Unary::Ln)
    }

    /// Exponential.
    pub fn exp(self) -> LazyArray {
        self.unary(Unary::Exp)
    }

    /// Rounds to the nearest integer.
    pub fn round(self) -> LazyArray {
        self.unary(Unary::Round)
    }

    /// Limits valid values to `lo..=hi`; nodata stays nodata.
    pub fn clip(self, lo: f64, hi: f64) -> LazyArray {
        self.unary(Unary::Clip(lo as f32, hi as f32))
    }

    /// 1 where the value is nodata, else 0.
    pub fn is_nodata(self) -> LazyArray {
        self.unary(Unary::IsNodata)
    }

    /// Keeps values where `cond` is non-zero and takes `other` elsewhere (xarray's
    /// `where`); nodata in `cond` gives nodata.
    ///
    /// ```
    /// use rasterlab::prelude::*;
    /// let r = Raster::open("data/rgbn_20160101.tif")?.with_band_names(["red", "green", "blue", "nir"])?;
    /// let ndvi = LazyArray::ndvi(r.clone(), "nir", "red")?;
    /// let vegetation = ndvi.clone().where_(ndvi.gt(0.3), f32::NAN);
    /// assert!(vegetation.describe().starts_with("where("));
    /// # Ok::<(), rasterlab::Error>(())
    /// ```
    pub fn where_(self, cond: impl Into<Operand>, other: impl Into<Operand>) -> LazyArray {
        let cond = match cond.into() {
            Operand::Scalar(c) => LazyArray {
                vars: vec![(String::new(), Expr::Const(c))],
                ..self.clone()
            },
            Operand::Array(a) => *a,
        };
        let other = match other.into() {
            Operand::Scalar(c) => Expr::Const(c),
            Operand::Array(a) => {
                if let Some(reason) = self.combine_error(&a) {
                    let mut s = self;
                    s.deferred.get_or_insert(reason);
                    return s;
                }
                a.vars[0].1.clone()
            }
        };
        if let Some(reason) = self.combine_error(&cond) {
            let mut s = self;
            s.deferred.get_or_insert(reason);
            return s;
        }
        let c = cond.vars[0].1.clone();
        self.map_exprs(|e| Expr::Where(Box::new(c.clone()), Box::new(e), Box::new(other.clone())))
    }

    /// geowombat's `set_nodata(src_nodata, dst_nodata, out_range, dtype, scale_factor)`:
    /// source values equal to `src_nodata` become nodata, the rest are scaled, valid
    /// values are clipped to `out_range`, and the output stores nodata as `dst_nodata`
    /// in `dtype`. Unlike geowombat, `dst_nodata` is written as is (geowombat scales and
    /// clips it, so `set_nodata(0, 65535, (0, 1), ...)` writes nodata as 1.0).
    pub fn set_nodata(
        self,
        src_nodata: f64,
        dst_nodata: f64,
        out_range: Option<(f64, f64)>,
        dtype: OutputType,
        scale_factor: f64,
    ) -> LazyArray {
        let mut a = self.nodata(src_nodata).scale(scale_factor);
        if let Some((lo, hi)) = out_range {
            a = a.clip(lo, hi);
        }
        a.out_type = dtype;
        a.fill = Some(dst_nodata);
        a
    }

    /// Stores the result as `dtype` (values are rounded and saturated by GDAL). Integer
    /// types need a nodata value: see [`LazyArray::fill_nodata`].
    pub fn cast(mut self, dtype: OutputType) -> LazyArray {
        self.out_type = dtype;
        self
    }

    /// Writes nodata as `value` (recorded as the file's nodata) instead of NaN.
    pub fn fill_nodata(mut self, value: f64) -> LazyArray {
        self.fill = Some(value);
        self
    }

    // ---- time -------------------------------------------------------------------------

    fn time_op(mut self, op: TimeOp) -> LazyArray {
        self.time_ops.push(op);
        self
    }

    /// Groups time steps by `period` for a reduction: `a.resample(Period::Week).mean()`.
    pub fn resample(self, period: Period) -> Resample {
        Resample {
            array: self,
            period,
        }
    }

    /// Reduces the time axis to one band per statistic, in the order given.
    ///
    /// ```
    /// use rasterlab::prelude::*;
    /// let series = Raster::open_glob("data/rgbn_*.tif", None)?
    ///     .with_band_names(["red", "green", "blue", "nir"])?;
    /// let stats = series.band("nir")?.reduce(&[Stat::Mean, Stat::Std]);
    /// assert_eq!(stats.band_names()?, ["nir_mean", "nir_std"]);
    /// # Ok::<(), rasterlab::Error>(())
    /// ```
    pub fn reduce(self, stats: &[Stat]) -> LazyArray {
        if stats.is_empty() {
            let mut s = self;
            s.deferred
                .get_or_insert("reduce needs at least one statistic".into());
            return s;
        }
        self.time_op(TimeOp::Reduce(stats.to_vec()))
    }

    /// Mean over time (nodata skipped).
    pub fn mean(self) -> LazyArray {
        self.reduce(&[Stat::Mean])
    }

    /// Standard deviation over time (population, nodata skipped).
    pub fn std(self) -> LazyArray {
        self.reduce(&[Stat::Std])
    }

    /// Sum over time.
    pub fn sum(self) -> LazyArray {
        self.reduce(&[Stat::Sum])
    }

    /// Minimum over time.
    pub fn min(self) -> LazyArray {
        self.reduce(&[Stat::Min])
    }

    /// Maximum over time.
    pub fn max(self) -> LazyArray {
        self.reduce(&[Stat::Max])
    }

    /// Number of valid values over time.
    pub fn count(self) -> LazyArray {
        self.reduce(&[Stat::Count])
    }
}

/// A lazy array grouped by period; pick the statistic of each group.
#[derive(Debug, Clone)]
#[must_use = "pick a statistic: .mean(), .std(), ..."]
pub struct Resample {
    array: LazyArray,
    period: Period,
}

impl Resample {
    /// Any statistic per period.
    pub fn stat(self, stat: Stat) -> LazyArray {
        self.array.time_op(TimeOp::Resample(self.period, stat))
    }

    /// Mean per period.
    pub fn mean(self) -> LazyArray {
        self.stat(Stat::Mean)
    }

    /// Sum per period.
    pub fn sum(self) -> LazyArray {
        self.stat(Stat::Sum)
    }

    /// Standard deviation per period.
    pub fn std(self) -> LazyArray {
        self.stat(Stat::Std)
    }

    /// Minimum per period.
    pub fn min(self) -> LazyArray {
        self.stat(Stat::Min)
    }

    /// Maximum per period.
    pub fn max(self) -> LazyArray {
        self.stat(Stat::Max)
    }

    /// Valid values per period.
    pub fn count(self) -> LazyArray {
        self.stat(Stat::Count)
    }
}

macro_rules! operator {
    ($trait:ident, $method:ident, $op:ident) => {
        impl<R: Into<Operand>> ops::$trait<R> for LazyArray {
            type Output = LazyArray;
            fn $method(self, rhs: R) -> LazyArray {
                self.binary(Binary::$op, rhs.into())
            }
        }
        impl<R: Into<Operand>> ops::$trait<R> for &LazyArray {
            type Output = LazyArray;
            fn $method(self, rhs: R) -> LazyArray {
                self.clone().binary(Binary::$op, rhs.into())
            }
        }
    };
}

operator!(Add, add, Add);
operator!(Sub, sub, Sub);
operator!(Mul, mul, Mul);
operator!(Div, div, Div);

/// Operators with a number on the left (`1.0 - ndvi`, `2 * band`): the number is the
/// left operand of the expression, so `1.0 - a` is not `a - 1.0`.
macro_rules! scalar_left {
    ($($scalar:ty),*) => {$(
        scalar_left!(@op $scalar, Add, add, Add);
        scalar_left!(@op $scalar, Sub, sub, Sub);
        scalar_left!(@op $scalar, Mul, mul, Mul);
        scalar_left!(@op $scalar, Div, div, Div);
    )*};
    (@op $scalar:ty, $trait:ident, $method:ident, $op:ident) => {
        impl ops::$trait<LazyArray> for $scalar {
            type Output = LazyArray;
            fn $method(self, rhs: LazyArray) -> LazyArray {
                rhs.scalar_left(Binary::$op, Operand::from(self))
            }
        }
        impl ops::$trait<&LazyArray> for $scalar {
            type Output = LazyArray;
            fn $method(self, rhs: &LazyArray) -> LazyArray {
                rhs.clone().scalar_left(Binary::$op, Operand::from(self))
            }
        }
    };
}

scalar_left!(f32, f64, i32);

impl ops::Neg for LazyArray {
    type Output = LazyArray;
    fn neg(self) -> LazyArray {
        self.unary(Unary::Neg)
    }
}
