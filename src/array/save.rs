//! Saving a lazy array: a tiled, compressed GeoTIFF written by one writer while the pool
//! computes chunks, to a temporary name renamed on success.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::LazyArray;

mod plan_file;
// A save shared among MPI ranks (feature `mpi`, driven by `crate::distributed`).
#[cfg(feature = "mpi")]
mod ranks;

pub use crate::core::dtype::OutputType;
use crate::error::{Error, Result};
use crate::raster::write::{Compression, Layout, OverviewResampling, TiffSpec, TiffWriter};
use crate::runtime::cancel::CancelToken;
use crate::runtime::grid::ChunkGrid;
use crate::runtime::observe::RunObserver;
use crate::runtime::progress::ProgressMode;
use crate::runtime::resources::PoolPlan;
#[cfg(feature = "mpi")]
pub use ranks::FAULT_VAR;
#[cfg(feature = "mpi")]
pub(crate) use ranks::panic_is_caught;

// Parsing lives here rather than in `core::dtype`, which may not use the crate's error.
impl std::str::FromStr for OutputType {
    type Err = Error;

    fn from_str(s: &str) -> Result<OutputType> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "byte" | "uint8" | "u8" => OutputType::Byte,
            "uint16" | "u16" => OutputType::UInt16,
            "int16" | "i16" => OutputType::Int16,
            "int32" | "i32" => OutputType::Int32,
            "float32" | "f32" => OutputType::Float32,
            "float64" | "f64" => OutputType::Float64,
            _ => return Err(Error::invalid("data type", format!("{s:?}"))),
        })
    }
}

/// A save being described: output path, compression, layout (tiled or COG), chunks,
/// threads, memory, progress.
///
/// ```no_run
/// use rasterlab::prelude::*;
/// let scene = Raster::open("data/LC08_L1TP_224078_20200518_20200518_01_RT.TIF")?
///     .with_band_names(["blue", "green", "red"])?;
/// let report = scene
///     .norm_diff("green", "red")?
///     .nodata(0.0)
///     .scale(1e-4)
///     .save("ndi.tif")
///     .compress(Compression::Zstd)
///     .chunks(256)
///     .threads(2)
///     .run()?;
/// println!("{report}");
/// # Ok::<(), rasterlab::Error>(())
/// ```
#[derive(Debug, Clone)]
#[must_use = "a save does nothing until .run()"]
pub struct Save {
    array: LazyArray,
    path: PathBuf,
    compression: Compression,
    layout: Layout,
    chunks: Option<usize>,
    cancel: Option<CancelToken>,
}

impl Save {
    pub(crate) fn new(array: LazyArray, path: PathBuf) -> Save {
        Save {
            array,
            path,
            compression: Compression::default(),
            layout: Layout::Tiled,
            chunks: None,
            cancel: None,
        }
    }

    /// Tile compression (LZW by default).
    pub fn compress(mut self, compression: Compression) -> Save {
        self.compression = compression;
        self
    }

    /// Writes a Cloud-Optimized GeoTIFF with overviews computed by `resampling`
    /// ([`OverviewResampling::CONTINUOUS`], average, suits continuous data): the tiled
    /// file gets overviews and is rewritten once by GDAL's COG driver, still under a
    /// temporary name, checked, then renamed (see [`Layout::Cog`]).
    ///
    /// ```
    /// use rasterlab::prelude::*;
    /// use gdal::Metadata;
    /// let scene = Raster::open("data/LC08_L1TP_224078_20200518_20200518_01_RT.TIF")?
    ///     .with_band_names(["blue", "green", "red"])?;
    /// let dir = tempfile::tempdir().expect("temp dir");
    /// let out = dir.path().join("ndi.tif");
    /// scene.norm_diff("green", "red")?.nodata(0.0)
    ///     .save(&out)
    ///     .cog(OverviewResampling::Average)
    ///     .progress(ProgressMode::Silent)
    ///     .run()?;
    /// let ds = gdal::Dataset::open(&out).expect("written");
    /// assert_eq!(ds.metadata_item("LAYOUT", "IMAGE_STRUCTURE").as_deref(), Some("COG"));
    /// assert_eq!(ds.rasterband(1).expect("band").overview_count().expect("count"), 2);
    /// # Ok::<(), rasterlab::Error>(())
    /// ```
    pub fn cog(mut self, resampling: OverviewResampling) -> Save {
        self.layout = Layout::Cog { resampling };
        self
    }

    /// The output's layout: [`Layout::Tiled`] (the default) or [`Layout::Cog`]
    /// (see [`Save::cog`]).
    pub fn layout(mut self, layout: Layout) -> Save {
        self.layout = layout;
        self
    }

    /// Square chunks of `size` pixels (checked in [`Save::run`]).
    pub fn chunks(mut self, size: usize) -> Save {
        self.chunks = Some(size);
        self
    }

    /// Worker threads (default: the [`crate::runtime::resources::PoolPlan`]'s).
    pub fn threads(mut self, n: usize) -> Save {
        self.array = self.array.threads(n);
        self
    }

    /// Memory budget in bytes (default: the [`crate::runtime::resources::PoolPlan`]'s).
    pub fn memory(mut self, bytes: u64) -> Save {
        self.array = self.array.memory(bytes);
        self
    }

    /// Reports every task of the save to `observer` (`Save::observe(&Profiler)` in
    /// `profile` is the public way in).
    // Only the `profile` feature calls it (through `observe`).
    #[cfg_attr(not(feature = "profile"), allow(dead_code))]
    pub(crate) fn with_observer(mut self, observer: Arc<dyn RunObserver>) -> Save {
        self.array = self.array.with_observer(observer);
        self
    }

    /// Stops the save when `token` is cancelled: checked before each chunk is written
    /// and once more before the finished file is renamed into place. A cancelled save
    /// returns [`Error::Cancelled`], removes its temporary file and leaves nothing under
    /// the output name (an existing file there is unchanged).
    ///
    /// ```
    /// use rasterlab::prelude::*;
    /// let token = CancelToken::new();
    /// token.cancel("changed my mind");
    /// let out = std::env::temp_dir().join("rasterlab-doc-cancelled.tif");
    /// let scene = Raster::open("data/LC08_L1TP_224078_20200518_20200518_01_RT.TIF")?;
    /// let run = scene.band("band1")?.save(&out).cancel_on(&token).progress(ProgressMode::Silent).run();
    /// assert!(matches!(run, Err(Error::Cancelled { .. })));
    /// assert!(!out.exists());
    /// # Ok::<(), rasterlab::Error>(())
    /// ```
    pub fn cancel_on(mut self, token: &CancelToken) -> Save {
        self.cancel = Some(token.clone());
        self
    }

    /// How progress is shown.
    pub fn progress(mut self, mode: ProgressMode) -> Save {
        self.array = self.array.progress(mode);
        self
    }

    /// Computes every chunk on the pool and writes it through a single writer into a
    /// temporary file next to the output, renamed on success. On any error nothing is
    /// left under the output name and the temporary file is removed.
    ///
    /// Refused before any work: an output path that is one of the inputs
    /// ([`Error::OutputIsInput`]) or that cannot be written ([`Error::Output`]).
    pub fn run(self) -> Result<SaveReport> {
        let start = std::time::Instant::now();
        let job = self.prepare(None)?;
        let mut writer = TiffWriter::create_with_layout(&self.path, &job.spec, self.layout)?;
        let label = format!("save {}", self.path.display());
        let stats = job.array.run(&job.plan, &job.grid, &label, |_, w, data| {
            job.cancel.check()?;
            job.write(&mut writer, w, data)
        })?;
        let chunks_elapsed = start.elapsed();
        let path = writer.finish_unless(|| job.cancel.reason())?;
        Ok(self.report(&job, path, stats.threads, start, chunks_elapsed))
    }

    /// Everything a save decides before the first chunk: checks of the output and the
    /// array, the pool plan (`plan`, else the array's own), the chunk grid, the file's
    /// spec and nodata fill.
    fn prepare(&self, plan: Option<PoolPlan>) -> Result<Job> {
        crate::raster::output::check_output_path(&self.path)?;
        crate::raster::output::check_distinct(
            &[self.path.as_path()],
            &self.array.raster().source_files(),
        )?;
        let cancel = self.cancel.clone().unwrap_or_default();
        cancel.check()?;
        let array = match self.chunks {
            Some(size) => self.array.clone().chunks(size)?,
            None => self.array.clone(),
        };
        array.check()?;
        let plan = match plan {
            Some(p) => p,
            None => array.plan()?,
        };
        let grid = array.chunk_grid(&plan)?;
        let fill = match (array.fill, array.out_type.is_integer()) {
            (Some(v), _) => Some(v),
            (None, false) => None,
            (None, true) => {
                return Err(Error::invalid(
                    "output type",
                    format!(
                        "{} cannot hold NaN: give a nodata value with .fill_nodata(v)",
                        array.out_type
                    ),
                ));
            }
        };
        let (cw, ch) = grid.chunk_size();
        // Tiles match chunks when they can, so each tile is compressed once, whole.
        let tile = |c: usize| {
            if c % 16 == 0 && (16..=1024).contains(&c) {
                c
            } else {
                256
            }
        };
        let raster = array.raster();
        let names = array.band_names()?;
        let spec = TiffSpec {
            size: raster.size(),
            bands: names.len(),
            dtype: array.out_type,
            geo_transform: raster.geo_transform(),
            crs_wkt: raster.crs_wkt().to_string(),
            nodata: Some(fill.unwrap_or(f64::NAN)),
            compression: self.compression,
            tile: (tile(cw), tile(ch)),
            threads: plan.threads(),
            band_names: names,
        };
        Ok(Job {
            array,
            plan,
            grid,
            spec,
            fill,
            cancel,
        })
    }

    /// The report of a save done by `job` that wrote `path`.
    fn report(
        &self,
        job: &Job,
        path: PathBuf,
        threads: usize,
        start: std::time::Instant,
        chunks_elapsed: Duration,
    ) -> SaveReport {
        SaveReport {
            file_bytes: std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0),
            path,
            expression: job.array.describe(),
            bands: job.spec.bands,
            grid: job.grid,
            threads,
            // Closing flushes the last tiles through the compressor: part of the save.
            elapsed: start.elapsed(),
            chunks_elapsed,
            input_bytes: job.array.input_bytes(),
            compression: self.compression,
            dtype: job.array.out_type,
            layout: self.layout,
            ranks: 1,
            rank_threads: vec![threads],
            bytes_between_ranks: 0,
        }
    }
}

/// A save ready to run: see [`Save::prepare`].
struct Job {
    array: LazyArray,
    plan: PoolPlan,
    grid: ChunkGrid,
    spec: TiffSpec,
    fill: Option<f64>,
    cancel: CancelToken,
}

impl Job {
    /// Writes one computed chunk (`bands x window` values, band-major): NaN becomes the
    /// fill value.
    fn write(
        &self,
        writer: &mut TiffWriter,
        w: crate::runtime::grid::Window,
        mut data: Vec<f32>,
    ) -> Result<()> {
        if let Some(v) = self.fill {
            let v = v as f32;
            data.iter_mut().filter(|x| x.is_nan()).for_each(|x| *x = v);
        }
        let n = w.len();
        let nb = self.spec.bands;
        if nb == 1 {
            return writer.write(1, w, data);
        }
        for b in 0..nb {
            writer.write(b + 1, w, data[b * n..(b + 1) * n].to_vec())?;
        }
        Ok(())
    }
}

/// What a save did.
#[derive(Debug, Clone)]
pub struct SaveReport {
    /// The written file.
    pub path: PathBuf,
    /// The expression saved.
    pub expression: String,
    /// Bands written.
    pub bands: usize,
    /// The chunk grid used.
    pub grid: ChunkGrid,
    /// Worker threads.
    pub threads: usize,
    /// Wall-clock time of the whole save: computation, writing and closing the file (and
    /// for a COG, building the overviews and the cloud-optimized copy).
    pub elapsed: Duration,
    /// Part of `elapsed` spent computing and handing over chunks (what the progress line's
    /// "done in" counts); the rest flushes the last tiles, checks and renames the file.
    pub chunks_elapsed: Duration,
    /// Raw (stored) bytes of the input bands read.
    pub input_bytes: u64,
    /// Size of the output file.
    pub file_bytes: u64,
    /// Tile compression.
    pub compression: Compression,
    /// Stored type.
    pub dtype: OutputType,
    /// Tiled, or cloud-optimized with overviews.
    pub layout: Layout,
    /// Processes that computed chunks: 1, or the MPI ranks of a distributed save
    /// (`crate::distributed`, feature `mpi`).
    pub ranks: usize,
    /// Worker threads of each rank, by rank.
    pub rank_threads: Vec<usize>,
    /// Chunk bytes sent from the other ranks to the writing rank (0 in one process).
    pub bytes_between_ranks: u64,
}

impl SaveReport {
    /// Input throughput in MB/s (10^6 bytes of stored pixels per second).
    pub fn mb_per_s(&self) -> f64 {
        self.input_bytes as f64 / 1e6 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

impl fmt::Display for SaveReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "saved {} -> {}", self.expression, self.path.display())?;
        writeln!(f, "  chunks:   {}", self.grid)?;
        writeln!(f, "  threads:  {}", self.threads)?;
        // Two numbers, because the progress line printed just before ends with the chunk
        // phase alone ("done in"), and a single larger total here looked contradictory.
        writeln!(
            f,
            "  time:     {:.3} s (chunks {:.3} s, then finishing the file {:.3} s)",
            self.elapsed.as_secs_f64(),
            self.chunks_elapsed.as_secs_f64(),
            self.elapsed
                .saturating_sub(self.chunks_elapsed)
                .as_secs_f64()
        )?;
        writeln!(f, "  speed:    {:.1} MB/s of input pixels", self.mb_per_s())?;
        write!(
            f,
            "  output:   {} band(s), {} ({} compressed, {})",
            self.bands,
            crate::core::fmt::human_bytes(self.file_bytes),
            self.compression,
            self.dtype
        )?;
        if self.layout.is_cog() {
            write!(f, "\n  layout:   {}", self.layout)?;
        }
        if self.ranks > 1 {
            write!(
                f,
                "\n  ranks:    {} (threads per rank {:?}; {} sent to the writer)",
                self.ranks,
                self.rank_threads,
                crate::core::fmt::human_bytes(self.bytes_between_ranks)
            )?;
        }
        Ok(())
    }
}
