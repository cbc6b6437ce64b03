//! Lazy chunked arrays: expressions over a raster's bands (and dates) that nothing
//! evaluates until [`LazyArray::compute`], [`LazyArray::save`] or a block map; then each
//! chunk is read once and pushed through the whole expression and time pipeline, so no
//! full-size intermediate ever exists.

mod blocks;
mod expr;
mod from_raster;
mod ops;
#[cfg(feature = "mpi")]
mod part;
// How the ranks of a shared run talk (feature `mpi`).
mod plan;
#[cfg(feature = "mpi")]
mod rank_link;
mod save;
mod time;

use std::fmt;
use std::sync::Arc;

use chrono::NaiveDate;
use ndarray::Array3;

pub use blocks::Block;
pub use plan::PLAN_VERSION;
#[cfg(feature = "mpi")]
pub(crate) use rank_link::{Incoming, RankLink, share_of_node};
#[cfg(feature = "mpi")]
#[doc(hidden)]
pub use save::FAULT_VAR;
#[cfg(feature = "mpi")]
pub(crate) use save::panic_is_caught;
pub use save::{OutputType, Save, SaveReport};
pub use time::{Period, Stat};

use crate::error::{Error, Result};
use crate::raster::{Raster, Reader};
use crate::runtime::Runtime;
use crate::runtime::exec::{RunStats, run_chunks};
use crate::runtime::grid::{ChunkGrid, Window};
use crate::runtime::observe::{RunObserver, TaskKind};
use crate::runtime::progress::{Progress, ProgressMode};
use crate::runtime::resources::PoolPlan;
use expr::{Binary, Expr, Unary};
use time::{Axis, TimeOp};

/// A lazy, chunked array computed from a [`Raster`]: one or more named variables (each
/// an element-wise expression over the bands of a time step), an optional time pipeline
/// (resample, reduce), and how the result is stored (type, nodata).
///
/// The result has one band per variable and time label: `(bands, rows, columns)`.
///
/// The array is a plan, plain data: [`LazyArray::to_json`] and [`LazyArray::from_json`]
/// (or serde) carry it to another process, and `==` compares plans. Run settings
/// ([`threads`](LazyArray::threads), [`memory`](LazyArray::memory),
/// [`progress`](LazyArray::progress), observers) are not part of a plan.
///
/// ```
/// use rasterlab::prelude::*;
/// let scene = Raster::open("data/LC08_L1TP_224078_20200518_20200518_01_RT.TIF")?
///     .with_band_names(["blue", "green", "red"])?;
/// let ndi = scene.norm_diff("green", "red")?.nodata(0.0).scale(1e-4).chunks(512)?;
/// let values = ndi.progress(ProgressMode::Silent).compute()?;
/// assert_eq!(values.dim(), (1, 1860, 2041));
/// # Ok::<(), rasterlab::Error>(())
/// ```
#[derive(Debug, Clone)]
#[must_use = "a lazy array computes nothing until .compute(), .save(..).run() or .map_blocks(..)"]
pub struct LazyArray {
    raster: Raster,
    vars: Vec<(String, Expr)>,
    time_ops: Vec<TimeOp>,
    threads: Option<usize>,
    memory: Option<u64>,
    progress: ProgressMode,
    /// Records tasks of every run when set (a shared handle the user holds, such as a
    /// `Profiler`).
    observer: Option<Arc<dyn RunObserver>>,
    /// Stored type of a save.
    out_type: OutputType,
    /// Value written for nodata instead of NaN.
    fill: Option<f64>,
    /// An error from an operator (which cannot return `Result`), reported when run.
    deferred: Option<String>,
}

impl LazyArray {
    fn from_expr(raster: Raster, name: String, expr: Expr) -> LazyArray {
        LazyArray {
            raster,
            vars: vec![(name, expr)],
            time_ops: Vec::new(),
            threads: None,
            memory: None,
            progress: ProgressMode::Auto,
            observer: None,
            out_type: OutputType::Float32,
            fill: None,
            deferred: None,
        }
    }

    /// The decoded band `name` of `raster` (a time series for a time stack).
    pub fn band(raster: Raster, name: &str) -> Result<LazyArray> {
        let expr = Expr::Band(raster.band_index(name)?);
        Ok(LazyArray::from_expr(raster, name.to_string(), expr))
    }

    /// Several bands as variables of one array, in the order given.
    ///
    /// ```
    /// use rasterlab::prelude::*;
    /// let r = Raster::open("data/rgbn_20160101.tif")?.with_band_names(["red", "green", "blue", "nir"])?;
    /// let a = LazyArray::select(r, &["nir", "red"])?;
    /// assert_eq!(a.n_bands()?, 2);
    /// # Ok::<(), rasterlab::Error>(())
    /// ```
    pub fn select(raster: Raster, names: &[&str]) -> Result<LazyArray> {
        if names.is_empty() {
            return Err(Error::invalid("band selection", "no band named"));
        }
        let vars = names
            .iter()
            .map(|n| Ok((n.to_string(), Expr::Band(raster.band_index(n)?))))
            .collect::<Result<Vec<_>>>()?;
        let mut a = LazyArray::from_expr(raster, String::new(), Expr::Const(0.0));
        a.vars = vars;
        Ok(a)
    }

    /// `(a - b) / (a + b)` of two named bands; see [`Raster::norm_diff`].
    ///
    /// `a` and `b` must be different bands: the same band twice (by name, or two names
    /// reading the same band of the same file) is [`Error::Invalid`], since the result
    /// would be 0 everywhere.
    ///
    /// ```
    /// use rasterlab::prelude::*;
    /// let r = Raster::open("data/rgbn_20160101.tif")?.with_band_names(["red", "green", "blue", "nir"])?;
    /// let err = LazyArray::norm_diff(r, "red", "red").unwrap_err();
    /// assert!(matches!(err, Error::Invalid { what: "bands a and b", .. }));
    /// # Ok::<(), rasterlab::Error>(())
    /// ```
    pub fn norm_diff(raster: Raster, a: &str, b: &str) -> Result<LazyArray> {
        let (ia, ib) = (raster.band_index(a)?, raster.band_index(b)?);
        let (sa, sb) = (&raster.bands()[ia], &raster.bands()[ib]);
        if ia == ib || (sa.path == sb.path && sa.index == sb.index) {
            let source = format!("band {} of {}", sa.index, sa.path.display());
            let same = if ia == ib {
                format!("both are {a:?} ({source})")
            } else {
                format!("{a:?} and {b:?} both read {source}")
            };
            return Err(Error::invalid(
                "bands a and b",
                format!(
                    "{same}, so (a - b) / (a + b) is 0 everywhere (allowed: two different bands)"
                ),
            ));
        }
        let expr = Expr::NormDiff(Box::new(Expr::Band(ia)), Box::new(Expr::Band(ib)));
        let name = format!("norm_diff({a}, {b})");
        Ok(LazyArray::from_expr(raster, name, expr))
    }

    /// NDVI = norm_diff(nir, red).
    pub fn ndvi(raster: Raster, nir: &str, red: &str) -> Result<LazyArray> {
        Ok(LazyArray::norm_diff(raster, nir, red)?.named("ndvi"))
    }

    /// NBR (normalized burn ratio) = norm_diff(nir, swir2).
    pub fn nbr(raster: Raster, nir: &str, swir2: &str) -> Result<LazyArray> {
        Ok(LazyArray::norm_diff(raster, nir, swir2)?.named("nbr"))
    }

    /// NDWI (McFeeters) = norm_diff(green, nir).
    pub fn ndwi(raster: Raster, green: &str, nir: &str) -> Result<LazyArray> {
        Ok(LazyArray::norm_diff(raster, green, nir)?.named("ndwi"))
    }

    /// Renames a single-variable array (the name becomes the band description).
    pub fn named(mut self, name: &str) -> LazyArray {
        if let [(n, _)] = self.vars.as_mut_slice() {
            *n = name.to_string();
        }
        self
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

    /// Worker threads for computations (default: the [`PoolPlan`]'s).
    pub fn threads(mut self, n: usize) -> LazyArray {
        self.threads = Some(n);
        self
    }

    /// Memory budget in bytes for computations (default: the [`PoolPlan`]'s).
    pub fn memory(mut self, bytes: u64) -> LazyArray {
        self.memory = Some(bytes);
        self
    }

    /// How computations report progress.
    pub fn progress(mut self, mode: ProgressMode) -> LazyArray {
        self.progress = mode;
        self
    }

    /// Reports every task of later runs to `observer` (`LazyArray::observe(&Profiler)` in
    /// `profile` is the public way in).
    // Only the `profile` feature calls it (through `observe`).
    #[cfg_attr(not(feature = "profile"), allow(dead_code))]
    pub(crate) fn with_observer(mut self, observer: Arc<dyn RunObserver>) -> LazyArray {
        self.observer = Some(observer);
        self
    }

    /// The raster this array reads.
    pub fn raster(&self) -> &Raster {
        &self.raster
    }

    /// `(width, height)` of the result.
    pub fn size(&self) -> (usize, usize) {
        self.raster.size()
    }

    /// The expression of each variable, e.g. `norm_diff(green, red)`.
    pub fn describe(&self) -> String {
        let names = self.raster.band_names();
        let mut s = self
            .vars
            .iter()
            .map(|(_, e)| e.describe(&names))
            .collect::<Vec<_>>()
            .join(", ");
        for op in &self.time_ops {
            match op {
                TimeOp::Resample(p, stat) => s = format!("{s} | resample({p:?}).{stat}"),
                TimeOp::Reduce(stats) => {
                    let st: Vec<&str> = stats.iter().map(|s| s.name()).collect();
                    s = format!("{s} | {}", st.join(", "));
                }
            }
        }
        s
    }

    /// Labels along the time axis of the result (dates, or statistics once reduced).
    fn axis(&self) -> Result<Axis> {
        time::axis_after(&self.raster.times(), &self.time_ops)
    }

    /// Dates of the result's time steps; empty when reduced or without a time axis.
    pub fn times(&self) -> Vec<NaiveDate> {
        match self.axis() {
            Ok(Axis::Dates(d)) => d,
            _ => Vec::new(),
        }
    }

    /// Number of bands of the result (variables x time labels).
    pub fn n_bands(&self) -> Result<usize> {
        Ok(self.vars.len() * self.axis()?.len().max(1))
    }

    /// Band descriptions of the result: the variable, with the date or statistic.
    pub fn band_names(&self) -> Result<Vec<String>> {
        let axis = self.axis()?;
        let mut names = Vec::new();
        for (name, _) in &self.vars {
            match &axis {
                Axis::Dates(d) if d.is_empty() => names.push(name.clone()),
                Axis::Dates(d)
                    if d.len() == 1 && self.time_ops.is_empty() && self.raster.n_times() == 1 =>
                {
                    names.push(name.clone())
                }
                Axis::Dates(d) => names.extend(d.iter().map(|d| format!("{name}@{d}"))),
                Axis::Stats(s) => names.extend(s.iter().map(|s| format!("{name}_{s}"))),
            }
        }
        Ok(names)
    }

    /// The pool plan for a run: detected, then the array's overrides.
    pub(crate) fn plan(&self) -> Result<PoolPlan> {
        let rt = Runtime::builder()
            .threads_opt(self.threads)
            .memory_opt(self.memory)
            .build()?;
        Ok(rt.plan().clone())
    }

    /// The chunk grid a computation with `plan` uses.
    pub fn chunk_grid(&self, plan: &PoolPlan) -> Result<ChunkGrid> {
        self.raster.chunk_grid(plan, self.bytes_per_pixel()?)
    }

    fn input_bands(&self) -> Vec<usize> {
        let mut bands = Vec::new();
        for (_, e) in &self.vars {
            e.bands(&mut bands);
        }
        bands.sort_unstable();
        bands
    }

    /// Bytes of the input bands this array reads (every time step), as stored.
    fn input_bytes(&self) -> u64 {
        self.raster.nbytes() * self.input_bands().len() as u64
            / self.raster.band_count().max(1) as u64
    }

    /// Bytes held per pixel while a chunk is in flight: decoded inputs for every time
    /// step, one time series being built, temporaries, and the output bands.
    fn bytes_per_pixel(&self) -> Result<usize> {
        let nt = self.raster.n_times();
        Ok(4 * (nt * self.input_bands().len() + nt + 2 + self.n_bands()?))
    }

    /// Bytes of one chunk of `window` in flight.
    fn chunk_bytes(&self, grid: &ChunkGrid) -> Result<u64> {
        let (cw, ch) = grid.chunk_size();
        Ok((cw * ch * self.bytes_per_pixel()?) as u64)
    }

    /// The terminal check of the builder: operator errors recorded on the way, then the
    /// raster's overrides (nodata, scale) that the setters could not refuse.
    fn check(&self) -> Result<()> {
        match &self.deferred {
            Some(reason) => Err(Error::invalid("expression", reason.clone())),
            None => self.raster.check(),
        }
    }

    /// Source bands read per chunk, time-major, and the per-step bands they stand for.
    fn read_plan(&self) -> (Vec<usize>, Vec<usize>) {
        let needed = self.input_bands();
        let idx = (0..self.raster.n_times())
            .flat_map(|t| needed.iter().map(move |&b| (t, b)))
            .map(|(t, b)| self.raster.source_band(t, b))
            .collect();
        (idx, needed)
    }

    /// Reads and evaluates one window (relative to the raster's subset) with a worker's
    /// reader; returns `n_bands * window.len()` values, band-major.
    fn eval_window(&self, reader: &Reader, chunk: usize, window: Window) -> Result<Vec<f32>> {
        let n = window.len();
        let (idx, needed) = self.read_plan();
        let mut buf = reader.buffer(n * idx.len());
        let t0 = std::time::Instant::now();
        reader.read_decoded(&self.raster, self.raster.absolute(window), &idx, &mut buf)?;
        if let Some(p) = &self.observer {
            p.task(TaskKind::Read, chunk, t0, std::time::Instant::now());
            let stored = window.len() * idx.len() * usize::from(self.raster.dtype().bytes());
            p.read(
                chunk,
                self.raster.absolute(window),
                self.raster.block_size(),
                idx.len(),
                stored as u64,
            );
        }
        let out = self.eval_inputs(&buf, &needed, n);
        reader.give_back(buf);
        out
    }

    /// Evaluates every variable and the time pipeline on decoded inputs `buf` (time-major
    /// rows of `n` values for the per-step bands `needed`).
    fn eval_inputs(&self, buf: &[f32], needed: &[usize], n: usize) -> Result<Vec<f32>> {
        let nt = self.raster.n_times();
        let per_step = self.raster.band_count();
        let dates = self.raster.times();
        if let ([(_, expr)], 1, true) = (self.vars.as_slice(), nt, self.time_ops.is_empty()) {
            // The common case (one variable, no time axis): no intermediate copies.
            let mut inputs: Vec<&[f32]> = vec![&[]; per_step];
            for (k, &b) in needed.iter().enumerate() {
                inputs[b] = &buf[k * n..(k + 1) * n];
            }
            return Ok(expr.eval(&inputs, n).into_owned());
        }
        if let ([(_, Expr::Band(b))], [only]) = (self.vars.as_slice(), needed)
            && b == only
        {
            // One plain band over time (the time-series case): the inputs are the series.
            return Ok(if self.time_ops.is_empty() {
                buf.to_vec()
            } else {
                time::apply(buf, n, &dates, &self.time_ops)
            });
        }
        let mut out = Vec::with_capacity(n * self.n_bands()?);
        for (_, expr) in &self.vars {
            let mut series = Vec::with_capacity(n * nt);
            for t in 0..nt {
                let mut inputs: Vec<&[f32]> = vec![&[]; per_step];
                for (k, &b) in needed.iter().enumerate() {
                    let at = (t * needed.len() + k) * n;
                    inputs[b] = &buf[at..at + n];
                }
                series.extend_from_slice(&expr.eval(&inputs, n));
            }
            if self.time_ops.is_empty() {
                out.extend_from_slice(&series);
            } else {
                out.extend_from_slice(&time::apply(&series, n, &dates, &self.time_ops));
            }
        }
        Ok(out)
    }

    /// The whole result at reduced resolution, its longer side at most `max_side` pixels,
    /// shaped `(bands, rows, columns)`: inputs are read decimated (nearest) and the
    /// expression evaluated on them, which equals decimating the full result. For
    /// quick-looks.
    pub fn preview(&self, max_side: usize) -> Result<Array3<f32>> {
        self.check()?;
        let (w, h) = self.raster.decimated_size(max_side);
        let (idx, needed) = self.read_plan();
        let reader = Reader::open(&self.raster)?;
        let mut buf = vec![0f32; w * h * idx.len()];
        let (width, height) = self.size();
        let all = self.raster.absolute(Window::new(0, 0, width, height));
        reader.read_decoded_sized(&self.raster, all, (w, h), &idx, &mut buf)?;
        let values = self.eval_inputs(&buf, &needed, w * h)?;
        Array3::from_shape_vec((self.n_bands()?, h, w), values)
            .map_err(|e| Error::internal(format!("preview shape: {e}")))
    }

    /// Runs the array over every chunk, handing each result to `sink` on this thread.
    pub(crate) fn run(
        &self,
        plan: &PoolPlan,
        grid: &ChunkGrid,
        label: &str,
        sink: impl FnMut(usize, Window, Vec<f32>) -> Result<()>,
    ) -> Result<RunStats> {
        self.run_with(plan, grid, label, |_, _, data| Ok(data), sink)
    }

    /// Runs the array over every chunk; `post` turns a chunk's values into `T` on the
    /// worker, and `sink` consumes each `T` on this thread.
    pub(crate) fn run_with<T: Send>(
        &self,
        plan: &PoolPlan,
        grid: &ChunkGrid,
        label: &str,
        post: impl Fn(usize, Window, Vec<f32>) -> Result<T> + Sync,
        sink: impl FnMut(usize, Window, T) -> Result<()>,
    ) -> Result<RunStats> {
        let permits = self.permits(plan, grid)?;
        let mut progress = Progress::new(self.progress, label, "chunks", grid.len() as u64);
        let rt = Runtime::from_plan(plan.clone()).with_observer(self.observer.clone());
        run_chunks(
            &rt,
            grid,
            permits,
            false,
            || Reader::open(&self.raster),
            |reader, id, w| post(id, w, self.eval_window(reader, id, w)?),
            sink,
            &mut progress,
        )
    }

    /// Checks the array and returns how many chunks of `grid` fit in `plan`'s memory
    /// budget at once (at least 1; one chunk that does not fit is an error saying which
    /// chunk size would); limits GDAL's cache for the run.
    fn permits(&self, plan: &PoolPlan, grid: &ChunkGrid) -> Result<usize> {
        self.check()?;
        let chunk_bytes = self.chunk_bytes(grid)?;
        let permits = plan.memory_budget() / chunk_bytes.max(1);
        if permits < 1 {
            let (cw, ch) = grid.chunk_size();
            let fit =
                ((plan.memory_budget() / self.bytes_per_pixel()? as u64) as f64).sqrt() as usize;
            return Err(Error::invalid(
                "chunk size",
                format!(
                    "one {cw} x {ch} chunk needs {} but the memory budget is {}; use chunks of at most {fit} x {fit}",
                    crate::core::fmt::human_bytes(chunk_bytes),
                    crate::core::fmt::human_bytes(plan.memory_budget())
                ),
            ));
        }
        crate::raster::limit_gdal_cache();
        Ok(usize::try_from(permits).unwrap_or(usize::MAX))
    }

    /// Computes the whole array into memory, shaped `(bands, rows, columns)`.
    pub fn compute(&self) -> Result<Array3<f32>> {
        let plan = self.plan()?;
        let grid = self.chunk_grid(&plan)?;
        let (width, height) = self.size();
        let nb = self.n_bands()?;
        let mut out = Array3::<f32>::zeros((nb, height, width));
        self.run(&plan, &grid, "compute", |_, w, data| {
            let chunk = ndarray::ArrayView3::from_shape((nb, w.height, w.width), &data)
                .map_err(|e| Error::internal(format!("chunk shape: {e}")))?;
            out.slice_mut(ndarray::s![.., w.y..w.y + w.height, w.x..w.x + w.width])
                .assign(&chunk);
            Ok(())
        })?;
        Ok(out)
    }

    /// Computes a single-band array into memory, shaped `(rows, columns)`; an array with
    /// several bands is an error (use [`LazyArray::compute`]).
    ///
    /// ```
    /// use rasterlab::prelude::*;
    /// let r = Raster::open("data/rgbn_20160101.tif")?.with_band_names(["red", "green", "blue", "nir"])?;
    /// let ndvi: Array2<f32> = LazyArray::ndvi(r, "nir", "red")?.progress(ProgressMode::Silent).compute_band()?;
    /// assert_eq!(ndvi.dim(), (403, 515));
    /// # Ok::<(), rasterlab::Error>(())
    /// ```
    pub fn compute_band(&self) -> Result<ndarray::Array2<f32>> {
        let nb = self.n_bands()?;
        if nb != 1 {
            return Err(Error::invalid(
                "compute_band",
                format!("the array has {nb} bands; use compute()"),
            ));
        }
        let a = self.compute()?;
        let (_, h, w) = a.dim();
        a.into_shape_with_order((h, w))
            .map_err(|e| Error::internal(format!("band shape: {e}")))
    }

    /// Starts describing a save to a tiled, compressed GeoTIFF; finish with [`Save::run`].
    pub fn save(&self, path: impl AsRef<std::path::Path>) -> Save {
        Save::new(self.clone(), path.as_ref().to_path_buf())
    }

    // ---- building blocks for ops.rs -------------------------------------------------

    fn map_exprs(mut self, f: impl Fn(Expr) -> Expr) -> LazyArray {
        self.vars = self.vars.into_iter().map(|(n, e)| (n, f(e))).collect();
        self
    }

    fn unary(self, op: Unary) -> LazyArray {
        self.map_exprs(|e| Expr::Unary(op, Box::new(e)))
    }

    /// `scalar op self`, element-wise (the operators with a number on the left).
    fn scalar_left(self, op: Binary, scalar: Operand) -> LazyArray {
        match scalar {
            Operand::Scalar(c) => {
                self.map_exprs(|e| Expr::Binary(op, Box::new(Expr::Const(c)), Box::new(e)))
            }
            // only numbers reach here (the impls are for f32, f64, i32)
            Operand::Array(other) => other.binary(op, Operand::Array(Box::new(self))),
        }
    }

    fn binary(mut self, op: Binary, other: Operand) -> LazyArray {
        match other {
            Operand::Scalar(c) => {
                self.map_exprs(|e| Expr::Binary(op, Box::new(e), Box::new(Expr::Const(c))))
            }
            Operand::Array(other) => {
                let other = *other;
                if let Some(reason) = self.combine_error(&other) {
                    self.deferred.get_or_insert(reason);
                    return self;
                }
                let rhs = other.vars;
                if rhs.len() == 1 {
                    let r = rhs[0].1.clone();
                    self.map_exprs(|e| Expr::Binary(op, Box::new(e), Box::new(r.clone())))
                } else {
                    self.vars = self
                        .vars
                        .into_iter()
                        .zip(rhs)
                        .map(|((n, a), (_, b))| (n, Expr::Binary(op, Box::new(a), Box::new(b))))
                        .collect();
                    self
                }
            }
        }
    }

    /// Why `other` cannot be combined element-wise with `self`, if it cannot.
    fn combine_error(&self, other: &LazyArray) -> Option<String> {
        if let Some(d) = &other.deferred {
            return Some(d.clone());
        }
        if !self.time_ops.is_empty() || !other.time_ops.is_empty() {
            return Some("combine arrays before reducing over time".into());
        }
        if !self.raster.same_source(&other.raster) {
            return Some("arrays from different rasters (or subsets) cannot be combined".into());
        }
        let (a, b) = (self.vars.len(), other.vars.len());
        if b != 1 && a != b {
            return Some(format!("{a} variables combined with {b}"));
        }
        None
    }
}

/// The right-hand side of an operation: a number or another array.
#[derive(Debug, Clone)]
pub enum Operand {
    /// The same value everywhere.
    Scalar(f32),
    /// Another lazy array over the same raster.
    Array(Box<LazyArray>),
}

impl From<f32> for Operand {
    fn from(v: f32) -> Operand {
        Operand::Scalar(v)
    }
}

impl From<f64> for Operand {
    fn from(v: f64) -> Operand {
        Operand::Scalar(v as f32)
    }
}

impl From<i32> for Operand {
    fn from(v: i32) -> Operand {
        Operand::Scalar(v as f32)
    }
}

impl From<LazyArray> for Operand {
    fn from(v: LazyArray) -> Operand {
        Operand::Array(Box::new(v))
    }
}

impl From<&LazyArray> for Operand {
    fn from(v: &LazyArray) -> Operand {
        Operand::Array(Box::new(v.clone()))
    }
}

impl fmt::Display for LazyArray {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (w, h) = self.size();
        write!(f, "LazyArray {} ({w} x {h}", self.describe())?;
        if let Ok(nb) = self.n_bands() {
            write!(f, " x {nb} band(s)")?;
        }
        write!(f, ", float32")?;
        if let Some((cw, ch)) = self.raster.chunk_size() {
            write!(f, ", chunks {cw} x {ch}")?;
        }
        write!(f, ")")
    }
}
