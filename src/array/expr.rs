//! The element-wise expression tree fused per chunk.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use crate::core::float::same_f32;

/// Element-wise functions of one operand.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Unary {
    Neg,
    Abs,
    Sqrt,
    Ln,
    Exp,
    Round,
    /// Valid values limited to `lo..=hi`; NaN stays NaN.
    Clip(
        #[serde(with = "crate::core::float::with_f32")] f32,
        #[serde(with = "crate::core::float::with_f32")] f32,
    ),
    /// 1 where the value is nodata (NaN), else 0.
    IsNodata,
}

/// Element-wise functions of two operands. Comparisons give 1 or 0, and NaN where either
/// side is nodata, so masks carry nodata along.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Binary {
    Add,
    Sub,
    Mul,
    Div,
    Pow,
    Min,
    Max,
    Gt,
    Ge,
    Lt,
    Le,
    Eq,
    Ne,
    And,
    Or,
}

impl Binary {
    fn symbol(self) -> &'static str {
        match self {
            Binary::Add => "+",
            Binary::Sub => "-",
            Binary::Mul => "*",
            Binary::Div => "/",
            Binary::Pow => "^",
            Binary::Min => "min",
            Binary::Max => "max",
            Binary::Gt => ">",
            Binary::Ge => ">=",
            Binary::Lt => "<",
            Binary::Le => "<=",
            Binary::Eq => "==",
            Binary::Ne => "!=",
            Binary::And => "&",
            Binary::Or => "|",
        }
    }

    #[inline]
    fn apply(self, a: f32, b: f32) -> f32 {
        let flag = |c: bool| {
            if a.is_nan() || b.is_nan() {
                f32::NAN
            } else {
                f32::from(u8::from(c))
            }
        };
        match self {
            Binary::Add => a + b,
            Binary::Sub => a - b,
            Binary::Mul => a * b,
            Binary::Div => a / b,
            Binary::Pow => a.powf(b),
            Binary::Min => {
                if a.is_nan() || b.is_nan() {
                    f32::NAN
                } else {
                    a.min(b)
                }
            }
            Binary::Max => {
                if a.is_nan() || b.is_nan() {
                    f32::NAN
                } else {
                    a.max(b)
                }
            }
            Binary::Gt => flag(a > b),
            Binary::Ge => flag(a >= b),
            Binary::Lt => flag(a < b),
            Binary::Le => flag(a <= b),
            Binary::Eq => flag(a == b),
            Binary::Ne => flag(a != b),
            Binary::And => flag(a != 0.0 && b != 0.0),
            Binary::Or => flag(a != 0.0 || b != 0.0),
        }
    }
}

impl Unary {
    #[inline]
    fn apply(self, v: f32) -> f32 {
        match self {
            Unary::Neg => -v,
            Unary::Abs => v.abs(),
            Unary::Sqrt => v.sqrt(),
            Unary::Ln => v.ln(),
            Unary::Exp => v.exp(),
            Unary::Round => v.round(),
            Unary::Clip(lo, hi) => {
                if v.is_nan() {
                    v
                } else {
                    v.clamp(lo, hi)
                }
            }
            Unary::IsNodata => f32::from(u8::from(v.is_nan())),
        }
    }

    fn name(self) -> String {
        match self {
            Unary::Neg => "-".into(),
            Unary::Abs => "abs".into(),
            Unary::Sqrt => "sqrt".into(),
            Unary::Ln => "ln".into(),
            Unary::Exp => "exp".into(),
            Unary::Round => "round".into(),
            Unary::Clip(lo, hi) => format!("clip[{lo}, {hi}]"),
            Unary::IsNodata => "is_nodata".into(),
        }
    }
}

/// An expression over the bands of one time step.
///
/// Plain data: it serializes as a tree (`{"norm_diff": [{"band": 1}, {"band": 2}]}`),
/// and two expressions are equal when they compute the same (constants compared bit for
/// bit, NaN equal to NaN).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Expr {
    /// Band of a time step (0-based), decoded: scaled, nodata as NaN.
    Band(usize),
    Const(#[serde(with = "crate::core::float::with_f32")] f32),
    Unary(Unary, Box<Expr>),
    Binary(Binary, Box<Expr>, Box<Expr>),
    /// `cond ? a : b`; NaN where `cond` is NaN.
    Where(Box<Expr>, Box<Expr>, Box<Expr>),
    /// `(a - b) / (a + b)`; NaN where either is NaN or `a + b = 0`.
    NormDiff(Box<Expr>, Box<Expr>),
}

impl PartialEq for Unary {
    fn eq(&self, other: &Unary) -> bool {
        match (self, other) {
            (Unary::Clip(a, b), Unary::Clip(c, d)) => same_f32(*a, *c) && same_f32(*b, *d),
            (Unary::Clip(..), _) | (_, Unary::Clip(..)) => false,
            (a, b) => std::mem::discriminant(a) == std::mem::discriminant(b),
        }
    }
}

impl PartialEq for Expr {
    fn eq(&self, other: &Expr) -> bool {
        match (self, other) {
            (Expr::Band(a), Expr::Band(b)) => a == b,
            (Expr::Const(a), Expr::Const(b)) => same_f32(*a, *b),
            (Expr::Unary(p, a), Expr::Unary(q, b)) => p == q && a == b,
            (Expr::Binary(p, a, b), Expr::Binary(q, c, d)) => p == q && a == c && b == d,
            (Expr::Where(c, a, b), Expr::Where(d, e, f)) => c == d && a == e && b == f,
            (Expr::NormDiff(a, b), Expr::NormDiff(c, d)) => a == c && b == d,
            _ => false,
        }
    }
}

impl Expr {
    /// Levels of the tree: 1 for a band or a constant.
    pub(crate) fn depth(&self) -> usize {
        1 + match self {
            Expr::Band(_) | Expr::Const(_) => 0,
            Expr::Unary(_, a) => a.depth(),
            Expr::Binary(_, a, b) | Expr::NormDiff(a, b) => a.depth().max(b.depth()),
            Expr::Where(c, a, b) => c.depth().max(a.depth()).max(b.depth()),
        }
    }

    /// Adds the bands this expression reads to `out` (no repeats).
    pub(crate) fn bands(&self, out: &mut Vec<usize>) {
        match self {
            Expr::Band(i) => {
                if !out.contains(i) {
                    out.push(*i);
                }
            }
            Expr::Const(_) => {}
            Expr::Unary(_, a) => a.bands(out),
            Expr::Binary(_, a, b) | Expr::NormDiff(a, b) => {
                a.bands(out);
                b.bands(out);
            }
            Expr::Where(c, a, b) => {
                c.bands(out);
                a.bands(out);
                b.bands(out);
            }
        }
    }

    /// Evaluates over `n` pixels; `inputs[b]` holds band `b` (bands not read are empty).
    /// Band leaves are borrowed, so a plain band costs no copy.
    pub(crate) fn eval<'a>(&self, inputs: &[&'a [f32]], n: usize) -> Cow<'a, [f32]> {
        match self {
            Expr::Band(i) => Cow::Borrowed(inputs[*i]),
            Expr::Const(c) => Cow::Owned(vec![*c; n]),
            Expr::Unary(op, a) => {
                let mut v = a.eval(inputs, n).into_owned();
                v.iter_mut().for_each(|x| *x = op.apply(*x));
                Cow::Owned(v)
            }
            Expr::Binary(op, a, b) => {
                let op = *op;
                match (&**a, &**b) {
                    (x, Expr::Const(c)) => {
                        let mut v = x.eval(inputs, n).into_owned();
                        v.iter_mut().for_each(|x| *x = op.apply(*x, *c));
                        Cow::Owned(v)
                    }
                    (Expr::Const(c), y) => {
                        let mut v = y.eval(inputs, n).into_owned();
                        v.iter_mut().for_each(|y| *y = op.apply(*c, *y));
                        Cow::Owned(v)
                    }
                    _ => {
                        let (x, y) = (a.eval(inputs, n), b.eval(inputs, n));
                        Cow::Owned(match (x, y) {
                            (Cow::Owned(mut x), y) => {
                                x.iter_mut()
                                    .zip(y.iter())
                                    .for_each(|(x, y)| *x = op.apply(*x, *y));
                                x
                            }
                            (x, Cow::Owned(mut y)) => {
                                y.iter_mut()
                                    .zip(x.iter())
                                    .for_each(|(y, x)| *y = op.apply(*x, *y));
                                y
                            }
                            (x, y) => x
                                .iter()
                                .zip(y.iter())
                                .map(|(x, y)| op.apply(*x, *y))
                                .collect(),
                        })
                    }
                }
            }
            Expr::Where(c, a, b) => {
                let (c, a, b) = (c.eval(inputs, n), a.eval(inputs, n), b.eval(inputs, n));
                Cow::Owned(
                    c.iter()
                        .zip(a.iter().zip(b.iter()))
                        .map(|(&c, (&a, &b))| {
                            if c.is_nan() {
                                f32::NAN
                            } else if c != 0.0 {
                                a
                            } else {
                                b
                            }
                        })
                        .collect(),
                )
            }
            Expr::NormDiff(a, b) => {
                let (a, b) = (a.eval(inputs, n), b.eval(inputs, n));
                Cow::Owned(
                    a.iter()
                        .zip(b.iter())
                        .map(|(&a, &b)| {
                            let sum = a + b;
                            if sum == 0.0 { f32::NAN } else { (a - b) / sum }
                        })
                        .collect(),
                )
            }
        }
    }

    /// Human-readable form using band `names`.
    pub(crate) fn describe(&self, names: &[&str]) -> String {
        match self {
            Expr::Band(i) => names.get(*i).copied().unwrap_or("?").to_string(),
            Expr::Const(c) => c.to_string(),
            Expr::Unary(Unary::Neg, a) => format!("-{}", a.describe(names)),
            Expr::Unary(op, a) => format!("{}({})", op.name(), a.describe(names)),
            Expr::Binary(op @ (Binary::Min | Binary::Max), a, b) => {
                format!(
                    "{}({}, {})",
                    op.symbol(),
                    a.describe(names),
                    b.describe(names)
                )
            }
            Expr::Binary(op, a, b) => format!(
                "({} {} {})",
                a.describe(names),
                op.symbol(),
                b.describe(names)
            ),
            Expr::Where(c, a, b) => {
                format!(
                    "where({}, {}, {})",
                    c.describe(names),
                    a.describe(names),
                    b.describe(names)
                )
            }
            Expr::NormDiff(a, b) => {
                format!("norm_diff({}, {})", a.describe(names), b.describe(names))
            }
        }
    }
}
