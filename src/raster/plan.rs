//! A [`Raster`] as plain data: the serialized form (part of a lazy array's plan), checked
//! when read back so that a hand-edited or truncated plan is an error, not a panic later.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use super::time::Calendar;
use super::{BandInfo, Raster};
use crate::core::float::same_f64;
use crate::runtime::grid::{ChunkGrid, Window};

/// What a [`Raster`] serializes to. Field names are the plan format's (version 1): change
/// them only with the format version.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RasterPlan {
    /// Every source band, time-major.
    bands: Vec<BandInfo>,
    /// Bands per time step.
    bands_per_step: usize,
    /// One date per time step; empty without a time axis.
    dates: Vec<NaiveDate>,
    /// The CF calendar the dates were decoded from.
    calendar: Calendar,
    /// Time steps in use (indices into `dates`).
    steps: Vec<usize>,
    /// The pixel window of the grid in use.
    view: Window,
    /// Size of the full grid.
    width: usize,
    height: usize,
    #[serde(with = "crate::core::float::with_f64x6")]
    geo_transform: [f64; 6],
    crs_wkt: String,
    epsg: Option<u32>,
    driver: String,
    /// Chunk size set by the user (it also sets the saved file's tiles).
    chunks: Option<(usize, usize)>,
    /// Why the nodata override cannot work, reported when the plan runs.
    invalid_nodata: Option<String>,
    /// Likewise for the scale override: `("scale" | "offset", why)`.
    invalid_scale: Option<(String, String)>,
    /// The alignment of a stack opened aligned; absent otherwise (plans without it read
    /// as before).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    alignment: Option<super::align::Alignment>,
}

impl From<Raster> for RasterPlan {
    fn from(r: Raster) -> RasterPlan {
        RasterPlan {
            bands: r.bands,
            bands_per_step: r.per_step,
            dates: r.times,
            calendar: r.calendar,
            steps: r.selected,
            view: r.view,
            width: r.width,
            height: r.height,
            geo_transform: r.geo_transform,
            crs_wkt: r.crs_wkt,
            epsg: r.epsg,
            driver: r.driver,
            chunks: r.chunks,
            invalid_nodata: r.bad_nodata,
            invalid_scale: r.bad_scale.map(|(what, why)| (what.to_string(), why)),
            alignment: r.alignment,
        }
    }
}

impl TryFrom<RasterPlan> for Raster {
    type Error = String;

    /// The raster of a plan, if its parts fit together.
    fn try_from(p: RasterPlan) -> Result<Raster, String> {
        let per_step = p.bands_per_step;
        if p.bands.is_empty() || per_step == 0 || p.bands.len() % per_step != 0 {
            return Err(format!(
                "raster: {} bands cannot be time steps of {per_step} bands",
                p.bands.len()
            ));
        }
        let steps = p.bands.len() / per_step;
        if !p.dates.is_empty() && p.dates.len() != steps {
            return Err(format!(
                "raster: {} dates for {steps} time steps",
                p.dates.len()
            ));
        }
        if p.dates.is_empty() && steps != 1 {
            return Err(format!("raster: {steps} time steps but no dates"));
        }
        if p.steps.is_empty() || p.steps.iter().any(|&t| t >= steps) {
            return Err(format!(
                "raster: steps in use {:?} (allowed: 0 to {})",
                p.steps,
                steps - 1
            ));
        }
        if p.view.is_empty() || !p.view.fits(p.width, p.height) {
            return Err(format!(
                "raster: view {} is empty or outside the {} x {} grid",
                p.view, p.width, p.height
            ));
        }
        let names: Vec<&str> = p.bands[..per_step]
            .iter()
            .map(|b| b.name.as_str())
            .collect();
        for (i, band) in p.bands.iter().enumerate() {
            if band.index == 0 || band.block.0 == 0 || band.block.1 == 0 {
                return Err(format!(
                    "raster: band {i} ({}) has index {} and block {:?} (allowed: 1-based, non-empty)",
                    band.name, band.index, band.block
                ));
            }
            if band.name != names[i % per_step] {
                return Err(format!(
                    "raster: band {i} is named {:?}, but its time step's band is {:?}",
                    band.name,
                    names[i % per_step]
                ));
            }
        }
        if let Some(dup) = names
            .iter()
            .enumerate()
            .find_map(|(i, n)| names[..i].contains(n).then_some(n))
        {
            return Err(format!("raster: band name {dup:?} repeats"));
        }
        if let Some((cw, ch)) = p.chunks {
            ChunkGrid::new(p.view.width, p.view.height, cw, ch)
                .map_err(|e| format!("raster: chunks: {e}"))?;
        }
        let bad_scale = match p.invalid_scale {
            None => None,
            Some((what, why)) => Some((
                match what.as_str() {
                    "scale" => "scale",
                    "offset" => "offset",
                    _ => {
                        return Err(format!(
                            "raster: invalid_scale names {what:?} (allowed: \"scale\", \"offset\")"
                        ));
                    }
                },
                why,
            )),
        };
        Ok(Raster {
            bands: p.bands,
            per_step,
            times: p.dates,
            calendar: p.calendar,
            selected: p.steps,
            view: p.view,
            width: p.width,
            height: p.height,
            geo_transform: p.geo_transform,
            crs_wkt: p.crs_wkt,
            epsg: p.epsg,
            driver: p.driver,
            chunks: p.chunks,
            bad_nodata: p.invalid_nodata,
            bad_scale,
            alignment: p.alignment,
        })
    }
}

impl PartialEq for Raster {
    /// The same reads: bands (see [`BandInfo`]), dates, subset, grid, chunks and overrides.
    fn eq(&self, other: &Raster) -> bool {
        self.bands == other.bands
            && self.per_step == other.per_step
            && self.times == other.times
            && self.calendar == other.calendar
            && self.selected == other.selected
            && self.view == other.view
            && (self.width, self.height) == (other.width, other.height)
            && self
                .geo_transform
                .iter()
                .zip(&other.geo_transform)
                .all(|(a, b)| same_f64(*a, *b))
            && self.crs_wkt == other.crs_wkt
            && self.epsg == other.epsg
            && self.driver == other.driver
            && self.chunks == other.chunks
            && self.bad_nodata == other.bad_nodata
            && self.bad_scale == other.bad_scale
            && self.alignment == other.alignment
    }
}
