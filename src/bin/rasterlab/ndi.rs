//! `rasterlab ndi`: the normalized difference (a - b) / (a + b) of two bands, of one
//! multi-band file or of two single-band files.

use std::path::PathBuf;

use rasterlab::CancelToken;
use rasterlab::prelude::*;

use crate::align;
use crate::output::{OutArgs, check_outputs, save_with};

/// Arguments of `rasterlab ndi`.
#[derive(clap::Args)]
pub(crate) struct NdiArgs {
    /// A multi-band raster (omit when --bands is given).
    file: Option<PathBuf>,
    /// Two single-band files, a then b: `--bands B3.tif,B4.tif`.
    #[arg(long, value_delimiter = ',', num_args = 1..)]
    bands: Vec<PathBuf>,
    /// Names for the bands of FILE, in order: `--band-names blue,green,red`.
    #[arg(long, value_delimiter = ',')]
    band_names: Vec<String>,
    /// Band a (name or band1, band2 ...). Defaults to the first of --bands.
    #[arg(long)]
    a: Option<String>,
    /// Band b. Defaults to the second of --bands.
    #[arg(long)]
    b: Option<String>,
    #[command(flatten)]
    align: align::AlignArgs,
    #[command(flatten)]
    out: OutArgs,
}

/// Opens the bands, checks `--a` and `--b`, and saves the normalized difference.
pub(crate) fn ndi(args: NdiArgs, cancel: &CancelToken) -> rasterlab::Result<()> {
    check_outputs(&args.out)?;
    let (raster, default_a, default_b) = match (&args.file, args.bands.as_slice()) {
        (Some(_), [_, ..]) => {
            return Err(rasterlab::Error::invalid(
                "arguments",
                "give either FILE or --bands, not both",
            ));
        }
        (None, [a, b]) => {
            let names = ["a", "b"].map(String::from);
            let names = if args.band_names.is_empty() {
                names.to_vec()
            } else {
                args.band_names.clone()
            };
            let files = [a.clone(), b.clone()];
            let r = align::open(&files, Stack::Band, None, args.align.align()?.as_ref())?
                .with_band_names(names)?;
            let (na, nb) = (r.band_names()[0].to_string(), r.band_names()[1].to_string());
            (r, Some(na), Some(nb))
        }
        (None, other) => {
            return Err(rasterlab::Error::invalid(
                "arguments",
                format!(
                    "--bands needs exactly two files (a,b), got {}; or give one FILE",
                    other.len()
                ),
            ));
        }
        (Some(file), []) => {
            let files = [file.clone()];
            let mut r = align::open(&files, Stack::Band, None, args.align.align()?.as_ref())?;
            if !args.band_names.is_empty() {
                r = r.with_band_names(args.band_names.clone())?;
            }
            (r, None, None)
        }
    };
    let need = |v: Option<String>, d: Option<String>, which| {
        v.or(d).ok_or_else(|| {
            rasterlab::Error::invalid("arguments", format!("--{which} is required with FILE"))
        })
    };
    let a = need(args.a, default_a, "a")?;
    let b = need(args.b, default_b, "b")?;
    save_with(raster.norm_diff(&a, &b)?, args.out, cancel)
}
