//! `rasterlab product`: the product of bands (e.g. blue * green * red) of one file or
//! of single-band files.

use std::path::PathBuf;

use rasterlab::CancelToken;
use rasterlab::prelude::*;

use crate::align;
use crate::output::{OutArgs, check_outputs, save_with};

/// Arguments of `rasterlab product`.
#[derive(clap::Args)]
pub(crate) struct ProductArgs {
    /// One multi-band file, or several single-band files.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Names for the bands, in order.
    #[arg(long, value_delimiter = ',')]
    band_names: Vec<String>,
    /// The bands to multiply (default: all).
    #[arg(long, value_delimiter = ',')]
    bands: Vec<String>,
    #[command(flatten)]
    align: align::AlignArgs,
    #[command(flatten)]
    out: OutArgs,
}

/// Opens the files as bands and saves the product of the chosen ones.
pub(crate) fn product(args: ProductArgs, cancel: &CancelToken) -> rasterlab::Result<()> {
    check_outputs(&args.out)?;
    let mut raster = align::open(&args.files, Stack::Band, None, args.align.align()?.as_ref())?;
    if !args.band_names.is_empty() {
        raster = raster.with_band_names(args.band_names.clone())?;
    }
    let names: Vec<String> = if args.bands.is_empty() {
        raster.band_names().iter().map(|s| s.to_string()).collect()
    } else {
        args.bands.clone()
    };
    let mut product = raster.band(&names[0])?;
    for name in &names[1..] {
        product = product * raster.band(name)?;
    }
    save_with(product, args.out, cancel)
}
