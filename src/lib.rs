//! # rasterlab
//!
//! Chunked raster processing and clustering over GDAL, made to be driven from Jupyter
//! notebooks through the evcxr Rust kernel.
//!
//! Data flows one way: [`raster`] (sources) -> [`array`](mod@array) (lazy, fused per-chunk
//! expressions) -> [`runtime::exec`] (runs chunks on a rayon pool sized by [`runtime::resources`]) ->
//! [`raster::write`] or memory. Progress and display are observers, never globals: evcxr
//! resets every static in each notebook cell.
//!
//! ## Layers
//!
//! Modules import only from their own layer or lower ones, and no two modules (nor two
//! submodules of one module) import each other, directly or through others.
//! `tests/layers.rs` reads the sources and fails on any such back edge or cycle.
//!
//! | layer | modules | what |
//! |---|---|---|
//! | 0 core | [`core`] | `Window`, `DataType`, `OutputType`, text/HTML formatting, the RNG; imports nothing else of the crate (nor GDAL or rayon) |
//! | 1 error | [`error`] | the one [`Error`] type |
//! | 2 runtime | [`runtime`]: `grid`, `resources`, `cgroup` (private), `cancel`, `progress`, `observe`, `context`, `exec` | chunk grids, machine resources and pool plans, the one [`Runtime`](runtime::Runtime) value, cancelling, progress, run observers, the executor |
//! | 3 raster | [`raster`] | GDAL sources, windowed reads, GeoTIFF writes |
//! | 4 array | [`array`](mod@array) | lazy chunked arrays |
//! | 5 cluster | [`cluster`] | samples, k-means, spectral clustering, metrics |
//! | 6 front-ends | [`display`], [`profile`], [`dashboard`], [`datasets`], [`slurm`], `distributed` (feature `mpi`) | notebook rendering, profilers, the live dashboard, generated data, SLURM batch jobs, MPI ranks |
//!
//! The CLI (`src/bin`) sits on top. An inherent `impl` block may live in a higher module
//! than its type (as ndarray's integrations do), so a lower layer never needs to know the
//! higher one: [`Raster::band`](raster::Raster::band) and `norm_diff` are defined in
//! `array`, `Raster::to_samples` in `cluster`, `LazyArray::observe(&Profiler)` in
//! `profile` (the executor sees only the [`runtime::observe::RunObserver`] trait), and the notebook
//! reprs in `display`.
//!
//! ## Cargo features
//!
//! Notebooks compile the crate inside the kernel, so the defaults are what they need:
//! `profile` (the [`profile`] module: profilers and their SVG figures, plotters) and
//! `dashboard` (the [`dashboard`] module). `spectral` adds
//! `cluster::SpectralClustering` (faer); `cli` builds the `rasterlab` program (clap).
//! Without default features the core (rasters, lazy arrays, k-means, display) remains.
//!
//! ```no_run
//! use rasterlab::prelude::*;
//!
//! # fn main() -> rasterlab::Result<()> {
//! let scene = Raster::open("data/LC08_L1TP_224078_20200518_20200518_01_RT.TIF")?
//!     .with_band_names(["blue", "green", "red"])?;
//! let ndi = scene.norm_diff("green", "red")?.nodata(0.0).scale(1e-4);
//! let report = ndi.save("ndi.tif").chunks(256).compress(Compression::Lzw).run()?;
//! println!("{report}");
//! # Ok(())
//! # }
//! ```

pub mod array;
pub mod cluster;
pub mod core;
#[cfg(feature = "dashboard")]
pub mod dashboard;
pub mod datasets;
pub mod display;
#[cfg(feature = "mpi")]
pub mod distributed;
pub mod error;
#[cfg(feature = "profile")]
pub mod profile;
pub mod raster;
pub mod runtime;
pub mod slurm;

pub use error::{Error, Result};
/// The `ndarray` version rasterlab returns arrays of, for notebooks that do not depend on
/// it themselves.
pub use ndarray;
pub use runtime::cancel::CancelToken;

/// The handful of names a notebook needs: `use rasterlab::prelude::*;`.
pub mod prelude {
    pub use crate::array::{Block, LazyArray, Period, SaveReport, Stat};
    #[cfg(feature = "spectral")]
    pub use crate::cluster::{Gamma, SpectralClustering, SpectralModel};
    pub use crate::cluster::{Init, KMeans, KMeansModel, LabelMap, MiniBatchKMeans, Samples};
    pub use crate::core::dtype::{DataType, OutputType};
    pub use crate::core::window::Window;
    #[cfg(feature = "dashboard")]
    pub use crate::dashboard::{Dashboard, DashboardOptions};
    pub use crate::display::{Colormap, Image, Show, Table};
    pub use crate::error::{Error, Result};
    #[cfg(feature = "profile")]
    pub use crate::profile::{CacheProfiler, Profiler, ResourceProfiler};
    pub use crate::raster::align::{Align, Resampling};
    pub use crate::raster::write::{Compression, Layout, OverviewResampling};
    pub use crate::raster::{Raster, Stack};
    pub use crate::runtime::cancel::CancelToken;
    pub use crate::runtime::grid::ChunkGrid;
    pub use crate::runtime::progress::ProgressMode;
    pub use crate::runtime::resources::{PoolPlan, Resources};
    pub use crate::runtime::{Runtime, RuntimeBuilder};
    pub use ndarray::{Array2, Array3};
}
