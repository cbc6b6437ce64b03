//! One error type for the whole crate: every variant says what went wrong and where.

use std::path::PathBuf;

/// Result alias used across rasterlab.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in rasterlab.
///
/// Variants carry the path, band, chunk or field involved so that the message alone
/// tells a notebook user what to fix.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The input path does not exist.
    #[error("file not found: {}", .0.display())]
    NotFound(PathBuf),

    /// GDAL could not open the file as a raster.
    #[error("{} is not a raster GDAL can read: {reason}", path.display())]
    NotARaster {
        /// The file that was opened.
        path: PathBuf,
        /// What GDAL said.
        reason: String,
    },

    /// A band name or index that the raster does not have.
    #[error("unknown band {name:?}; available bands: {}", available.join(", "))]
    UnknownBand {
        /// The name asked for.
        name: String,
        /// The names the raster has.
        available: Vec<String>,
    },

    /// Files of a stack do not share one grid.
    #[error("stack mismatch: {} has {field} {found}, expected {expected} (from {}){}", path.display(), first.display(), align_hint(field))]
    StackMismatch {
        /// The file that differs.
        path: PathBuf,
        /// The first file of the stack, which sets the grid.
        first: PathBuf,
        /// The field that differs (size, geotransform, crs, bands).
        field: &'static str,
        /// The value of the first file.
        expected: String,
        /// The value of `path`.
        found: String,
    },

    /// A chunk size, window, thread count or other argument that cannot work.
    #[error("invalid {what}: {reason}")]
    Invalid {
        /// The argument.
        what: &'static str,
        /// Why it cannot work.
        reason: String,
    },

    /// An output location that cannot be written.
    #[error("cannot write {}: {reason}", path.display())]
    Output {
        /// The requested output path.
        path: PathBuf,
        /// Why.
        reason: String,
    },

    /// A GDAL call failed.
    #[error("GDAL error while {context}: {}", gdal_message(source))]
    Gdal {
        /// What rasterlab was doing.
        context: String,
        /// The error from the gdal crate.
        #[source]
        source: gdal::errors::GdalError,
    },

    /// Reading, computing or writing one chunk failed.
    #[error("chunk {chunk} ({window}) failed: {source}")]
    Chunk {
        /// Index of the chunk in the grid (row-major).
        chunk: usize,
        /// The chunk's window.
        window: crate::core::window::Window,
        /// What went wrong.
        #[source]
        source: Box<Error>,
    },

    /// A user function (or rasterlab itself) panicked while working on one chunk or
    /// item. The pool and the notebook kernel survive; nothing is left under the output
    /// name.
    #[error("panic in {task}: {message}")]
    Panic {
        /// The chunk (`chunk 3 (x 0..256, y 256..512)`) or item (`item 17`).
        task: String,
        /// The panic message.
        message: String,
    },

    /// A user function returned an error.
    #[error("user function failed: {message}")]
    User {
        /// The error's text.
        message: String,
    },

    /// There is nothing to cluster: every pixel is nodata, or the matrix has no row.
    #[error("no valid samples: {reason}")]
    NoValidSamples {
        /// Where the samples were looked for and why none qualified.
        reason: String,
    },

    /// More clusters (or components) were asked for than there are samples.
    #[error("{what} = {requested} needs at least {requested} samples, but there are {available}")]
    TooFewSamples {
        /// The parameter, e.g. `k` or `n_components`.
        what: &'static str,
        /// Its value.
        requested: usize,
        /// Number of (valid) samples.
        available: usize,
    },

    /// A feature value is NaN or infinite (nodata must be masked out before clustering).
    #[error(
        "sample {sample}, feature {feature} is {value}: features must be finite (mask nodata first)"
    )]
    NonFinite {
        /// Row of the offending value.
        sample: usize,
        /// Column of the offending value.
        feature: usize,
        /// The value itself (NaN or +-inf).
        value: f64,
    },

    /// An output would overwrite one of the run's inputs.
    #[error("refusing to write {}: it is the input {} (choose another output name)", output.display(), input.display())]
    OutputIsInput {
        /// The requested output path.
        output: PathBuf,
        /// The input it resolves to.
        input: PathBuf,
    },

    /// Writing an output failed (disk full, quota, permission, I/O error). Nothing was
    /// written under the output name: an existing file there is unchanged, and the
    /// temporary file was removed.
    #[error("could not write {}: {cause}; nothing was written under that name", path.display())]
    Write {
        /// The requested output path.
        path: PathBuf,
        /// What the operating system or GDAL said.
        cause: String,
    },

    /// The run was cancelled (a signal, a cancel token) before it finished; nothing was
    /// written under the output name.
    #[error("cancelled: {reason}")]
    Cancelled {
        /// Why: which signal, or who cancelled.
        reason: String,
    },

    /// A computation needs more memory than its budget allows.
    #[error("{what} needs {} but the memory budget is {}; {hint}", crate::core::fmt::human_bytes(*needed), crate::core::fmt::human_bytes(*budget))]
    MemoryBudget {
        /// What needs the memory.
        what: String,
        /// Bytes needed.
        needed: u64,
        /// The budget in bytes.
        budget: u64,
        /// What to do instead.
        hint: String,
    },

    /// An invariant of rasterlab itself does not hold (a bug: please report it).
    #[error("internal error: {0}")]
    Internal(String),

    /// The operating system refused something that is not a file: a socket, a thread,
    /// randomness, process information. Says what rasterlab was doing and keeps the cause.
    #[error("{what}: {source}")]
    System {
        /// What rasterlab was doing, e.g. "dashboard: listening on 127.0.0.1".
        what: &'static str,
        /// The operating system's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    /// A filesystem operation failed.
    #[error("I/O error on {}: {source}", path.display())]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// A NetCDF time axis whose calendar rasterlab cannot turn into dates without
    /// guessing: an unknown calendar name, an origin that is not a date of the calendar,
    /// or a date the calendar's rule refuses (see [`crate::raster::time::Calendar`]).
    #[error("cannot date {} (calendar {calendar:?}): {reason}", time_axis_of(path))]
    Calendar {
        /// The file; empty when the dates were not decoded from a file.
        path: PathBuf,
        /// The calendar, as the file names it.
        calendar: String,
        /// Why.
        reason: String,
    },

    /// A remote raster (an `http(s)://` URL, `/vsicurl/`, `/vsis3/`, ...) could not be
    /// read: the server answered with an HTTP error, or could not be reached.
    #[error("cannot read remote raster {url}: {}", remote_detail(*status, reason))]
    Remote {
        /// The URL or GDAL name, as given.
        url: String,
        /// The HTTP status of the failing request; `None` when no answer came (the
        /// connection failed, a timeout).
        status: Option<u16>,
        /// What GDAL said, and a hint when there is one.
        reason: String,
    },

    /// A plan ([`LazyArray::from_json`](crate::array::LazyArray::from_json)) in a format
    /// version this rasterlab does not read, such as one written by a newer rasterlab.
    #[error("cannot read a plan of format version {found}: this rasterlab reads version {supported}{}", newer_note(*found, *supported))]
    PlanVersion {
        /// The plan's `version`.
        found: u32,
        /// The version this rasterlab reads and writes.
        supported: u32,
    },

    /// A plan ([`LazyArray::from_json`](crate::array::LazyArray::from_json)) that is not
    /// JSON, or not a computation rasterlab can run (a missing or unknown field, a band
    /// that the raster does not have, ...).
    #[error("invalid plan at line {line}, column {column}: {reason}")]
    InvalidPlan {
        /// 1-based line of the JSON text where reading stopped.
        line: usize,
        /// Column in that line, as serde_json counts it (1-based; 0 right after a
        /// line break).
        column: usize,
        /// What is wrong, in serde's words.
        reason: String,
    },

    /// A batch scheduler's tool (`sbatch`, `scontrol`, `sacct`, ...) failed or answered
    /// something unexpected.
    #[error("{command} failed: {reason}")]
    Scheduler {
        /// The tool.
        command: String,
        /// Its message, or what was wrong with its answer.
        reason: String,
    },

    /// A plan asking for work done by a closure (`map_blocks`, `map_collect`): closures
    /// are compiled code, which no plan file can carry.
    #[error(
        "a plan cannot hold {task}: its function is compiled code, not data; build the same array in a program of your own and call {task} there, started by mpirun/srun (README: Beyond one machine)"
    )]
    ClosureInPlan {
        /// The operation asked for (`map_blocks`).
        task: String,
    },

    /// A rank of a distributed run (MPI, feature `mpi`) failed; `message` is its error,
    /// which names the chunk when a chunk failed.
    #[error("rank {rank} failed: {message}")]
    Rank {
        /// The failed rank (0-based, as `mpirun` numbers them).
        rank: usize,
        /// Its error.
        message: String,
    },
}

impl Error {
    pub(crate) fn gdal(
        context: impl Into<String>,
    ) -> impl FnOnce(gdal::errors::GdalError) -> Error {
        let context = context.into();
        move |source| Error::Gdal { context, source }
    }

    /// An [`Error::Internal`]: an invariant of rasterlab that does not hold.
    pub(crate) fn internal(what: impl Into<String>) -> Error {
        Error::Internal(what.into())
    }

    /// An [`Error::System`]: the operating system refused `what` (not a file: those are
    /// [`Error::Io`]).
    // only the dashboard and the profiler ask the OS for sockets and threads
    #[cfg_attr(not(any(feature = "dashboard", feature = "profile")), allow(dead_code))]
    pub(crate) fn system(
        what: &'static str,
    ) -> impl FnOnce(Box<dyn std::error::Error + Send + Sync>) -> Error {
        move |source| Error::System { what, source }
    }

    /// An [`Error::Invalid`] for argument `what`.
    ///
    /// ```
    /// let e = rasterlab::Error::invalid("chunk size", "must be positive");
    /// assert_eq!(e.to_string(), "invalid chunk size: must be positive");
    /// ```
    pub fn invalid(what: &'static str, reason: impl Into<String>) -> Error {
        Error::Invalid {
            what,
            reason: reason.into(),
        }
    }
}

/// Says so when a plan comes from a newer rasterlab.
fn newer_note(found: u32, supported: u32) -> &'static str {
    if found > supported {
        " (the plan was written by a newer rasterlab: upgrade to read it)"
    } else {
        ""
    }
}

/// "the time axis of <file>", or "a time axis" when no file is known.
fn time_axis_of(path: &std::path::Path) -> String {
    if path.as_os_str().is_empty() {
        "a time axis".to_string()
    } else {
        format!("the time axis of {}", path.display())
    }
}

/// GDAL's own message without the gdal crate's "CPL error class: '3', error number: '1'"
/// wrapping; other errors as the crate words them.
/// For a stack whose members differ in grid: how to align them instead.
fn align_hint(field: &str) -> &'static str {
    match field {
        "size" | "geotransform" | "crs" => {
            "; to warp members onto one grid, open the stack aligned (Raster::open_stack_aligned with an Align, or --align-to FILE / --crs / --res / --bounds on the command line)"
        }
        _ => "",
    }
}

pub(crate) fn gdal_message(e: &gdal::errors::GdalError) -> String {
    match e {
        gdal::errors::GdalError::CplError { msg, .. }
        | gdal::errors::GdalError::NullPointer { msg, .. }
            if !msg.trim().is_empty() =>
        {
            msg.trim().to_string()
        }
        other => other.to_string(),
    }
}

/// "HTTP 404 Not Found: <reason>", or the reason alone without a status.
fn remote_detail(status: Option<u16>, reason: &str) -> String {
    let Some(status) = status else {
        return reason.to_string();
    };
    let phrase = match status {
        400 => " Bad Request",
        401 => " Unauthorized",
        403 => " Forbidden",
        404 => " Not Found",
        408 => " Request Timeout",
        416 => " Range Not Satisfiable",
        429 => " Too Many Requests",
        500 => " Internal Server Error",
        502 => " Bad Gateway",
        503 => " Service Unavailable",
        504 => " Gateway Timeout",
        _ => "",
    };
    format!("HTTP {status}{phrase}: {reason}")
}
