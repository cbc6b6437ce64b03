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

use std::fmt;

use crate::array::Save;
use crate::runtime::cancel::CancelToken;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::core::fmt::{emit, escape_html, human_bytes};
use crate::error::{Error, Result};
use crate::profile::{Profiler, RunProgress, Task, TaskKind};
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

/// One CPU/memory sample of the dashboard's process.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ResourceSample {
    /// Seconds since the dashboard started.
    pub time: f64,
    /// CPU use in percent of one core (200 = two busy cores).
    pub cpu_percent: f32,
    /// Resident set size in bytes.
    pub rss_bytes: u64,
}

/// What the dashboard shows, as [`Dashboard::status`] and `/status.json` return it.
#[derive(Debug, Clone, PartialEq)]
pub struct DashboardStatus {
    /// Seconds since the dashboard started.
    pub uptime: Duration,
    /// The latest observed run, `None` before the first.
    pub run: Option<RunProgress>,
    /// Recent tasks (the running job's, at most the last 30 s).
    pub tasks: Vec<Task>,
    /// Where the task stream starts and ends on the profiler's time axis.
    pub span: (Duration, Duration),
    /// CPU and memory samples of the last minute, oldest first.
    pub samples: Vec<ResourceSample>,
    /// Cores this process may use (the CPU scale: 100 % per core).
    pub cores: usize,
    /// Memory this process could use when the dashboard started.
    pub usable_memory: u64,
}

impl DashboardStatus {
    /// The status as a JSON object.
    pub fn to_json(&self) -> String {
        let run = match &self.run {
            None => "null".to_string(),
            Some(p) => format!(
                "{{\"label\":{},\"done\":{},\"total\":{},\"threads\":{},\"elapsed_s\":{:.3},\
                 \"finished\":{},\"rate\":{:.3},\"eta_s\":{},\"runs\":{}}}",
                json_string(&p.label),
                p.done,
                p.total,
                p.threads,
                p.elapsed.as_secs_f64(),
                p.finished,
                p.rate(),
                p.eta()
                    .map_or("null".to_string(), |d| format!("{:.3}", d.as_secs_f64())),
                p.runs
            ),
        };
        let tasks: Vec<String> = self
            .tasks
            .iter()
            .map(|t| {
                format!(
                    "{{\"kind\":\"{}\",\"chunk\":{},\"thread\":{},\"start_s\":{:.4},\"end_s\":{:.4}}}",
                    t.kind.name(),
                    t.chunk,
                    t.thread.map_or("null".to_string(), |i| i.to_string()),
                    t.start.as_secs_f64(),
                    t.end.as_secs_f64()
                )
            })
            .collect();
        let last = self.samples.last();
        format!(
            "{{\"uptime_s\":{:.3},\"run\":{run},\"cpu_percent\":{},\"rss_bytes\":{},\
             \"cores\":{},\"usable_memory\":{},\"samples\":[{}],\"tasks\":[{}]}}",
            self.uptime.as_secs_f64(),
            last.map_or("null".to_string(), |s| format!("{:.1}", s.cpu_percent)),
            last.map_or("null".to_string(), |s| s.rss_bytes.to_string()),
            self.cores,
            self.usable_memory,
            self.samples
                .iter()
                .map(|s| format!("[{:.2},{:.1},{}]", s.time, s.cpu_percent, s.rss_bytes))
                .collect::<Vec<_>>()
                .join(","),
            tasks.join(",")
        )
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

impl Shared {
    fn status(&self) -> DashboardStatus {
        let run = self.profiler.progress();
        let now = self.profiler.now().unwrap_or_default();
        let (tasks, span) = match &run {
            None => (Vec::new(), (Duration::ZERO, Duration::ZERO)),
            Some(p) => {
                let tasks = self
                    .profiler
                    .recent_tasks(now.saturating_sub(STREAM_SPAN), STREAM_TASKS);
                // A finished run: its own span (ending at its last task); a running one:
                // up to now.
                let end = if p.finished {
                    tasks.iter().map(|t| t.end).max().unwrap_or(now)
                } else {
                    now
                };
                let start = p.start.max(end.saturating_sub(STREAM_SPAN));
                let tasks = tasks.into_iter().filter(|t| t.end >= start).collect();
                (tasks, (start, end))
            }
        };
        DashboardStatus {
            uptime: self.started.elapsed(),
            run,
            tasks,
            span,
            samples: self
                .samples
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
            cores: self.cores,
            usable_memory: self.usable_memory,
        }
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
            .map_err(|e| Error::invalid("dashboard", format!("cannot bind 127.0.0.1: {e}")))?;
        let addr = listener
            .local_addr()
            .map_err(|e| Error::invalid("dashboard", e.to_string()))?;
        listener
            .set_nonblocking(true)
            .map_err(|e| Error::invalid("dashboard", e.to_string()))?;
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
                .spawn(move || serve(listener, shared, stop))
                .map_err(|e| Error::invalid("dashboard", format!("no thread: {e}")))?
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

    /// Renders in a notebook cell as a link and an iframe (evcxr).
    pub fn evcxr_display(&self) {
        emit("text/html", &self.to_html());
    }
}

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

/// 128 bits from the OS, as 32 hex digits.
fn random_token() -> Result<String> {
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(|e| Error::invalid("dashboard token", format!("/dev/urandom: {e}")))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// The server loop: accepts connections (each served on its own short-lived thread) and
/// samples CPU and memory, until `stop`.
fn serve(listener: TcpListener, shared: Arc<Shared>, stop: Arc<AtomicBool>) {
    use sysinfo::{ProcessRefreshKind, ProcessesToUpdate, System};
    let pid = sysinfo::get_current_pid().ok();
    let mut sys = System::new().ok();
    let kind = ProcessRefreshKind::nothing().with_cpu().with_memory();
    let mut last: Option<(Instant, u64)> = None;
    let mut next_sample = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((stream, peer)) => {
                if !peer.ip().is_loopback()
                    || shared.connections.load(Ordering::Relaxed) >= MAX_CONNECTIONS
                {
                    continue; // dropped: closes the connection
                }
                shared.connections.fetch_add(1, Ordering::Relaxed);
                let conn = Arc::clone(&shared);
                let spawned = std::thread::Builder::new()
                    .name("rasterlab-dashboard-conn".into())
                    .spawn(move || {
                        let _ = handle(stream, &conn);
                        conn.connections.fetch_sub(1, Ordering::Relaxed);
                    });
                if spawned.is_err() {
                    // No thread: the connection is dropped (closed) with the closure.
                    shared.connections.fetch_sub(1, Ordering::Relaxed);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(25));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(25)),
        }
        if Instant::now() >= next_sample {
            next_sample = Instant::now() + SAMPLE_EVERY;
            if let (Some(pid), Some(sys)) = (pid, sys.as_mut()) {
                let pids = [pid];
                sys.refresh_processes_specifics(ProcessesToUpdate::Some(&pids), false, kind);
                if let Some(p) = sys.process(pid) {
                    let now = (Instant::now(), p.accumulated_cpu_time());
                    if let Some(prev) = last {
                        let wall_ms = now.0.duration_since(prev.0).as_secs_f64() * 1e3;
                        let cpu_ms = now.1.saturating_sub(prev.1) as f64;
                        let mut samples = shared.samples.lock().unwrap_or_else(|e| e.into_inner());
                        let previous = samples.last().map(|s| s.cpu_percent);
                        samples.push(ResourceSample {
                            time: shared.started.elapsed().as_secs_f64(),
                            cpu_percent: crate::profile::cpu_percent(cpu_ms, wall_ms, previous),
                            rss_bytes: p.memory(),
                        });
                        if samples.len() > SAMPLES_KEPT {
                            let extra = samples.len() - SAMPLES_KEPT;
                            samples.drain(..extra);
                        }
                    }
                    last = Some(now);
                }
            }
        }
    }
}

/// A parsed request: method, path and the token it carries (query or header).
struct Request {
    method: String,
    path: String,
    token: Option<String>,
    /// The token of the `Authorization` header alone (state changes accept only this).
    header_token: Option<String>,
}

fn read_request(stream: &TcpStream) -> std::io::Result<Request> {
    let mut reader = BufReader::new(stream.take(16 * 1024));
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let target = parts.next().unwrap_or("").to_string();
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p.to_string(), q.to_string()),
        None => (target, String::new()),
    };
    let query_token = query
        .split('&')
        .find_map(|kv| kv.strip_prefix("token="))
        .map(str::to_string);
    let mut header_token = None;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 || header.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':')
            && name.trim().eq_ignore_ascii_case("authorization")
        {
            let value = value.trim();
            if let Some(t) = value
                .strip_prefix("token ")
                .or_else(|| value.strip_prefix("Bearer "))
            {
                header_token = Some(t.trim().to_string());
            }
        }
    }
    Ok(Request {
        method,
        path,
        token: header_token.clone().or(query_token),
        header_token,
    })
}

/// Compares without an early exit, so timing does not leak how much of a guess matched.
fn same_token(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

fn handle(mut stream: TcpStream, shared: &Shared) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    // Loopback clients send their request at once; a short wait frees the slot of an idle
    // or stuck client soon, so it cannot lock others (the Stop button) out for long.
    stream.set_read_timeout(Some(Duration::from_secs(1)))?;
    stream.set_write_timeout(Some(Duration::from_secs(2)))?;
    let req = read_request(&stream)?;
    let authorized = req
        .token
        .as_deref()
        .is_some_and(|t| same_token(t, &shared.token));
    let is_stop = req.path.trim_end_matches('/') == "/stop";
    let (status, ctype, body) = if is_stop {
        if req.method != "POST" {
            ("405 Method Not Allowed", "text/plain", "POST only\n".into())
        } else if !req
            .header_token
            .as_deref()
            .is_some_and(|t| same_token(t, &shared.token))
        {
            (
                "403 Forbidden",
                "text/plain",
                "403 Forbidden: Stop needs the token in the Authorization header\n".into(),
            )
        } else {
            shared.press_stop();
            ("200 OK", "text/plain", "stopped\n".into())
        }
    } else if req.method != "GET" && req.method != "HEAD" {
        ("405 Method Not Allowed", "text/plain", "read-only\n".into())
    } else if !authorized {
        (
            "403 Forbidden",
            "text/plain",
            "403 Forbidden: this dashboard needs its token (?token=...)\n".into(),
        )
    } else {
        match req.path.trim_end_matches('/') {
            "" | "/index.html" => ("200 OK", "text/html; charset=utf-8", page(&shared.status())),
            "/panel" => (
                "200 OK",
                "text/html; charset=utf-8",
                panel(&shared.status()),
            ),
            "/status.json" => ("200 OK", "application/json", shared.status().to_json()),
            _ => ("404 Not Found", "text/plain", "404 Not Found\n".into()),
        }
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\n\
         Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n\
         Referrer-Policy: no-referrer\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    if req.method != "HEAD" {
        stream.write_all(body.as_bytes())?;
    }
    stream.flush()
}

fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

// ---- the page ---------------------------------------------------------------------------

const STYLE: &str = "body{font-family:-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;\
margin:16px;color:#222;background:#fff}h1{font-size:20px;margin:0 0 4px}\
.sub{color:#666;font-size:13px;margin-bottom:12px}.card{border:1px solid #ddd;border-radius:6px;\
padding:10px 14px;margin-bottom:12px}.card h2{font-size:15px;margin:0 0 8px}\
.bar{background:#eee;border-radius:4px;height:18px;overflow:hidden}\
.fill{background:#1f77b4;height:100%}.fill.done{background:#2ca02c}\
.figs{font-variant-numeric:tabular-nums;font-size:14px;margin-top:6px}\
.row{display:flex;gap:12px}.row .card{flex:1}";

fn page(status: &DashboardStatus) -> String {
    // The panel is re-fetched with the page's own query (which carries the token), by a
    // relative URL so that it also works behind /proxy/{port}/.
    format!(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>rasterlab dashboard</title>\
         <style>{STYLE}</style></head><body><button id=\"stop\" onclick=\"stopRun()\" \
         title=\"Cancel the running save at its next chunk; the notebook keeps its variables\">\
         Stop</button> <span id=\"stopped\"></span><div id=\"panel\">{}</div><script>\
         async function stopRun(){{const t=new URLSearchParams(location.search).get('token');\
         try{{const r=await fetch('stop',{{method:'POST',headers:{{'Authorization':'token '+t}}}});\
         document.getElementById('stopped').textContent=r.ok?'stop sent':'stop refused ('+r.status+')';}}\
         catch(e){{document.getElementById('stopped').textContent='stop failed';}}}}\
         async function tick(){{try{{const r=await fetch('panel'+location.search,{{cache:'no-store'}});\
         if(r.ok){{document.getElementById('panel').innerHTML=await r.text();}}}}catch(e){{}}\
         setTimeout(tick,500);}}setTimeout(tick,500);</script></body></html>",
        panel(status)
    )
}

fn secs(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s < 60.0 {
        format!("{s:.1} s")
    } else {
        format!("{}:{:02} min", (s / 60.0) as u64, (s % 60.0) as u64)
    }
}

fn panel(status: &DashboardStatus) -> String {
    let mut html = format!(
        "<h1>rasterlab dashboard</h1><div class=\"sub\">up {} &middot; {} cores &middot; {} usable \
         memory &middot; refreshes twice a second</div>",
        secs(status.uptime),
        status.cores,
        human_bytes(status.usable_memory)
    );
    // Progress.
    html.push_str("<div class=\"card\"><h2>Progress</h2>");
    match &status.run {
        None => html.push_str(
            "<div class=\"figs\">idle: no computation observed yet (pass <code>dash.profiler()</code> \
             to <code>.observe(..)</code>)</div>",
        ),
        Some(p) => {
            let pct = if p.total == 0 {
                100.0
            } else {
                100.0 * p.done as f64 / p.total as f64
            };
            let tail = if p.finished {
                format!("finished in {}", secs(p.elapsed))
            } else {
                match p.eta() {
                    Some(eta) => format!("running for {}, ETA {}", secs(p.elapsed), secs(eta)),
                    None => format!("running for {}", secs(p.elapsed)),
                }
            };
            html.push_str(&format!(
                "<div class=\"figs\"><b>{}</b> &middot; run {} &middot; {} thread(s)</div>\
                 <div class=\"bar\"><div class=\"fill{}\" style=\"width:{pct:.1}%\"></div></div>\
                 <div class=\"figs\">{} / {} chunks ({pct:.0}%) &middot; {:.1} chunks/s &middot; {tail}</div>",
                escape_html(&p.label),
                p.runs,
                p.threads,
                if p.finished { " done" } else { "" },
                p.done,
                p.total,
                p.rate()
            ));
        }
    }
    html.push_str("</div>");
    // Task stream.
    html.push_str("<div class=\"card\"><h2>Task stream</h2>");
    html.push_str(&task_stream_svg(&status.tasks, status.span));
    html.push_str("</div>");
    // CPU and memory.
    let cpu_max = 100.0 * status.cores.max(1) as f64;
    let cpu: Vec<(f64, f64)> = status
        .samples
        .iter()
        .map(|s| (s.time, f64::from(s.cpu_percent)))
        .collect();
    let rss: Vec<(f64, f64)> = status
        .samples
        .iter()
        .map(|s| (s.time, s.rss_bytes as f64))
        .collect();
    // Scaled to the peak of the last minute (at least 64 MiB), so that changes show.
    let rss_max = status
        .samples
        .iter()
        .map(|s| s.rss_bytes)
        .max()
        .unwrap_or(0)
        .max(64 << 20) as f64
        * 1.25;
    let last = status.samples.last();
    html.push_str(&format!(
        "<div class=\"row\"><div class=\"card\"><h2>CPU: {}</h2>{}</div>\
         <div class=\"card\"><h2>Memory (RSS): {} of {} usable</h2>{}</div></div>",
        last.map_or("-".to_string(), |s| format!(
            "{:.0} % of {:.0} %",
            s.cpu_percent, cpu_max
        )),
        sparkline(
            &cpu,
            cpu_max.max(cpu.iter().map(|p| p.1).fold(0.0, f64::max)),
            "#ff7f0e",
            |v| format!("{v:.0} %")
        ),
        last.map_or("-".to_string(), |s| human_bytes(s.rss_bytes)),
        human_bytes(status.usable_memory),
        sparkline(&rss, rss_max, "#9467bd", |v| human_bytes(v as u64)),
    ));
    html
}

fn kind_color(kind: TaskKind) -> &'static str {
    match kind {
        TaskKind::Read => "#1f77b4",
        TaskKind::Compute => "#ff7f0e",
        TaskKind::Write => "#2ca02c",
    }
}

/// One row per worker thread (and the writer), one rectangle per task.
fn task_stream_svg(tasks: &[Task], span: (Duration, Duration)) -> String {
    let mut rows: Vec<Option<usize>> = tasks.iter().map(|t| t.thread).collect();
    rows.sort_by_key(|t| t.unwrap_or(usize::MAX));
    rows.dedup();
    let (w, left, right, row_h) = (1180.0, 90.0, 40.0, 22.0);
    let plot_w = w - left - right;
    let h = 40.0 + row_h * rows.len().max(1) as f64 + 24.0;
    let t0 = span.0.as_secs_f64();
    let len = (span.1.as_secs_f64() - t0).max(1e-3);
    let x = |t: f64| left + plot_w * ((t - t0) / len).clamp(0.0, 1.0);
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {w} {h}\" width=\"100%\" \
         style=\"max-width:{w}px\" font-family=\"sans-serif\" font-size=\"12\">"
    );
    // Legend.
    let mut lx = left;
    for kind in TaskKind::ALL {
        svg.push_str(&format!(
            "<rect x=\"{lx}\" y=\"4\" width=\"12\" height=\"12\" fill=\"{}\"/>\
             <text x=\"{}\" y=\"14\">{}</text>",
            kind_color(kind),
            lx + 16.0,
            kind.name()
        ));
        lx += 90.0;
    }
    if tasks.is_empty() {
        svg.push_str(&format!(
            "<text x=\"{left}\" y=\"48\" fill=\"#888\">no tasks yet</text></svg>"
        ));
        return svg;
    }
    for (r, thread) in rows.iter().enumerate() {
        let y = 28.0 + row_h * r as f64;
        let name = thread.map_or("writer".to_string(), |i| format!("worker {i}"));
        svg.push_str(&format!(
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{name}</text>\
             <rect x=\"{left}\" y=\"{y}\" width=\"{plot_w}\" height=\"{}\" fill=\"#f6f6f6\"/>",
            left - 8.0,
            y + row_h * 0.65,
            row_h - 4.0
        ));
    }
    for t in tasks {
        let Some(r) = rows.iter().position(|&x| x == t.thread) else {
            continue;
        };
        let y = 28.0 + row_h * r as f64;
        let (x0, x1) = (x(t.start.as_secs_f64()), x(t.end.as_secs_f64()));
        svg.push_str(&format!(
            "<rect x=\"{x0:.1}\" y=\"{y}\" width=\"{:.1}\" height=\"{}\" fill=\"{}\">\
             <title>{} chunk {} ({:.1} ms)</title></rect>",
            (x1 - x0).max(0.8),
            row_h - 4.0,
            kind_color(t.kind),
            t.kind.name(),
            t.chunk,
            (t.end.saturating_sub(t.start)).as_secs_f64() * 1e3
        ));
    }
    // Time axis: seconds since the profiler's first run.
    let axis_y = 28.0 + row_h * rows.len() as f64 + 4.0;
    svg.push_str(&format!(
        "<line x1=\"{left}\" y1=\"{axis_y}\" x2=\"{}\" y2=\"{axis_y}\" stroke=\"#999\"/>",
        left + plot_w
    ));
    for k in 0..=5 {
        let t = t0 + len * k as f64 / 5.0;
        svg.push_str(&format!(
            "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\" fill=\"#555\">{t:.2} s</text>",
            x(t),
            axis_y + 16.0
        ));
    }
    svg.push_str("</svg>");
    svg
}

/// A small line chart of `(time, value)` points over the last minute, scaled to `max`.
fn sparkline(points: &[(f64, f64)], max: f64, color: &str, fmt: impl Fn(f64) -> String) -> String {
    let (w, h, left) = (560.0, 120.0, 70.0);
    let plot_w = w - left - 8.0;
    let plot_h = h - 20.0;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {w} {h}\" width=\"100%\" \
         style=\"max-width:{w}px\" font-family=\"sans-serif\" font-size=\"11\">\
         <rect x=\"{left}\" y=\"6\" width=\"{plot_w}\" height=\"{plot_h}\" fill=\"#f6f6f6\"/>\
         <text x=\"{}\" y=\"16\" text-anchor=\"end\" fill=\"#555\">{}</text>\
         <text x=\"{}\" y=\"{}\" text-anchor=\"end\" fill=\"#555\">0</text>\
         <text x=\"{left}\" y=\"{}\" fill=\"#555\">-60 s</text>\
         <text x=\"{}\" y=\"{}\" text-anchor=\"end\" fill=\"#555\">now</text>",
        left - 6.0,
        fmt(max),
        left - 6.0,
        6.0 + plot_h,
        h - 2.0,
        left + plot_w,
        h - 2.0
    );
    if let Some(&(t_end, _)) = points.last() {
        let t_start = t_end - 60.0;
        let path: Vec<String> = points
            .iter()
            .filter(|p| p.0 >= t_start)
            .map(|&(t, v)| {
                format!(
                    "{:.1},{:.1}",
                    left + plot_w * (t - t_start) / 60.0,
                    6.0 + plot_h * (1.0 - (v / max.max(1e-9)).clamp(0.0, 1.0))
                )
            })
            .collect();
        svg.push_str(&format!(
            "<polyline points=\"{}\" fill=\"none\" stroke=\"{color}\" stroke-width=\"2\"/>",
            path.join(" ")
        ));
    }
    svg.push_str("</svg>");
    svg
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
        assert!(same_token("abcdef12", "abcdef12"));
        assert!(!same_token("abcdef12", "abcdef1"));
        assert!(!same_token("abcdef12", "abcdef13"));
        let t = random_token().expect("urandom");
        assert_eq!(t.len(), 32);
        assert_ne!(t, random_token().expect("urandom"));
    }

    #[test]
    fn json_is_valid_and_escaped() {
        assert_eq!(json_string("a\"b\\c\n\u{1}"), "\"a\\\"b\\\\c\\n\\u0001\"");
    }
}
