//! The bottom layer: plain values and helpers that every other module may use and that
//! use nothing else of rasterlab (no GDAL, no thread pool, no error type).
//!
//! | module | what |
//! |---|---|
//! | [`window`] | [`Window`](window::Window), a rectangle of pixels |
//! | [`dtype`] | [`DataType`](dtype::DataType), the stored type of a band; [`Element`](dtype::Element), the types values are read into; [`OutputType`](dtype::OutputType), the stored type of a saved array or label map |
//! | `float` | NaN-aware float equality and bit-exact JSON of floats, for plans |
//! | [`fmt`] | text and HTML formatting shared by the reprs of every layer (`human_bytes`, `html_table`, `emit`, ...) |
//! | `rng` | the one seedable generator (k-means seeding, sampling, generated data sets) |

pub mod dtype;
pub(crate) mod float;
pub mod fmt;
pub(crate) mod rng;
pub mod window;
