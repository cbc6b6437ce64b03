//! # rasterlab
//!
//! Chunked raster processing and clustering over GDAL, made to be driven from Jupyter
//! notebooks through the evcxr Rust kernel.
//!
//! Data flows one way: [`raster`] (sources) -> [`array`] (lazy, fused per-chunk
//! expressions) -> [`exec`] (runs chunks on a rayon pool sized by [`resources`]) ->
//! [`raster::write`] or memory. Progress and display are observers, never globals: evcxr
//! resets every static in each notebook cell.
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
pub mod cancel;
pub mod cluster;
pub mod core;
pub mod dashboard;
pub mod datasets;
pub mod display;
pub mod error;
pub mod exec;
pub mod grid;
pub mod observe;
pub mod profile;
pub mod progress;
pub mod raster;
pub mod resources;

pub use cancel::CancelToken;
pub use error::{Error, Result};
/// The `ndarray` version rasterlab returns arrays of, for notebooks that do not depend on
/// it themselves.
pub use ndarray;

/// The handful of names a notebook needs: `use rasterlab::prelude::*;`.
pub mod prelude {
    pub use crate::array::{Block, LazyArray, OutputType, Period, SaveReport, Stat};
    pub use crate::cancel::CancelToken;
    pub use crate::cluster::{
        Gamma, Init, KMeans, KMeansModel, LabelMap, MiniBatchKMeans, Samples, SpectralClustering,
        SpectralModel,
    };
    pub use crate::dashboard::{Dashboard, DashboardOptions};
    pub use crate::display::{Colormap, Image, Show, Table};
    pub use crate::error::{Error, Result};
    pub use crate::grid::{ChunkGrid, Window};
    pub use crate::profile::{CacheProfiler, Profiler, ResourceProfiler};
    pub use crate::progress::ProgressMode;
    pub use crate::raster::write::Compression;
    pub use crate::raster::{Raster, Stack};
    pub use crate::resources::{PoolPlan, Resources};
    pub use ndarray::{Array2, Array3};
}
