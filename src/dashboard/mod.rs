//! A live dashboard served from the process that runs the computations (the notebook
//! kernel), because evcxr cannot update a cell's output in place.
//!
//! [`Dashboard::start`] binds `127.0.0.1` on a free port, makes a random token and serves,
//! on a background thread that owns everything it needs (statics do not survive notebook
//! cells):
//!
//! * `/` - a small page that refreshes itself twice a second: progress of the running job
//!   (label, done/total, rate, ETA), the task stream per worker thread, CPU and memory;
//! * `/status.json` - the same figures as JSON;
//! * `/panel` - the page's body, fetched by the page itself.
//!
//! Every request must carry the token (`?token=...` or an `Authorization: token ...`
//! header), otherwise it gets `403 Forbidden`. The server answers GET and HEAD, and one
//! state-changing request: `POST /stop`, the page's **Stop** button, which cancels the
//! running save ([`Save::dashboard`]) at its next chunk: the save returns
//! [`Error::Cancelled`], removes its temporary file, and every variable of the notebook
//! stays (unlike Kernel > Interrupt, which kills the kernel's process). `POST /stop` takes
//! the token only from the `Authorization` header, which a page of another site cannot set
//! without the browser asking first (a CORS preflight this server never allows), so no
//! other site can press Stop. The server stops when the [`Dashboard`] is dropped.
//!
//! Computations report to the dashboard through its [`Profiler`]: pass
//! [`Dashboard::profiler`] to `.observe(..)` of a lazy array or a save, in the same cell
//! or any later one. In a notebook the dashboard value renders as a link and an iframe.
//!
//! ```
//! use rasterlab::prelude::*;
//!
//! let dash = Dashboard::start()?;
//! let r = Raster::open("data/rgbn_20160101.tif")?.with_band_names(["red", "green", "blue", "nir"])?;
//! r.band("nir")?.chunks(128)?.progress(ProgressMode::Silent).observe(dash.profiler()).compute()?;
//! let status = dash.status();
//! assert_eq!(status.run.map(|p| (p.done, p.total)), Some((20, 20)));
//! assert!(dash.url().starts_with("http://127.0.0.1:"));
//! # Ok::<(), rasterlab::Error>(())
//! ```
//!
//! Behind JupyterHub (jupyter-server-proxy) the browser cannot reach `127.0.0.1`; set the
//! link like dask's `DASK_DISTRIBUTED__DASHBOARD__LINK`, e.g.
//! `RASTERLAB_DASHBOARD_LINK='{JUPYTERHUB_SERVICE_PREFIX}proxy/{port}/'`, or pass
//! [`DashboardOptions::link_template`].

mod http;
mod page;
mod status;

pub use status::{DashboardStatus, ResourceSample};

use std::fmt;
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::array::Save;
use crate::core::fmt::escape_html;
use crate::error::{Error, Result};
use crate::profile::Profiler;
use crate::runtime::cancel::CancelToken;
use crate::runtime::resources::Resources;

/// Environment variable for the link template (see [`DashboardOptions::link_template`]).
pub const ENV_LINK: &str = "RASTERLAB_DASHBOARD_LINK";
/// Environment variable for a fixed port (default: any free port).
pub const ENV_PORT: &str = "RASTERLAB_DASHBOARD_PORT";
/// Environment variable for a fixed token (default: 128 random bits).
pub const ENV_TOKEN: &str = "RASTERLAB_DASHBOARD_TOKEN";

/// How often the server samples CPU and memory.
const SAMPLE_EVERY: Duration = Duration::from_millis(500);
/// Resource samples kept (one minute).
const SAMPLES_KEPT: usize = 120;
/// Longest span of the task stream.
const STREAM_SPAN: Duration = Duration::from_secs(30);
/// Most tasks drawn in the task stream or listed in the JSON.
const STREAM_TASKS: usize = 2000;
/// Most connections served at once.
const MAX_CONNECTIONS: usize = 64;

/// Options of [`Dashboard::start_with`].
///
/// ```
/// use rasterlab::dashboard::DashboardOptions;
/// let opts = DashboardOptions::default().link_template("/user/me/proxy/{port}/");
/// assert_eq!(opts.link_for(8787), "/user/me/proxy/8787/");
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
#[must_use = "options do nothing until Dashboard::start_with(..)"]
pub struct DashboardOptions {
    /// Port on 127.0.0.1; `None` (default) takes any free port.
    pub port: Option<u16>,
    /// Access token; `None` (default) makes a random one. Letters, digits, `-`, `_`, `.`
    /// and `~` only, at least 8 characters.
    pub token: Option<String>,
    /// Address the notebook links to, `{port}` standing for the port and `{NAME}` for the
    /// environment variable `NAME` (dask's convention); the token is appended as a query.
    /// `None` (default): `http://127.0.0.1:{port}/`.
    pub link_template: Option<String>,
}

impl DashboardOptions {
    /// Options from the environment: [`ENV_PORT`], [`ENV_TOKEN`] and [`ENV_LINK`], each
    /// unset or empty meaning the default. An unparsable port is an error.
    pub fn from_env() -> Result<DashboardOptions> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let port = match var(ENV_PORT) {
            Some(p) => Some(
                p.trim()
                    .parse::<u16>()
                    .map_err(|e| Error::invalid(ENV_PORT, format!("{p:?}: {e}")))?,
            ),
            None => None,
        };
        Ok(DashboardOptions {
            port,
            token: var(ENV_TOKEN),
            link_template: var(ENV_LINK),
        })
    }

    /// Sets the port.
    pub fn port(mut self, port: u16) -> DashboardOptions {
        self.port = Some(port);
        self
    }

    /// Sets the token.
    pub fn token(mut self, token: &str) -> DashboardOptions {
        self.token = Some(token.to_string());
        self
    }

    /// Sets the link template, e.g. `"/user/{JUPYTERHUB_USER}/proxy/{port}/"`.
    pub fn link_template(mut self, template: &str) -> DashboardOptions {
        self.link_template = Some(template.to_string());
        self
    }

    /// The link for `port` (without the token): the template with `{port}` and
    /// `{ENV_VAR}` filled in. An unknown `{NAME}` stays as written.
    pub fn link_for(&self, port: u16) -> String {
        let template = self
            .link_template
            .as_deref()
            .unwrap_or("http://127.0.0.1:{port}/");
        let mut out = String::new();
        let mut rest = template;
        while let Some(open) = rest.find('{') {
            out.push_str(&rest[..open]);
            let after = &rest[open + 1..];
            match after.find('}') {
                Some(close) => {
                    let name = &after[..close];
                    match name {
                        "port" => out.push_str(&port.to_string()),
                        _ => match std::env::var(name) {
                            Ok(v) if !name.is_empty() => out.push_str(&v),
                            _ => out.push_str(&rest[open..open + close + 2]),
                        },
                    }
                    rest = &after[close + 1..];
                }
                None => {
                    out.push_str(&rest[open..]);
                    rest = "";
                }
            }
        }
        out.push_str(rest);
        out
    }
}

/// Everything the server thread and the connection threads need, owned.
struct Shared {
    profiler: Profiler,
    token: String,
    started: Instant,
    samples: Mutex<Vec<ResourceSample>>,
    cores: usize,
    usable_memory: u64,
    connections: AtomicUsize,
    /// Cancels the saves started with [`Save::dashboard`]; replaced by a fresh token after
    /// each Stop, so later saves run.
    cancel: Mutex<CancelToken>,
}

impl Shared {
    fn cancel_token(&self) -> CancelToken {
        self.cancel
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Cancels the running saves; later ones get a fresh token.
    fn press_stop(&self) {
        let mut slot = self.cancel.lock().unwrap_or_else(|e| e.into_inner());
        slot.cancel("stopped from the dashboard");
        *slot = CancelToken::new();
    }
}

/// A live dashboard served from this process; see the [module docs](self).
///
/// Keep it in a variable: it serves until dropped. It is `'static` and safe to keep
/// between notebook cells.
pub struct Dashboard {
    shared: Arc<Shared>,
    addr: SocketAddr,
    link: String,
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl fmt::Debug for Dashboard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dashboard")
            .field("addr", &self.addr)
            .field("link", &self.link)
            .finish_non_exhaustive()
    }
}

impl Dashboard {
    /// Starts a dashboard with options from the environment ([`DashboardOptions::from_env`]).
    pub fn start() -> Result<Dashboard> {
        Self::start_with(DashboardOptions::from_env()?)
    }

    /// Starts a dashboard with `options`: binds `127.0.0.1` (never another interface) and
    /// serves on a background thread until dropped.
    pub fn start_with(options: DashboardOptions) -> Result<Dashboard> {
        let token = match &options.token {
            Some(t) => {
                let ok = t.len() >= 8
                    && t.chars()
                        .all(|c| c.is_ascii_alphanumeric() || "-_.~".contains(c));
                if !ok {
                    return Err(Error::invalid(
                        "dashboard token",
                        "use at least 8 letters, digits, '-', '_', '.' or '~'",
                    ));
                }
                t.clone()
            }
            None => random_token()?,
        };
        let listener = TcpListener::bind(("127.0.0.1", options.port.unwrap_or(0)))
            .map_err(|e| Error::system("dashboard: listening on 127.0.0.1")(e.into()))?;
        let addr = listener
            .local_addr()
            .map_err(|e| Error::system("dashboard: its own address")(e.into()))?;
        listener
            .set_nonblocking(true)
            .map_err(|e| Error::system("dashboard: a non-blocking socket")(e.into()))?;
        let res = Resources::detect();
        let shared = Arc::new(Shared {
            profiler: Profiler::new(),
            token,
            started: Instant::now(),
            samples: Mutex::new(Vec::new()),
            cores: res.usable_cores,
            usable_memory: res.usable_memory,
            connections: AtomicUsize::new(0),
            cancel: Mutex::new(CancelToken::new()),
        });
        let stop = Arc::new(AtomicBool::new(false));
        let handle = {
            let (shared, stop) = (Arc::clone(&shared), Arc::clone(&stop));
            std::thread::Builder::new()
                .name("rasterlab-dashboard".into())
                .spawn(move || http::serve(listener, shared, stop))
                .map_err(|e| Error::system("dashboard: starting its thread")(e.into()))?
        };
        let base = options.link_for(addr.port());
        let sep = if base.contains('?') { '&' } else { '?' };
        let link = format!("{base}{sep}token={}", shared.token);
        Ok(Dashboard {
            shared,
            addr,
            link,
            stop,
            handle: Some(handle),
        })
    }

    /// The token the dashboard's Stop button cancels (a fresh one after each Stop): pass
    /// it to [`Save::cancel_on`], or use [`Save::dashboard`] for both.
    pub fn cancel_token(&self) -> CancelToken {
        self.shared.cancel_token()
    }

    /// Presses the Stop button: cancels the saves started with [`Save::dashboard`].
    pub fn stop_runs(&self) {
        self.shared.press_stop();
    }

    /// The profiler that feeds the dashboard: pass it to `.observe(..)` of a lazy array or
    /// a save.
    pub fn profiler(&self) -> &Profiler {
        &self.shared.profiler
    }

    /// The address the server listens on (always loopback).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The access token.
    pub fn token(&self) -> &str {
        &self.shared.token
    }

    /// The page's direct address with the token, `http://127.0.0.1:<port>/?token=...`.
    pub fn url(&self) -> String {
        format!("http://{}/?token={}", self.addr, self.shared.token)
    }

    /// The JSON endpoint's direct address with the token.
    pub fn json_url(&self) -> String {
        format!(
            "http://{}/status.json?token={}",
            self.addr, self.shared.token
        )
    }

    /// The address the notebook links to (the link template's, with the token).
    pub fn link(&self) -> &str {
        &self.link
    }

    /// What the page shows now.
    pub fn status(&self) -> DashboardStatus {
        self.shared.status()
    }

    /// True while the server runs.
    pub fn is_running(&self) -> bool {
        self.handle.as_ref().is_some_and(|h| !h.is_finished())
    }

    /// Stops serving and closes the port (idempotent; dropping does the same).
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }

    /// HTML: a link to the dashboard and an iframe showing it.
    pub fn to_html(&self) -> String {
        let link = escape_html(&self.link);
        format!(
            "<div class=\"rasterlab-dashboard\"><p style=\"font-family:sans-serif\">\
             <b>rasterlab dashboard</b> (live): <a href=\"{link}\" target=\"_blank\">{link}</a>\
             <br/><small>pass <code>dash.profiler()</code> to <code>.observe(..)</code> in any \
             later cell; drop <code>dash</code> to stop it</small></p>\
             <iframe src=\"{link}\" width=\"100%\" height=\"520\" \
             style=\"border:1px solid #ccc\"></iframe></div>"
        )
    }
}

crate::core::fmt::html_repr!(Dashboard);

impl fmt::Display for Dashboard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "rasterlab dashboard at {}", self.link)
    }
}

impl Drop for Dashboard {
    fn drop(&mut self) {
        self.stop();
    }
}

/// 128 bits from the OS (`getrandom`), as 32 hex digits.
fn random_token() -> Result<String> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes)
        .map_err(|e| Error::system("dashboard token: randomness from the OS")(e.into()))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

impl Save {
    /// Shows the save on `dash` and lets its **Stop** button cancel it: the same as
    /// `.observe(dash.profiler()).cancel_on(&dash.cancel_token())`.
    ///
    /// ```
    /// use rasterlab::prelude::*;
    /// let dash = Dashboard::start()?;
    /// let scene = Raster::open("data/LC08_L1TP_224078_20200518_20200518_01_RT.TIF")?;
    /// dash.stop_runs(); // Stop pressed before the save starts: only later saves are spared
    /// let out = std::env::temp_dir().join("rasterlab-doc-dashboard-save.tif");
    /// let save = scene.band("band1")?.save(&out).progress(ProgressMode::Silent).dashboard(&dash);
    /// save.run()?; // a fresh token: this save runs
    /// # std::fs::remove_file(out).ok();
    /// # Ok::<(), rasterlab::Error>(())
    /// ```
    pub fn dashboard(self, dash: &Dashboard) -> Save {
        self.observe(dash.profiler())
            .cancel_on(&dash.cancel_token())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_templates_fill_port_and_environment() {
        let opts = DashboardOptions::default();
        assert_eq!(opts.link_for(8787), "http://127.0.0.1:8787/");
        let opts = opts.link_template("{HOME}/proxy/{port}/{NOT_A_VAR_XYZ}/{");
        let home = std::env::var("HOME").unwrap_or_default();
        assert_eq!(
            opts.link_for(1),
            format!("{home}/proxy/1/{{NOT_A_VAR_XYZ}}/{{")
        );
    }

    #[test]
    fn tokens_compare_whole() {
        assert!(http::same_token("abcdef12", "abcdef12"));
        assert!(!http::same_token("abcdef12", "abcdef1"));
        assert!(!http::same_token("abcdef12", "abcdef13"));
        let t = random_token().expect("getrandom");
        assert_eq!(t.len(), 32);
        assert_ne!(t, random_token().expect("getrandom"));
    }
}
