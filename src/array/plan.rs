//! A [`LazyArray`] as plain data: what to compute (the raster with its paths and band
//! metadata, the variables' expressions, the time pipeline, the stored type and nodata
//! fill) without how to run it (threads, memory, progress, observers).
//!
//! The serialized form is a JSON object with a format `version`; [`LazyArray::to_json`]
//! writes it and [`LazyArray::from_json`] reads it back to an equal array, which saves
//! the same bytes.

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::expr::Expr;
use super::time::TimeOp;
use super::{LazyArray, OutputType};
use crate::core::float::same_opt_f64;
use crate::error::{Error, Result};
use crate::raster::Raster;
use crate::runtime::progress::ProgressMode;

/// The plan format this rasterlab writes and reads.
pub const PLAN_VERSION: u32 = 1;

/// Deepest expression a plan holds: JSON readers limit nesting (serde_json to 128
/// levels, two per expression level), so [`LazyArray::to_json`] refuses deeper trees
/// rather than write a plan that cannot be read back.
const MAX_EXPR_DEPTH: usize = 48;

/// One variable of the plan: its name (the band description) and expression.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Var {
    name: String,
    expr: Expr,
}

/// What a [`LazyArray`] serializes to. `out_type` and `fill` are plan operations
/// (`cast`, `fill_nodata`, `set_nodata`) that for now set how a save stores the result;
/// `deferred` is an operator's error, reported when the plan runs.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Plan {
    version: u32,
    raster: Raster,
    vars: Vec<Var>,
    time_ops: Vec<TimeOp>,
    out_type: OutputType,
    #[serde(with = "crate::core::float::with_opt_f64")]
    fill: Option<f64>,
    deferred: Option<String>,
}

/// Only `version` (other fields ignored): read first, so that a newer format is reported
/// as such rather than as whatever of it this version does not understand.
#[derive(Deserialize)]
struct Header {
    version: Option<u32>,
}

impl Plan {
    fn of(a: &LazyArray) -> Plan {
        Plan {
            version: PLAN_VERSION,
            raster: a.raster.clone(),
            vars: a
                .vars
                .iter()
                .map(|(name, expr)| Var {
                    name: name.clone(),
                    expr: expr.clone(),
                })
                .collect(),
            time_ops: a.time_ops.clone(),
            out_type: a.out_type,
            fill: a.fill,
            deferred: a.deferred.clone(),
        }
    }

    /// The array of the plan, with default run settings, if the plan fits together.
    fn into_array(self) -> std::result::Result<LazyArray, String> {
        if self.version != PLAN_VERSION {
            return Err(format!(
                "format version {} (this rasterlab reads version {PLAN_VERSION})",
                self.version
            ));
        }
        if self.vars.is_empty() {
            return Err("no variable (allowed: one or more)".into());
        }
        let per_step = self.raster.band_count();
        for var in &self.vars {
            let mut bands = Vec::new();
            var.expr.bands(&mut bands);
            if let Some(b) = bands.iter().find(|&&b| b >= per_step) {
                return Err(format!(
                    "variable {:?} reads band {b}, but the raster has {per_step} band(s) per step",
                    var.name
                ));
            }
        }
        if self
            .time_ops
            .iter()
            .any(|op| matches!(op, TimeOp::Reduce(stats) if stats.is_empty()))
        {
            return Err("a reduction without statistics".into());
        }
        Ok(LazyArray {
            raster: self.raster,
            vars: self.vars.into_iter().map(|v| (v.name, v.expr)).collect(),
            time_ops: self.time_ops,
            threads: None,
            memory: None,
            progress: ProgressMode::Auto,
            observer: None,
            out_type: self.out_type,
            fill: self.fill,
            deferred: self.deferred,
        })
    }
}

impl Serialize for LazyArray {
    /// The plan only; see [`LazyArray::to_json`].
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        Plan::of(self).serialize(s)
    }
}

impl<'de> Deserialize<'de> for LazyArray {
    /// A plan, checked; run settings are the defaults. See [`LazyArray::from_json`].
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<LazyArray, D::Error> {
        Plan::deserialize(d)?.into_array().map_err(D::Error::custom)
    }
}

impl PartialEq for LazyArray {
    /// Same computation: equal plans (raster, variables, time pipeline, stored type,
    /// fill, deferred error). Run settings (threads, memory, progress, observers) are not
    /// part of a computation and are not compared; chunk sizes are, as they set the
    /// saved file's tiles.
    fn eq(&self, other: &LazyArray) -> bool {
        self.raster == other.raster
            && self.vars == other.vars
            && self.time_ops == other.time_ops
            && self.out_type == other.out_type
            && same_opt_f64(self.fill, other.fill)
            && self.deferred == other.deferred
    }
}

pub(crate) fn invalid_plan(e: serde_json::Error) -> Error {
    let reason = e.to_string();
    // serde_json appends " at line L column C", which the error says on its own.
    let reason = match reason.rfind(" at line ") {
        Some(at) if e.line() > 0 => reason[..at].to_string(),
        _ => reason,
    };
    Error::InvalidPlan {
        line: e.line(),
        column: e.column(),
        reason,
    }
}

impl LazyArray {
    /// The plan as pretty-printed JSON: what to compute, self-contained (the files' paths
    /// as given when opened, band names, types, nodata, scale and offset, dates, the
    /// subset, chunk size, expressions, time operations, stored type and nodata fill),
    /// with a format `version`. Run settings (threads, memory, progress, observers) are
    /// not part of it. Read it back with [`LazyArray::from_json`], for instance in
    /// another process: relative paths are resolved there against its working directory.
    ///
    /// Closures ([`LazyArray::map_blocks`] and friends) are code, not data: they are never
    /// part of a plan.
    ///
    /// Errors: [`Error::Invalid`] for a plan that JSON cannot hold (a path that is not
    /// UTF-8, an expression nested deeper than 48 levels).
    ///
    /// ```
    /// use rasterlab::prelude::*;
    /// let scene = Raster::open("data/LC08_L1TP_224078_20200518_20200518_01_RT.TIF")?
    ///     .with_band_names(["blue", "green", "red"])?;
    /// let ndi = scene.norm_diff("green", "red")?.nodata(0.0).scale(1e-4);
    /// let text = ndi.to_json()?;
    /// assert!(text.contains("\"version\": 1") && text.contains("\"green\""));
    ///
    /// let again = LazyArray::from_json(&text)?;
    /// assert_eq!(again, ndi);
    /// assert_eq!(again.describe(), "norm_diff(green, red)");
    ///
    /// let err = LazyArray::from_json(&text.replace("\"version\": 1", "\"version\": 7")).unwrap_err();
    /// assert!(matches!(err, Error::PlanVersion { found: 7, supported: 1 }));
    /// let err = LazyArray::from_json("{ \"version\": 1, ").unwrap_err();
    /// assert!(matches!(err, Error::InvalidPlan { line: 1, .. }), "{err}");
    /// # Ok::<(), rasterlab::Error>(())
    /// ```
    pub fn to_json(&self) -> Result<String> {
        if let Some((name, e)) = self.vars.iter().find(|(_, e)| e.depth() > MAX_EXPR_DEPTH) {
            return Err(Error::invalid(
                "plan",
                format!(
                    "the expression of {name:?} is nested {} levels deep, which a plan cannot hold (allowed: at most {MAX_EXPR_DEPTH})",
                    e.depth()
                ),
            ));
        }
        serde_json::to_string_pretty(self)
            .map_err(|e| Error::invalid("plan", format!("it cannot be written as JSON: {e}")))
    }

    /// The lazy array of a plan written by [`LazyArray::to_json`], with default run
    /// settings (threads, memory and progress as for a new array, no observer). It equals
    /// the array that was written and saves the same bytes.
    ///
    /// Errors: [`Error::PlanVersion`] for a plan of another format version (a newer
    /// rasterlab's), [`Error::InvalidPlan`] with the line and column for text that is not
    /// JSON or not a plan (a missing or unknown field, a band the raster does not have,
    /// parts that do not fit together). Files are not opened: a plan whose files are
    /// gone fails when it runs, as [`Error::NotFound`].
    pub fn from_json(text: &str) -> Result<LazyArray> {
        check_version(text)?;
        let plan: Plan = serde_json::from_str(text).map_err(invalid_plan)?;
        // Checks across parts of the plan run once it is read: where reading stopped is
        // the end of the text.
        plan.into_array().map_err(|reason| at_end(text, reason))
    }
}

/// Refuses a plan of another format version before its fields are read, so that a newer
/// format is reported as such (shared by array plans and save plans).
pub(crate) fn check_version(text: &str) -> Result<()> {
    let header: Header = serde_json::from_str(text).map_err(invalid_plan)?;
    match header.version {
        Some(found) if found != PLAN_VERSION => Err(Error::PlanVersion {
            found,
            supported: PLAN_VERSION,
        }),
        _ => Ok(()),
    }
}

/// An [`Error::InvalidPlan`] at the end of `text`: for checks that run once the whole
/// plan is read.
pub(crate) fn at_end(text: &str, reason: String) -> Error {
    let last = text.trim_end();
    Error::InvalidPlan {
        line: 1 + last.matches('\n').count(),
        column: last.len() - last.rfind('\n').map_or(0, |i| i + 1),
        reason,
    }
}
