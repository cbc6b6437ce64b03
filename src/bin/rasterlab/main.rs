//! `rasterlab`: the command-line face of the library. This file holds the commands and
//! their dispatch, the report's stdout and the exit codes; each command lives in the
//! file of its name (`ndi.rs`, `reduce.rs`, `product.rs`, `cluster.rs`, `run_plan.rs`),
//! the options every writing command shares in `output.rs`. `resources` and `info` are
//! one line each, in [`run`].

use std::fmt::Display;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use rasterlab::CancelToken;

mod align;
mod cluster;
mod ndi;
mod output;
mod product;
mod ranks;
mod reduce;
mod run_plan;
mod signals;
use rasterlab::prelude::*;

#[derive(Parser)]
#[command(
    name = "rasterlab",
    version,
    about = "Chunked raster processing over GDAL"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Cores and memory this process may use, and the pool plan built from them.
    Resources,
    /// Describe a raster: size, bands, data type, CRS, bounds, blocks, nodata.
    Info {
        /// Any raster GDAL can read.
        file: PathBuf,
    },
    /// Normalized difference (a - b) / (a + b) of two bands, written as a tiled GeoTIFF.
    Ndi(Box<ndi::NdiArgs>),
    /// Per-pixel statistics over time of a stack of files or a NetCDF variable, one
    /// output band per statistic.
    Reduce(Box<reduce::ReduceArgs>),
    /// Product of bands (e.g. blue * green * red) of one file or of single-band files.
    Product(Box<product::ProductArgs>),
    /// Cluster the valid pixels of a raster (bands as features) and write the label map.
    Cluster(Box<cluster::ClusterArgs>),
    /// Execute a plan file written by `Save::to_plan_file` (under mpirun/srun: on every rank).
    Run(Box<run_plan::RunArgs>),
}

/// Writes one line of the report on stdout. A reader that went away (`| head -1`) comes
/// back as an I/O error on `<stdout>`, which `main` turns into a quiet exit with status
/// 141, what a shell reports for a tool killed by SIGPIPE.
fn say(line: impl Display) -> rasterlab::Result<()> {
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{line}")
        .and_then(|()| stdout.flush())
        .map_err(|source| rasterlab::Error::Io {
            path: PathBuf::from("<stdout>"),
            source,
        })
}

/// Exit status of a run that stopped because stdout was closed: 128 + SIGPIPE (13).
const EXIT_CLOSED_STDOUT: u8 = 141;

/// Runs the command `cli` names.
fn run(cli: Cli, cancel: &CancelToken) -> rasterlab::Result<()> {
    match cli.command {
        Command::Resources => {
            let res = Resources::detect();
            say(&res)?;
            say(res.plan()?)?;
        }
        Command::Info { file } => say(Raster::open(file)?)?,
        Command::Ndi(args) => ndi::ndi(*args, cancel)?,
        Command::Reduce(args) => reduce::reduce(*args, cancel)?,
        Command::Product(args) => product::product(*args, cancel)?,
        Command::Cluster(args) => cluster::cluster(*args, cancel)?,
        Command::Run(args) => {
            if let Some(report) = run_plan::run(*args, cancel)? {
                say(&report)?;
            }
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    // GDAL prints its own errors on stderr; ours carry the same message with context.
    gdal::config::set_error_handler(|_, _, _| {});
    let cli = Cli::parse_from(reduce::join_bbox(std::env::args_os().collect()));
    let interrupts = match signals::Interrupts::install() {
        Ok(i) => i,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "error: cannot listen for signals: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = ranks::init().and_then(|()| run(cli, interrupts.token()));
    ranks::finish();
    if let Some(code) = interrupts.exit_code() {
        // Interrupted: the run has stopped and removed its temporary file.
        let _ = writeln!(
            std::io::stderr(),
            "{}",
            match &result {
                Err(e) => format!("error: {e}"),
                Ok(()) => "interrupted".to_string(),
            }
        );
        return ExitCode::from(code);
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(rasterlab::Error::Io { path, source })
            if path == Path::new("<stdout>") && source.kind() == std::io::ErrorKind::BrokenPipe =>
        {
            ExitCode::from(EXIT_CLOSED_STDOUT)
        }
        Err(e) => {
            // stderr may be closed too: nothing more to do about it than exit non-zero
            let _ = writeln!(std::io::stderr(), "error: {e}");
            ExitCode::FAILURE
        }
    }
}
