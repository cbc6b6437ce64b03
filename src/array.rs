//! Lazy chunked arrays: an expression over a raster's bands that nothing evaluates until
//! [`LazyArray::compute`] or [`LazyArray::save`]; then each chunk is read once and pushed
//! through the whole expression, so no full-size intermediate exists.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ndarray::Array2;

use crate::error::{Error, Result};
use crate::exec::{RunStats, run_chunks};
use crate::grid::{ChunkGrid, Window};
use crate::profile::{Profiler, TaskKind};
use crate::progress::{Progress, ProgressMode};
use crate::raster::write::{Compression, TiffSpec, TiffWriter};
use crate::raster::{Raster, Reader};
use crate::resources::PoolPlan;

/// The operations a lazy array fuses per chunk.
#[derive(Debug, Clone, PartialEq)]
enum Expr {
    /// A band of the raster (0-based index), decoded: scaled, nodata as NaN.
    Band(usize),
    /// `(a - b) / (a + b)`; NaN where either is NaN or `a + b = 0`.
    NormDiff(Box<Expr>, Box<Expr>),
}

impl Expr {
    fn bands(&self, out: &mut Vec<usize>) {
        match self {
            Expr::Band(i) => {
                if !out.contains(i) {
                    out.push(*i);
                }
            }
            Expr::NormDiff(a, b) => {
                a.bands(out);
                b.bands(out);
            }
        }
    }

    /// Evaluates over one chunk; `inputs[k]` holds band `order[k]`.
    fn eval(&self, order: &[usize], inputs: &[&[f32]], n: usize) -> Vec<f32> {
        match self {
            Expr::Band(i) => {
                let k = order.iter().position(|b| b == i).unwrap_or_default();
                inputs[k].to_vec()
            }
            Expr::NormDiff(a, b) => {
                let (a, b) = (a.eval_ref(order, inputs, n), b.eval_ref(order, inputs, n));
                a.iter()
                    .zip(b.iter())
                    .map(|(&a, &b)| {
                        let sum = a + b;
                        if sum == 0.0 { f32::NAN } else { (a - b) / sum }
                    })
                    .collect()
            }
        }
    }

    /// Like `eval` but borrows band inputs instead of copying them.
    fn eval_ref<'a>(
        &self,
        order: &[usize],
        inputs: &[&'a [f32]],
        n: usize,
    ) -> std::borrow::Cow<'a, [f32]> {
        match self {
            Expr::Band(i) => {
                let k = order.iter().position(|b| b == i).unwrap_or_default();
                std::borrow::Cow::Borrowed(inputs[k])
            }
            other => std::borrow::Cow::Owned(other.eval(order, inputs, n)),
        }
    }

    fn describe(&self, names: &[&str]) -> String {
        match self {
            Expr::Band(i) => names.get(*i).copied().unwrap_or("?").to_string(),
            Expr::NormDiff(a, b) => {
                format!("norm_diff({}, {})", a.describe(names), b.describe(names))
            }
        }
    }
}

/// A lazy, chunked, single-band Float32 array computed from a [`Raster`].
///
/// ```
/// use rasterlab::prelude::*;
/// let scene = Raster::open("data/LC08_L1TP_224078_20200518_20200518_01_RT.TIF")?
///     .with_band_names(["blue", "green", "red"])?;
/// let ndi = scene.norm_diff("green", "red")?.nodata(0.0).scale(1e-4).chunks(512)?;
/// let values = ndi.compute_with(&PoolPlan::detect()?, ProgressMode::Silent)?;
/// assert_eq!(values.dim(), (1860, 2041));
/// # Ok::<(), rasterlab::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct LazyArray {
    raster: Raster,
    expr: Expr,
}

impl LazyArray {
    /// The decoded band `name` of `raster`.
    pub fn band(raster: Raster, name: &str) -> Result<LazyArray> {
        let expr = Expr::Band(raster.band_index(name)?);
        Ok(LazyArray { raster, expr })
    }

    /// `(a - b) / (a + b)` of two named bands; see [`Raster::norm_diff`].
    pub fn norm_diff(raster: Raster, a: &str, b: &str) -> Result<LazyArray> {
        let expr = Expr::NormDiff(
            Box::new(Expr::Band(raster.band_index(a)?)),
            Box::new(Expr::Band(raster.band_index(b)?)),
        );
        Ok(LazyArray { raster, expr })
    }

    /// Treats `value` as nodata in every source band (overrides the files' nodata).
    pub fn nodata(mut self, value: f64) -> LazyArray {
        self.raster = self.raster.with_nodata(Some(value));
        self
    }

    /// Scales every source band on read: physical = stored * `factor`.
    pub fn scale(mut self, factor: f64) -> LazyArray {
        let offset = self.raster.bands().first().map_or(0.0, |b| b.offset);
        self.raster = self.raster.with_scale(factor, offset);
        self
    }

    /// Square chunks of `size` pixels; zero is an error.
    pub fn chunks(mut self, size: usize) -> Result<LazyArray> {
        self.raster = self.raster.chunks(size)?;
        Ok(self)
    }

    /// The raster this array reads.
    pub fn raster(&self) -> &Raster {
        &self.raster
    }

    /// `(width, height)` of the result.
    pub fn size(&self) -> (usize, usize) {
        self.raster.size()
    }

    /// The expression, e.g. `norm_diff(green, red)`.
    pub fn describe(&self) -> String {
        self.expr.describe(&self.raster.band_names())
    }

    /// The chunk grid a computation with `plan` would use.
    pub fn chunk_grid(&self, plan: &PoolPlan) -> Result<ChunkGrid> {
        self.raster.chunk_grid(plan, self.bytes_per_pixel())
    }

    /// Bytes held per pixel while a chunk is in flight: the decoded inputs and the output.
    fn bytes_per_pixel(&self) -> usize {
        4 * (self.input_bands().len() + 1)
    }

    fn input_bands(&self) -> Vec<usize> {
        let mut bands = Vec::new();
        self.expr.bands(&mut bands);
        bands
    }

    /// Reads and evaluates one window with a worker's reader.
    fn eval_window(
        &self,
        reader: &Reader,
        order: &[usize],
        (chunk, window): (usize, Window),
        observer: Option<&Profiler>,
    ) -> Result<Vec<f32>> {
        let n = window.len();
        let mut buf = vec![0f32; n * order.len()];
        let t0 = std::time::Instant::now();
        reader.read_decoded(&self.raster, window, order, &mut buf)?;
        if let Some(p) = observer {
            p.task(TaskKind::Read, chunk, t0, std::time::Instant::now());
        }
        let inputs: Vec<&[f32]> = buf.chunks_exact(n).collect();
        Ok(self.expr.eval(order, &inputs, n))
    }

    /// Runs the expression over every chunk, handing each result to `sink`.
    fn run(
        &self,
        plan: &PoolPlan,
        grid: &ChunkGrid,
        label: &str,
        mode: ProgressMode,
        observer: Option<&Profiler>,
        sink: impl FnMut(usize, Window, Vec<f32>) -> Result<()>,
    ) -> Result<RunStats> {
        let order = self.input_bands();
        let windows: Vec<Window> = grid.iter().collect();
        let (cw, ch) = grid.chunk_size();
        let chunk_bytes = (cw * ch * self.bytes_per_pixel()) as u64;
        let in_flight = plan.memory_budget() / chunk_bytes.max(1);
        if in_flight < 1 {
            return Err(Error::invalid(
                "chunk size",
                format!(
                    "one {cw} x {ch} chunk needs {} but the memory budget is {}",
                    crate::display::human_bytes(chunk_bytes),
                    crate::display::human_bytes(plan.memory_budget())
                ),
            ));
        }
        let max_queued = (in_flight as usize)
            .saturating_sub(plan.threads() + 1)
            .clamp(1, 4 * plan.threads());
        limit_gdal_cache();
        let mut progress = Progress::new(mode, label, "chunks", windows.len() as u64);
        run_chunks(
            plan,
            &windows,
            max_queued,
            || Reader::open(&self.raster),
            |reader, i, w| self.eval_window(reader, &order, (i, w), observer),
            sink,
            &mut progress,
            observer,
        )
    }

    /// Computes the whole array into memory with the detected [`PoolPlan`].
    pub fn compute(&self) -> Result<Array2<f32>> {
        self.compute_with(&PoolPlan::detect()?, ProgressMode::Auto)
    }

    /// Computes the whole array into memory, shaped `(rows, columns)`.
    pub fn compute_with(&self, plan: &PoolPlan, mode: ProgressMode) -> Result<Array2<f32>> {
        self.compute_inner(plan, mode, None)
    }

    /// [`LazyArray::compute_with`], recording every task into `profiler`.
    pub fn compute_observed(
        &self,
        plan: &PoolPlan,
        mode: ProgressMode,
        profiler: &Profiler,
    ) -> Result<Array2<f32>> {
        self.compute_inner(plan, mode, Some(profiler))
    }

    fn compute_inner(
        &self,
        plan: &PoolPlan,
        mode: ProgressMode,
        observer: Option<&Profiler>,
    ) -> Result<Array2<f32>> {
        let grid = self.chunk_grid(plan)?;
        let (width, height) = self.size();
        let mut out = Array2::<f32>::zeros((height, width));
        self.run(plan, &grid, "compute", mode, observer, |_, w, data| {
            let chunk = ndarray::ArrayView2::from_shape((w.height, w.width), &data)
                .map_err(|e| Error::invalid("chunk", e.to_string()))?;
            out.slice_mut(ndarray::s![w.y..w.y + w.height, w.x..w.x + w.width])
                .assign(&chunk);
            Ok(())
        })?;
        Ok(out)
    }

    /// Starts describing a save to a tiled, compressed Float32 GeoTIFF; finish with
    /// [`Save::run`].
    pub fn save(&self, path: impl AsRef<Path>) -> Save {
        Save {
            array: self.clone(),
            path: path.as_ref().to_path_buf(),
            compression: Compression::default(),
            chunks: None,
            threads: None,
            memory: None,
            progress: ProgressMode::Auto,
            observer: None,
        }
    }

    /// The whole array decoded at reduced resolution, its longer side at most `max_side`
    /// pixels: the inputs are read decimated (nearest) and the expression evaluated on
    /// them, which equals decimating the full result. For quick-looks.
    pub fn preview(&self, max_side: usize) -> Result<Array2<f32>> {
        let order = self.input_bands();
        let (w, h) = self.raster.decimated_size(max_side);
        let (width, height) = self.size();
        let reader = Reader::open(&self.raster)?;
        let mut buf = vec![0f32; w * h * order.len()];
        let all = Window::new(0, 0, width, height);
        reader.read_decoded_sized(&self.raster, all, (w, h), &order, &mut buf)?;
        let inputs: Vec<&[f32]> = buf.chunks_exact(w * h).collect();
        Array2::from_shape_vec((h, w), self.expr.eval(&order, &inputs, w * h))
            .map_err(|e| Error::invalid("preview", e.to_string()))
    }
}

impl fmt::Display for LazyArray {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (w, h) = self.size();
        write!(f, "LazyArray {} ({w} x {h}, float32", self.describe())?;
        if let Some((cw, ch)) = self.raster.chunk_size() {
            write!(f, ", chunks {cw} x {ch}")?;
        }
        write!(f, ")")
    }
}

/// GDAL's block cache defaults to 5 % of RAM; chunks are read whole, so a small cache
/// costs no speed and keeps peak memory low (measured: 332 -> 148 MB). A user's
/// `GDAL_CACHEMAX` wins.
fn limit_gdal_cache() {
    if std::env::var_os("GDAL_CACHEMAX").is_none() {
        // SAFETY: sets a process-wide integer in GDAL.
        unsafe { gdal_sys::GDALSetCacheMax64(64 << 20) };
    }
}

/// A save being described: output path, compression, chunks, threads, memory, progress.
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
    chunks: Option<usize>,
    threads: Option<usize>,
    memory: Option<u64>,
    progress: ProgressMode,
    observer: Option<Profiler>,
}

impl Save {
    /// Tile compression (LZW by default).
    pub fn compress(mut self, compression: Compression) -> Save {
        self.compression = compression;
        self
    }

    /// Square chunks of `size` pixels (checked in [`Save::run`]).
    pub fn chunks(mut self, size: usize) -> Save {
        self.chunks = Some(size);
        self
    }

    /// Worker threads (default: the [`PoolPlan`]'s).
    pub fn threads(mut self, n: usize) -> Save {
        self.threads = Some(n);
        self
    }

    /// Memory budget in bytes (default: the [`PoolPlan`]'s).
    pub fn memory(mut self, bytes: u64) -> Save {
        self.memory = Some(bytes);
        self
    }

    /// How progress is shown.
    pub fn progress(mut self, mode: ProgressMode) -> Save {
        self.progress = mode;
        self
    }

    /// Records every task of the save into `profiler` (a shared handle: the caller's
    /// profiler sees the tasks).
    pub fn observe(mut self, profiler: &Profiler) -> Save {
        self.observer = Some(profiler.clone());
        self
    }

    /// Computes every chunk on the pool and writes it through a single writer into a
    /// temporary file next to the output, renamed on success. On any error nothing is
    /// left under the output name and the temporary file is removed.
    pub fn run(self) -> Result<SaveReport> {
        let mut plan = PoolPlan::detect()?;
        if let Some(n) = self.threads {
            plan = plan.with_threads(n)?;
        }
        if let Some(bytes) = self.memory {
            plan = plan.with_memory_budget(bytes)?;
        }
        let array = match self.chunks {
            Some(size) => self.array.clone().chunks(size)?,
            None => self.array.clone(),
        };
        let grid = array.chunk_grid(&plan)?;
        let (cw, ch) = grid.chunk_size();
        let tile = |c: usize| {
            if c % 16 == 0 && (16..=1024).contains(&c) {
                c
            } else {
                256
            }
        };
        let raster = array.raster();
        let spec = TiffSpec {
            size: raster.size(),
            bands: 1,
            geo_transform: raster.geo_transform(),
            crs_wkt: raster.crs_wkt().to_string(),
            nodata: Some(f64::NAN),
            compression: self.compression,
            tile: (tile(cw), tile(ch)),
            threads: plan.threads(),
            band_names: vec![array.describe()],
        };
        let mut writer = TiffWriter::create(&self.path, &spec)?;
        let label = format!("save {}", self.path.display());
        let observer = self.observer.as_ref();
        let stats = array.run(
            &plan,
            &grid,
            &label,
            self.progress,
            observer,
            |_, w, data| writer.write(1, w, data),
        )?;
        let path = writer.finish()?;
        let (w, h) = raster.size();
        let input_bytes: u64 = array
            .input_bands()
            .iter()
            .map(|&b| (w * h) as u64 * raster.bands()[b].dtype.bytes() as u64)
            .sum();
        Ok(SaveReport {
            file_bytes: std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0),
            path,
            expression: array.describe(),
            grid,
            threads: stats.threads,
            elapsed: stats.elapsed,
            input_bytes,
            compression: self.compression,
        })
    }
}

/// What a save did.
#[derive(Debug, Clone)]
pub struct SaveReport {
    /// The written file.
    pub path: PathBuf,
    /// The expression saved.
    pub expression: String,
    /// The chunk grid used.
    pub grid: ChunkGrid,
    /// Worker threads.
    pub threads: usize,
    /// Wall-clock time of the computation and write.
    pub elapsed: Duration,
    /// Raw (stored) bytes of the input bands read.
    pub input_bytes: u64,
    /// Size of the output file.
    pub file_bytes: u64,
    /// Tile compression.
    pub compression: Compression,
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
        writeln!(f, "  time:     {:.3} s", self.elapsed.as_secs_f64())?;
        writeln!(f, "  speed:    {:.1} MB/s of input pixels", self.mb_per_s())?;
        write!(
            f,
            "  output:   {} ({} compressed, Float32, nodata NaN)",
            crate::display::human_bytes(self.file_bytes),
            self.compression
        )
    }
}
