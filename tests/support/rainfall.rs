//! The generated rainfall cube, from `rasterlab::datasets`.

#![allow(unused_imports)]

pub use rasterlab::datasets::*;
