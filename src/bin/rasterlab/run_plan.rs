//! `rasterlab run PLAN`: executes a plan file written by `Save::to_plan_file` (in a
//! notebook or a program), in this process or, under `mpirun` / `srun`, on every rank.

use std::path::PathBuf;

use rasterlab::array::Save;
use rasterlab::prelude::*;

/// Arguments of `rasterlab run`.
#[derive(clap::Args)]
pub struct RunArgs {
    /// A plan file (JSON) written by `Save::to_plan_file`.
    plan: PathBuf,
    /// Output GeoTIFF (default: the plan's output path).
    #[arg(short, long)]
    output: Option<PathBuf>,
    /// Worker threads per process (default: this process's share of the usable cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Memory budget per process, e.g. 1GiB (default: its share of half the memory).
    #[arg(long)]
    memory: Option<String>,
    /// Hide the progress bar.
    #[arg(long)]
    quiet: bool,
    /// Also write a profile (task timeline, CPU and memory) as an SVG figure; under
    /// mpirun, one timeline row per rank and thread.
    #[arg(long, value_name = "SVG")]
    profile: Option<PathBuf>,
}

/// Reads the plan, applies this machine's settings and saves.
pub fn run(args: RunArgs, cancel: &CancelToken) -> rasterlab::Result<Option<SaveReport>> {
    let mut save = Save::from_plan_file(&args.plan)?;
    if let Some(out) = &args.output {
        save = save.output(out);
    }
    crate::output::check_output_path(save.path())?;
    if let Some(svg) = &args.profile {
        crate::output::check_output_path(svg)?;
        rasterlab::raster::output::check_distinct(&[svg.as_path()], &[save.path().to_path_buf()])?;
    }
    save = save.cancel_on(cancel).progress(if args.quiet {
        ProgressMode::Silent
    } else {
        ProgressMode::Auto
    });
    if let Some(t) = args.threads {
        save = save.threads(t);
    }
    if let Some(m) = &args.memory {
        save = save.memory(crate::output::parse_memory(m)?);
    }
    let profiler = args.profile.as_ref().map(|_| Profiler::new());
    if let Some(p) = &profiler {
        save = save.observe(p);
    }
    let report = super::ranks::save(save, profiler.as_ref())?;
    if let (Some(_), Some(p), Some(svg)) = (&report, &profiler, &args.profile) {
        p.save_svg(svg)?;
    }
    Ok(report)
}
