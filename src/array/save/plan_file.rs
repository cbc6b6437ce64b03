//! A [`Save`] as a plan file: the lazy array's plan ([`LazyArray::to_json`]) plus what
//! the save writes (output path, compression, layout, chunk size), as small,
//! human-readable JSON with a format `version`. `rasterlab run PLAN` executes one, in one
//! process or on MPI ranks.
//!
//! Run settings (threads, memory, progress, observers, cancel tokens) are not part of a
//! plan: they belong to the machine that runs it.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{LazyArray, Save};
use crate::array::PLAN_VERSION;
use crate::array::plan::{at_end, check_version, invalid_plan};
use crate::error::{Error, Result};
use crate::raster::write::{Compression, Layout};

/// What a plan file holds.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SavePlan {
    version: u32,
    /// What the plan does: `save` (the one kind so far).
    task: String,
    /// The output GeoTIFF, as given (relative paths resolve where the plan runs).
    output: String,
    /// `none`, `lzw`, `deflate` or `zstd`.
    compression: String,
    /// `tiled` or `cog`.
    layout: String,
    /// Overview resampling of a `cog` layout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    overview_resampling: Option<String>,
    /// Square chunk size, if the save sets one.
    chunks: Option<usize>,
    /// The computation ([`LazyArray::to_json`]).
    array: LazyArray,
}

impl PartialEq for Save {
    /// Same file from the same computation: array (see [`LazyArray`]'s `==`), output
    /// path, compression, layout and chunk size. Run settings and cancel tokens are not
    /// compared.
    fn eq(&self, other: &Save) -> bool {
        self.array == other.array
            && self.path == other.path
            && self.compression == other.compression
            && self.layout == other.layout
            && self.chunks == other.chunks
    }
}

impl Save {
    /// The output path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The array this save writes (its plan, sources and run settings).
    pub fn array(&self) -> &LazyArray {
        &self.array
    }

    /// The same save, written to `path` instead (`rasterlab run PLAN -o OUT`).
    pub fn output(mut self, path: impl AsRef<Path>) -> Save {
        self.path = path.as_ref().to_path_buf();
        self
    }

    /// The save as a plan: pretty-printed JSON with a format `version`, the output path,
    /// compression, layout, chunk size and the array's plan ([`LazyArray::to_json`]).
    /// Threads, memory, progress and observers are left out: they are settings of the
    /// machine that runs it.
    ///
    /// Closures are code, not data: work done by [`LazyArray::map_blocks`] cannot travel
    /// in a plan. Compile it into a program instead (a binary of your crate that builds
    /// the same array and calls `map_blocks`, started by `mpirun`; see README "Beyond
    /// one machine").
    ///
    /// ```
    /// use rasterlab::prelude::*;
    /// let scene = Raster::open("data/LC08_L1TP_224078_20200518_20200518_01_RT.TIF")?
    ///     .with_band_names(["blue", "green", "red"])?;
    /// let save = scene.norm_diff("green", "red")?.nodata(0.0).scale(1e-4)
    ///     .save("ndi.tif").chunks(512).compress(Compression::Zstd);
    /// let text = save.to_plan()?;
    /// assert!(text.contains("\"task\": \"save\"") && text.contains("\"zstd\""));
    /// let again = rasterlab::array::Save::from_plan(&text)?;
    /// assert!(again == save);
    /// # Ok::<(), rasterlab::Error>(())
    /// ```
    pub fn to_plan(&self) -> Result<String> {
        // The array's own checks (depth of expressions) first.
        self.array.to_json()?;
        let output = self.path.to_str().ok_or_else(|| {
            Error::invalid(
                "plan",
                format!(
                    "the output path {} is not UTF-8, which JSON cannot hold",
                    self.path.display()
                ),
            )
        })?;
        let (layout, overview_resampling) = match self.layout {
            Layout::Tiled => ("tiled", None),
            Layout::Cog { resampling } => ("cog", Some(resampling.name().to_string())),
        };
        let plan = SavePlan {
            version: PLAN_VERSION,
            task: "save".into(),
            output: output.into(),
            compression: self.compression.gdal_name().to_ascii_lowercase(),
            layout: layout.into(),
            overview_resampling,
            chunks: self.chunks,
            array: self.array.clone(),
        };
        serde_json::to_string_pretty(&plan)
            .map_err(|e| Error::invalid("plan", format!("it cannot be written as JSON: {e}")))
    }

    /// Writes [`Save::to_plan`] to `path`.
    pub fn to_plan_file(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let text = self.to_plan()?;
        std::fs::write(path, text + "\n").map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })
    }

    /// The save of a plan written by [`Save::to_plan`], equal to the one written, with
    /// default run settings.
    ///
    /// Errors: [`Error::PlanVersion`] for a plan of another format version (a newer
    /// rasterlab's), [`Error::ClosureInPlan`] for a plan asking for `map_blocks` (a
    /// function cannot travel in a plan), [`Error::InvalidPlan`] with line and column for
    /// text that is not a plan.
    pub fn from_plan(text: &str) -> Result<Save> {
        check_version(text)?;
        let plan: SavePlan = serde_json::from_str(text).map_err(invalid_plan)?;
        let at_end = |reason: String| at_end(text, reason);
        if [
            "map_blocks",
            "try_map_blocks",
            "map_collect",
            "try_map_collect",
        ]
        .contains(&plan.task.as_str())
        {
            return Err(Error::ClosureInPlan { task: plan.task });
        }
        if plan.task != "save" {
            return Err(at_end(format!(
                "task {:?} (this rasterlab runs \"save\" plans; closures such as map_blocks cannot be part of a plan)",
                plan.task
            )));
        }
        let compression: Compression = plan
            .compression
            .parse()
            .map_err(|e: Error| at_end(e.to_string()))?;
        let layout = match (plan.layout.as_str(), plan.overview_resampling) {
            ("tiled", None) => Layout::Tiled,
            ("cog", Some(r)) => Layout::Cog {
                resampling: r.parse().map_err(|e: Error| at_end(e.to_string()))?,
            },
            ("cog", None) => return Err(at_end("a cog layout without overview_resampling".into())),
            (other, _) => {
                return Err(at_end(format!(
                    "layout {other:?} (allowed: \"tiled\", or \"cog\" with overview_resampling)"
                )));
            }
        };
        let mut save = Save::new(plan.array, PathBuf::from(plan.output))
            .compress(compression)
            .layout(layout);
        save.chunks = plan.chunks;
        Ok(save)
    }

    /// Reads a plan file written by [`Save::to_plan_file`].
    pub fn from_plan_file(path: impl AsRef<Path>) -> Result<Save> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| match source.kind() {
            std::io::ErrorKind::NotFound => Error::NotFound(path.to_path_buf()),
            _ => Error::Io {
                path: path.to_path_buf(),
                source,
            },
        })?;
        Save::from_plan(&text)
    }
}
