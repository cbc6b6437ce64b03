//! The options every writing command shares (`-o`, `--compress`, `--cog`, `--memory`,
//! `--profile` ...): checking them before any input is read, and the save that applies
//! them (`ndi`, `product`, `reduce`; `cluster` writes its label map itself).

use std::path::{Path, PathBuf};

use rasterlab::CancelToken;
use rasterlab::prelude::*;
use rasterlab::runtime::resources::parse_bytes;

use crate::{ranks, say};

/// Options shared by every command that writes a raster.
#[derive(clap::Args)]
pub(crate) struct OutArgs {
    /// Input nodata value (overrides the files'); it must fit the input's type.
    #[arg(long, allow_negative_numbers = true)]
    pub(crate) nodata: Option<f64>,
    /// Input scale factor: physical = stored * scale (finite, non-zero).
    #[arg(long, allow_negative_numbers = true)]
    pub(crate) scale: Option<f64>,
    /// Square chunk size in pixels (default: block-aligned, sized from the memory budget).
    #[arg(long)]
    pub(crate) chunks: Option<usize>,
    /// Worker threads (default: usable cores; env RASTERLAB_THREADS).
    #[arg(long)]
    pub(crate) threads: Option<usize>,
    /// Memory budget, e.g. 1GiB (default: half the usable memory; env RASTERLAB_MEMORY).
    #[arg(long)]
    pub(crate) memory: Option<String>,
    /// Compression: none, lzw, deflate, zstd.
    #[arg(long, default_value = "lzw")]
    pub(crate) compress: String,
    /// Write a Cloud-Optimized GeoTIFF with overviews (the file is rewritten once more).
    #[arg(long)]
    pub(crate) cog: bool,
    /// How the --cog overviews are computed: nearest, average, bilinear, cubic, mode
    /// [default: average; cluster: mode].
    #[arg(long, value_name = "METHOD", requires = "cog")]
    pub(crate) overview_resampling: Option<String>,
    /// Hide the progress bar.
    #[arg(long)]
    pub(crate) quiet: bool,
    /// Also write a profile (task timeline, CPU and memory) as an SVG figure.
    #[arg(long, value_name = "SVG")]
    pub(crate) profile: Option<PathBuf>,
    /// Output GeoTIFF.
    #[arg(short, long)]
    pub(crate) output: PathBuf,
}

/// Refuses, before any input is read, an output (`-o`, `--profile`) that cannot be
/// written: a missing or read-only folder, a folder given as the file (including any
/// name ending in `/`, which names a folder whether it exists or not).
pub(crate) fn check_outputs(out: &OutArgs) -> rasterlab::Result<()> {
    for path in std::iter::once(&out.output).chain(&out.profile) {
        if path
            .as_os_str()
            .to_string_lossy()
            .ends_with(std::path::is_separator)
        {
            return Err(rasterlab::Error::Output {
                path: path.clone(),
                reason: "the name ends in a slash, so it names a folder; give a file name \
                         (allowed: a file in an existing, writable folder)"
                    .into(),
            });
        }
        check_output_path(path)?;
    }
    Ok(())
}

/// Refuses an output path that cannot be written (see [`check_outputs`]).
pub(crate) fn check_output_path(path: &Path) -> rasterlab::Result<()> {
    rasterlab::raster::write::check_output_path(path)
}

/// `--cog` and `--overview-resampling` (`default` when not given), parsed.
pub(crate) fn layout_arg(out: &OutArgs, default: OverviewResampling) -> rasterlab::Result<Layout> {
    if !out.cog {
        return Ok(Layout::Tiled);
    }
    let resampling = match &out.overview_resampling {
        Some(name) => name.parse()?,
        None => default,
    };
    Ok(Layout::Cog { resampling })
}

/// `--memory`, parsed; an error names the option and the form allowed.
pub(crate) fn memory_arg(out: &OutArgs) -> rasterlab::Result<Option<u64>> {
    out.memory.as_deref().map(parse_memory).transpose()
}

/// A `--memory` value; an error names the option and the form allowed.
pub(crate) fn parse_memory(m: &str) -> rasterlab::Result<u64> {
    parse_bytes(m).map_err(|e| {
        let why = match e {
            rasterlab::Error::Invalid { reason, .. } => reason,
            other => other.to_string(),
        };
        rasterlab::Error::invalid(
            "--memory",
            format!("{why} (allowed: a size such as 512MiB or 2GiB)"),
        )
    })
}

/// Refuses an output or profile path that is one of `raster`'s files, and a profile
/// written over the output.
pub(crate) fn check_against_inputs(out: &OutArgs, raster: &Raster) -> rasterlab::Result<()> {
    let outputs: Vec<&Path> = std::iter::once(out.output.as_path())
        .chain(out.profile.as_deref())
        .collect();
    rasterlab::raster::output::check_distinct(&outputs, &raster.source_files())
}

/// Applies nodata/scale, saves with the shared options and prints the report.
pub(crate) fn save_with(
    mut array: LazyArray,
    out: OutArgs,
    cancel: &CancelToken,
) -> rasterlab::Result<()> {
    check_against_inputs(&out, array.raster())?;
    let compression: Compression = out.compress.parse()?;
    let layout = layout_arg(&out, OverviewResampling::CONTINUOUS)?;
    let memory = memory_arg(&out)?;
    if let Some(nd) = out.nodata {
        array = array.nodata(nd);
    }
    if let Some(s) = out.scale {
        array = array.scale(s);
    }
    let mut save = array
        .save(&out.output)
        .cancel_on(cancel)
        .compress(compression)
        .layout(layout)
        .progress(if out.quiet {
            ProgressMode::Silent
        } else {
            ProgressMode::Auto
        });
    if let Some(c) = out.chunks {
        save = save.chunks(c);
    }
    if let Some(t) = out.threads {
        save = save.threads(t);
    }
    if let Some(m) = memory {
        save = save.memory(m);
    }
    let profiler = out.profile.as_ref().map(|_| Profiler::new());
    if let Some(p) = &profiler {
        save = save.observe(p);
    }
    // Under mpirun, every rank runs this; only rank 0 has a report to print.
    let Some(report) = ranks::save(save, profiler.as_ref())? else {
        return Ok(());
    };
    say(&report)?;
    if let (Some(p), Some(path)) = (&profiler, &out.profile) {
        p.save_svg(path)?;
        say(format_args!("  profile:  {}", path.display()))?;
    }
    Ok(())
}
