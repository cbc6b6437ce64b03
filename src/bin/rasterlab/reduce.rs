//! `rasterlab reduce`: per-pixel statistics over time of a stack of files or a NetCDF
//! variable (one output band per statistic), or the resampled series itself; and the
//! `--bbox` option it takes in two forms.

use std::ffi::OsString;
use std::path::PathBuf;

use rasterlab::CancelToken;
use rasterlab::prelude::*;
use rasterlab::raster::time::parse_date;

use crate::align;
use crate::output::{OutArgs, check_outputs, save_with};

/// Arguments of `rasterlab reduce`.
#[derive(clap::Args)]
pub(crate) struct ReduceArgs {
    /// Files (one or more time steps each), or one NetCDF file with a time axis.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// How files are combined (only `time` is meaningful here).
    #[arg(long, default_value = "time")]
    stack: String,
    /// Dates of the files, YYYY-MM-DD, in file order (default: parsed from file names).
    #[arg(long, value_delimiter = ',')]
    dates: Vec<String>,
    /// NetCDF variable to read from every file.
    #[arg(long)]
    variable: Option<String>,
    /// Names for the bands of each time step.
    #[arg(long, value_delimiter = ',')]
    band_names: Vec<String>,
    /// The band to reduce (default: the first).
    #[arg(long)]
    band: Option<String>,
    /// Resample to week or month first.
    #[arg(long)]
    resample: Option<String>,
    /// Statistic of each resampling period.
    #[arg(long, default_value = "mean")]
    resample_stat: String,
    /// Statistics over time, one output band each: count,sum,mean,std,min,max.
    #[arg(long, value_delimiter = ',', default_value = "mean")]
    stat: Vec<String>,
    /// Write the series itself (resampled with --resample), one band per time step or
    /// period named band@date, instead of statistics over time.
    #[arg(long, conflicts_with = "stat")]
    series: bool,
    /// Bounding box in map coordinates: `xmin,ymin,xmax,ymax` or `xmin ymin xmax ymax`.
    #[arg(long, value_parser = parse_bbox, allow_hyphen_values = true, value_name = "XMIN,YMIN,XMAX,YMAX")]
    bbox: Option<[f64; 4]>,
    /// First date kept (YYYY-MM-DD).
    #[arg(long)]
    from: Option<String>,
    /// Last date kept (YYYY-MM-DD).
    #[arg(long)]
    to: Option<String>,
    #[command(flatten)]
    align: align::AlignArgs,
    #[command(flatten)]
    out: OutArgs,
}

/// Opens the stack, narrows it (bbox, dates), resamples it and saves the statistics or
/// the series.
pub(crate) fn reduce(args: ReduceArgs, cancel: &CancelToken) -> rasterlab::Result<()> {
    check_outputs(&args.out)?;
    if args.stack != "time" {
        return Err(rasterlab::Error::invalid(
            "--stack",
            format!("{:?}: reduce stacks along time", args.stack),
        ));
    }
    let files: Vec<PathBuf> = match &args.variable {
        Some(var) => args
            .files
            .iter()
            .map(|f| PathBuf::from(format!("NETCDF:\"{}\":{var}", f.display())))
            .collect(),
        None => args.files.clone(),
    };
    let dates = args
        .dates
        .iter()
        .map(|d| parse_date(d))
        .collect::<rasterlab::Result<Vec<_>>>()?;
    let dates = (!dates.is_empty()).then_some(dates.as_slice());
    let mut raster = align::open(&files, Stack::Time, dates, args.align.align()?.as_ref())?;
    if !args.band_names.is_empty() {
        raster = raster.with_band_names(args.band_names.clone())?;
    }
    if let Some([xmin, ymin, xmax, ymax]) = args.bbox {
        raster = raster.bbox(xmin, ymin, xmax, ymax)?;
    }
    if args.from.is_some() || args.to.is_some() {
        let start = args
            .from
            .as_deref()
            .map(parse_date)
            .transpose()?
            .unwrap_or(chrono::NaiveDate::MIN);
        let end = args
            .to
            .as_deref()
            .map(parse_date)
            .transpose()?
            .unwrap_or(chrono::NaiveDate::MAX);
        raster = raster.dates(start, end)?;
    }
    let band = match &args.band {
        Some(b) => b.clone(),
        None => raster.band_names()[0].to_string(),
    };
    let mut array = raster.band(&band)?;
    if let Some(period) = &args.resample {
        let period: Period = period.parse()?;
        array = array.resample(period).stat(args.resample_stat.parse()?);
    }
    if args.series {
        return save_with(array, args.out, cancel);
    }
    let stats = args
        .stat
        .iter()
        .map(|s| s.parse())
        .collect::<rasterlab::Result<Vec<Stat>>>()?;
    save_with(array.reduce(&stats), args.out, cancel)
}

/// `--bbox` as one token `xmin,ymin,xmax,ymax` (the four-token form is joined into it by
/// [`join_bbox`] before clap sees the arguments).
fn parse_bbox(s: &str) -> Result<[f64; 4], String> {
    let bad =
        || format!("{s:?}: allowed: four numbers xmin,ymin,xmax,ymax (or xmin ymin xmax ymax)");
    let v = s
        .split(',')
        .map(|t| t.trim().parse::<f64>().ok().filter(|x| x.is_finite()))
        .collect::<Option<Vec<f64>>>()
        .ok_or_else(bad)?;
    <[f64; 4]>::try_from(v).map_err(|_| bad())
}

/// Rewrites `--bbox XMIN YMIN XMAX YMAX` as `--bbox XMIN,YMIN,XMAX,YMAX`, so that both
/// documented forms parse and a comma form followed by positional files does not take
/// the files as coordinates (clap counts values per token, not per comma).
pub(crate) fn join_bbox(args: Vec<OsString>) -> Vec<OsString> {
    let mut out = Vec::with_capacity(args.len());
    let mut i = 0;
    while i < args.len() {
        out.push(args[i].clone());
        let numbers = args.get(i + 1..i + 5).and_then(|next| {
            next.iter()
                .map(|a| a.to_str().and_then(|t| t.parse::<f64>().ok()).map(|_| a))
                .collect::<Option<Vec<_>>>()
        });
        if args[i] == "--bbox"
            && let Some(numbers) = numbers
        {
            let joined: Vec<&str> = numbers.iter().filter_map(|a| a.to_str()).collect();
            out.push(joined.join(",").into());
            i += 5;
        } else {
            i += 1;
        }
    }
    out
}
