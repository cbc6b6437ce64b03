//! Remote rasters: a Cloud-Optimized GeoTIFF served over HTTP on loopback by a tiny
//! server started here (Range requests, counted), read through `Raster::open(URL)`.

mod common;

use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use common::cli::*;
use common::*;
use gdal::Dataset;
use rasterlab::prelude::*;

// ---------------------------------------------------------------------------------------
// The server
// ---------------------------------------------------------------------------------------

/// Connections served at most by one server (one request each): the loop is bounded.
const MAX_CONNECTIONS: usize = 20_000;

/// One request as the server saw it.
#[derive(Debug, Clone)]
struct Request {
    method: String,
    path: String,
    /// The `Range: bytes=a-b` asked for.
    range: Option<String>,
    status: u16,
    /// Body bytes sent.
    bytes: u64,
}

#[derive(Default)]
struct State {
    stop: AtomicBool,
    bytes: AtomicU64,
    log: Mutex<Vec<Request>>,
    /// `(path, status, gets_only)`: answer `status` to requests for `path` (to GETs only
    /// when `gets_only`, so that GDAL's HEAD still finds the file).
    failures: Mutex<Vec<(String, u16, bool)>>,
}

/// An HTTP/1.1 file server on 127.0.0.1 (port chosen by the OS) for the files of one
/// folder, named by the last part of the request's path. HEAD and GET, `Range:
/// bytes=a-b` answered with 206 and `Content-Range`; one request per connection
/// (`Connection: close`), served one at a time. Stopped when dropped.
struct Server {
    addr: SocketAddr,
    state: Arc<State>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    fn start(root: &Path) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let addr = listener.local_addr().expect("address");
        let state = Arc::new(State::default());
        let root = root.to_path_buf();
        let shared = Arc::clone(&state);
        let thread = std::thread::spawn(move || {
            for _ in 0..MAX_CONNECTIONS {
                let Ok((stream, _)) = listener.accept() else {
                    continue;
                };
                if shared.stop.load(Ordering::SeqCst) {
                    break;
                }
                // A client that hangs up mid-answer is its own business.
                let _ = serve(&root, &shared, stream);
            }
        });
        Server {
            addr,
            state,
            thread: Some(thread),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}/{}", self.addr, path.trim_start_matches('/'))
    }

    /// Answers `status` to every request for `path` (`/name.tif`).
    fn fail(&self, path: &str, status: u16) {
        let mut f = self.state.failures.lock().unwrap();
        f.push((path.to_string(), status, false));
    }

    /// Answers `status` to GETs of `path`; HEAD still succeeds.
    fn fail_gets(&self, path: &str, status: u16) {
        let mut f = self.state.failures.lock().unwrap();
        f.push((path.to_string(), status, true));
    }

    /// Body bytes sent so far.
    fn bytes(&self) -> u64 {
        self.state.bytes.load(Ordering::SeqCst)
    }

    fn log(&self) -> Vec<Request> {
        self.state.log.lock().unwrap().clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::SeqCst);
        // Wakes the blocking accept, which then sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(root: &Path, state: &State, stream: TcpStream) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.set_write_timeout(Some(Duration::from_secs(5)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let (Some(method), Some(target)) = (parts.next(), parts.next()) else {
        return Ok(()); // the wake-up connection, or garbage
    };
    let (method, target) = (method.to_string(), target.to_string());
    let mut range = None;
    // Headers, bounded.
    for _ in 0..100 {
        line.clear();
        if reader.read_line(&mut line)? == 0 || line.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':')
            && k.trim().eq_ignore_ascii_case("range")
        {
            range = Some(v.trim().to_string());
        }
    }
    let path = target.split('?').next().unwrap_or("").to_string();
    let mut out = stream;
    let mut answer = |status: u16, headers: &str, body: &[u8], len: u64| {
        let reason = match status {
            200 => "OK",
            206 => "Partial Content",
            403 => "Forbidden",
            404 => "Not Found",
            416 => "Range Not Satisfiable",
            500 => "Internal Server Error",
            503 => "Service Unavailable",
            _ => "Error",
        };
        let head = format!(
            "HTTP/1.1 {status} {reason}\r\nContent-Length: {len}\r\nAccept-Ranges: bytes\r\n\
             Connection: close\r\n{headers}\r\n"
        );
        out.write_all(head.as_bytes())?;
        let sent = if method == "HEAD" {
            0
        } else {
            out.write_all(body)?;
            body.len() as u64
        };
        out.flush()?;
        state.bytes.fetch_add(sent, Ordering::SeqCst);
        state.log.lock().unwrap().push(Request {
            method: method.clone(),
            path: path.clone(),
            range: range.clone(),
            status,
            bytes: sent,
        });
        Ok::<(), std::io::Error>(())
    };
    let failure = state
        .failures
        .lock()
        .unwrap()
        .iter()
        .find(|(p, _, gets_only)| *p == path && (!gets_only || method == "GET"))
        .map(|f| f.1);
    if let Some(status) = failure {
        let body = b"failing on purpose";
        return answer(status, "", body, body.len() as u64);
    }
    let name = path.rsplit('/').next().unwrap_or("");
    let file = (!name.is_empty() && !name.contains(".."))
        .then(|| root.join(name))
        .filter(|p| p.is_file());
    let Some(file) = file else {
        return answer(404, "", b"", 0);
    };
    let mut f = std::fs::File::open(&file)?;
    let size = f.metadata()?.len();
    if method == "HEAD" {
        return answer(200, "", b"", size);
    }
    // A single range `bytes=a-b` or `bytes=a-`.
    let asked = range.as_deref().and_then(|r| {
        let (a, b) = r.strip_prefix("bytes=")?.split_once('-')?;
        let a: u64 = a.trim().parse().ok()?;
        let b: u64 = match b.trim() {
            "" => size.saturating_sub(1),
            b => b.parse().ok()?,
        };
        Some((a, b.min(size.saturating_sub(1))))
    });
    match (range.is_some(), asked) {
        (true, Some((a, b))) if a <= b && a < size => {
            let mut body = vec![0; (b - a + 1) as usize];
            f.seek(SeekFrom::Start(a))?;
            f.read_exact(&mut body)?;
            let headers = format!("Content-Range: bytes {a}-{b}/{size}\r\n");
            answer(206, &headers, &body, body.len() as u64)
        }
        (true, _) => answer(416, &format!("Content-Range: bytes */{size}\r\n"), b"", 0),
        (false, _) => {
            let mut body = Vec::new();
            f.read_to_end(&mut body)?;
            answer(200, "", &body, size)
        }
    }
}

// ---------------------------------------------------------------------------------------
// The COG
// ---------------------------------------------------------------------------------------

const COG: &str = "scene_cog.tif";

/// The folder holding `scene_cog.tif`: the Landsat scene as a COG with 256 x 256 LZW
/// tiles (like `gdal_translate -of COG -co BLOCKSIZE=256 -co COMPRESS=LZW`), made once.
fn cog_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("remote");
        std::fs::create_dir_all(&dir).expect("folder for the COG");
        let path = dir.join(COG);
        if !path.exists() {
            let src = Dataset::open(data(SCENE)).expect("open the scene");
            let driver = gdal::DriverManager::get_driver_by_name("COG").expect("COG driver");
            let options =
                gdal::raster::RasterCreationOptions::from_iter(["BLOCKSIZE=256", "COMPRESS=LZW"]);
            // Written under a name of this process, then renamed: concurrent test runs
            // never see half a file.
            let tmp = dir.join(format!("{COG}.{}.part", std::process::id()));
            src.create_copy(&driver, &tmp, &options)
                .expect("write the COG");
            std::fs::rename(&tmp, &path).expect("rename the COG");
        }
        dir
    })
}

fn cog_path() -> PathBuf {
    cog_dir().join(COG)
}

fn cog_size() -> u64 {
    std::fs::metadata(cog_path()).expect("COG").len()
}

/// Bands `1..=3` of `window` of the local COG straight through the gdal crate, as u16.
fn local_window(x: usize, y: usize, w: usize, h: usize) -> Vec<u16> {
    let ds = Dataset::open(cog_path()).expect("open the local COG");
    (1..=3)
        .flat_map(|b| {
            let band = ds.rasterband(b).expect("band");
            band.read_as::<u16>((x as isize, y as isize), (w, h), (w, h), None)
                .expect("read")
                .data()
                .to_vec()
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------

#[test]
fn window_of_a_remote_cog_matches_the_local_file_and_fetches_only_its_tile() {
    let server = Server::start(cog_dir());
    let url = server.url(COG);
    let raster = Raster::open(&url).expect("open the URL");
    assert_eq!(raster.size(), (2041, 1860));
    assert_eq!(raster.band_count(), 3);
    assert_eq!(raster.block_size(), (256, 256));
    assert_eq!(raster.epsg(), Some(32621));
    // The URL as given, not GDAL's /vsicurl/ name.
    assert_eq!(raster.bands()[0].path, Path::new(&url));
    let opened = server.bytes();

    // One tile: column 2, row 2 of the 256 x 256 grid.
    let window = Window::new(512, 512, 256, 256);
    let got = raster
        .read_raw::<u16>(window, &["band1", "band2", "band3"])
        .expect("read the window");
    assert_eq!(
        got.as_slice().expect("contiguous"),
        local_window(512, 512, 256, 256).as_slice()
    );
    let decoded = raster
        .read(window, &["band2"])
        .expect("read decoded values");
    let local = local_window(512, 512, 256, 256);
    assert!(
        decoded
            .iter()
            .zip(&local[256 * 256..2 * 256 * 256])
            .all(|(&a, &b)| a == f32::from(b))
    );

    let (total, file) = (server.bytes(), cog_size());
    let log = server.log();
    println!(
        "opened with {opened} bytes; a 256 x 256 window: {total} bytes in {} requests of a \
         {file} byte COG ({:.2} %)",
        log.len(),
        100.0 * total as f64 / file as f64
    );
    for r in &log {
        println!(
            "  {} {} {:?} -> {} ({} bytes)",
            r.method, r.path, r.range, r.status, r.bytes
        );
    }
    assert!(
        total * 20 < file,
        "{total} bytes fetched for one tile of a {file} byte file"
    );
    // No directory listing, no side-car probes: every request is for the COG.
    assert!(log.iter().all(|r| r.path == format!("/{COG}")), "{log:#?}");
    assert_eq!(
        log.iter().filter(|r| r.method == "HEAD").count(),
        1,
        "{log:#?}"
    );
    // Every GET asks for a range.
    assert!(
        log.iter()
            .filter(|r| r.method == "GET")
            .all(|r| r.status == 206)
    );

    // A quick-look reads an overview, still without any side-car probe.
    let before = server.bytes();
    let quick = raster
        .read_decimated(&["band1"], 500)
        .expect("read a quick-look");
    assert_eq!(quick.shape(), &[1, 456, 500]);
    let overview = server.bytes() - before;
    println!("a 500 px quick-look: {overview} more bytes");
    assert!(
        overview * 10 < file,
        "{overview} bytes for a quick-look of {file}"
    );
    let log = server.log();
    assert!(log.iter().all(|r| r.path == format!("/{COG}")), "{log:#?}");

    // An unaligned window touches four tiles.
    let before = server.bytes();
    let got = raster
        .read_raw::<u16>(
            Window::new(1100, 1100, 256, 256),
            &["band1", "band2", "band3"],
        )
        .expect("read an unaligned window");
    assert_eq!(
        got.as_slice().expect("contiguous"),
        local_window(1100, 1100, 256, 256).as_slice()
    );
    let four = server.bytes() - before;
    println!(
        "an unaligned 256 x 256 window (4 tiles): {four} more bytes ({:.2} %)",
        100.0 * four as f64 / file as f64
    );
    assert!(four * 10 < file, "{four} bytes for four tiles of {file}");
}

/// NaN-aware bitwise equality of two outputs.
fn same_pixels(a: &[f32], b: &[f32]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan()))
}

fn ndi(raster: Raster) -> LazyArray {
    raster
        .with_band_names(["blue", "green", "red"])
        .and_then(|r| r.norm_diff("green", "red"))
        .expect("ndi")
        .nodata(0.0)
        .scale(1e-4)
}

#[test]
fn ndi_over_a_remote_cog_equals_the_local_one() {
    let server = Server::start(cog_dir());
    let dir = tempfile::tempdir().expect("tempdir");
    let (remote_out, local_out) = (dir.path().join("remote.tif"), dir.path().join("local.tif"));
    let started = Instant::now();
    let report = ndi(Raster::open(server.url(COG)).expect("open the URL"))
        .save(&remote_out)
        .chunks(256)
        .threads(2)
        .progress(ProgressMode::Silent)
        .run()
        .expect("ndi over HTTP");
    let remote_time = started.elapsed();
    assert_eq!(report.grid.len(), 64);
    ndi(Raster::open(cog_path()).expect("open the local COG"))
        .save(&local_out)
        .chunks(256)
        .threads(2)
        .progress(ProgressMode::Silent)
        .run()
        .expect("ndi from the local file");
    let (rw, rh, remote) = read_output(&remote_out);
    let (lw, lh, local) = read_output(&local_out);
    assert_eq!((rw, rh), (lw, lh));
    assert_eq!((rw, rh), (2041, 1860));
    assert!(same_pixels(&remote, &local), "remote and local ndi differ");
    assert!(remote.iter().any(|v| v.is_finite()));

    let (total, file) = (server.bytes(), cog_size());
    let log = server.log();
    println!(
        "whole ndi over HTTP in {remote_time:.2?}: {total} bytes in {} requests, {:.1} % of \
         the {file} byte COG",
        log.len(),
        100.0 * total as f64 / file as f64
    );
    // One HEAD for every thread's handle (GDAL keeps the size and header per process).
    assert_eq!(
        log.iter().filter(|r| r.method == "HEAD").count(),
        1,
        "{log:#?}"
    );
    // The full-resolution tiles are 75 % of the file (the overviews are never read);
    // the two threads' read-ahead sometimes fetches a range twice (measured: 75-97 %).
    assert!(total * 2 < file * 3, "{total} bytes for a {file} byte file");
}

fn remote_error(err: Error) -> (String, Option<u16>, String) {
    match err {
        Error::Remote {
            url,
            status,
            reason,
        } => (url, status, reason),
        other => panic!("expected Error::Remote, got {other:?}"),
    }
}

#[test]
fn failing_servers_give_remote_errors_with_url_and_status() {
    let server = Server::start(cog_dir());
    server.fail("/forbidden.tif", 403);
    server.fail("/broken.tif", 500);
    for (path, status) in [
        ("missing.tif", 404),
        ("forbidden.tif", 403),
        ("broken.tif", 500),
        // Again: GDAL's cache of "does not exist" is dropped after a failure.
        ("missing.tif", 404),
    ] {
        let url = server.url(path);
        let started = Instant::now();
        let err = Raster::open(&url).expect_err("a failing URL");
        let took = started.elapsed();
        let text = err.to_string();
        println!("{path}: {text} ({took:.2?})");
        let (got_url, got_status, reason) = remote_error(err);
        assert_eq!(got_url, url);
        assert_eq!(got_status, Some(status), "{reason}");
        assert!(
            text.contains(&url) && text.contains(&status.to_string()),
            "{text}"
        );
        assert!(took < Duration::from_secs(2), "{path} took {took:?}");
    }
    // The 404 reached the server (the second try's own 404 status is asserted above; how
    // many requests GDAL sends for it depends on its cache and is not asserted).
    let asked = |p: &str| server.log().iter().filter(|r| r.path == p).count();
    assert!(asked("/missing.tif") >= 1);

    // Nothing listens on the port.
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("address").port()
    };
    let url = format!("http://127.0.0.1:{port}/{COG}");
    let started = Instant::now();
    let err = Raster::open(&url).expect_err("no server");
    let took = started.elapsed();
    let text = err.to_string();
    println!("closed port: {text} ({took:.2?})");
    let (got_url, status, reason) = remote_error(err);
    assert_eq!(got_url, url);
    assert_eq!(status, None);
    assert!(!reason.is_empty() && text.contains(&url), "{text}");
    assert!(took < Duration::from_secs(2), "closed port took {took:?}");
}

#[test]
fn a_failing_range_request_names_its_status() {
    let server = Server::start(cog_dir());
    // The header's range fails: HEAD finds the file, the GET gets 503.
    server.fail_gets("/header-fails/scene_cog.tif", 503);
    let url = server.url("header-fails/scene_cog.tif");
    let err = Raster::open(&url).expect_err("header GET fails");
    println!("header GET 503: {err}");
    let (got_url, status, _) = remote_error(err);
    assert_eq!((got_url.as_str(), status), (url.as_str(), Some(503)));

    // A tile's range fails after the open: the read is an Error::Remote too.
    let url = server.url(COG);
    let raster = Raster::open(&url).expect("open");
    server.fail_gets(&format!("/{COG}"), 500);
    let err = raster
        .read(Window::new(1024, 1024, 16, 16), &["band1"])
        .expect_err("tile GET fails");
    println!("tile GET 500: {err}");
    let (got_url, status, _) = remote_error(err);
    assert_eq!((got_url.as_str(), status), (url.as_str(), Some(500)));
}

#[test]
fn a_s3_name_reads_a_public_bucket_without_credentials() {
    let server = Server::start(cog_dir());
    // A public bucket on an S3-compatible endpoint, path-style, unsigned.
    for (k, v) in [
        ("AWS_S3_ENDPOINT", server.addr.to_string()),
        ("AWS_HTTPS", "NO".into()),
        ("AWS_VIRTUAL_HOSTING", "FALSE".into()),
        ("AWS_NO_SIGN_REQUEST", "YES".into()),
        ("AWS_REGION", "us-east-1".into()),
    ] {
        gdal::config::set_config_option(k, &v).expect("config option");
    }
    let raster = Raster::open(format!("/vsis3/bucket/{COG}")).expect("open /vsis3/");
    assert_eq!(raster.size(), (2041, 1860));
    let got = raster
        .read_raw::<u16>(Window::new(0, 256, 256, 256), &["band1", "band2", "band3"])
        .expect("read");
    assert_eq!(
        got.as_slice().expect("contiguous"),
        local_window(0, 256, 256, 256).as_slice()
    );
    let log = server.log();
    assert!(
        log.iter().all(|r| r.path == format!("/bucket/{COG}")),
        "{log:#?}"
    );
    assert!(server.bytes() * 20 < cog_size());

    server.fail("/bucket/private.tif", 403);
    let err = Raster::open("/vsis3/bucket/private.tif").expect_err("403");
    println!("/vsis3/ 403: {err}");
    let (url, status, reason) = remote_error(err);
    assert_eq!(
        (url.as_str(), status),
        ("/vsis3/bucket/private.tif", Some(403))
    );
    assert!(reason.contains("AWS_NO_SIGN_REQUEST"), "{reason}");
}

#[test]
fn cli_info_describes_a_url() {
    let server = Server::start(cog_dir());
    let url = server.url(COG);
    let out = rasterlab(&["info", &url]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(stdout.contains("2041 x 1860"), "{stdout}");
    assert!(stdout.contains("3 band(s)"), "{stdout}");
    assert!(stdout.contains(&url), "{stdout}");
    // Nothing of GDAL's (its captured debug lines included) reaches stderr.
    assert!(out.stderr.is_empty(), "{}", text(&out.stderr));
    assert!(server.bytes() * 20 < cog_size());

    // A whole computation from the URL to a local file.
    let dir = tempfile::tempdir().expect("tempdir");
    let ndi_out = dir.path().join("ndi.tif");
    let extra = ["--scale", "0.0001", "--chunks", "512"];
    let out = rasterlab(&ndi_args(
        &url,
        &extra,
        ndi_out.to_str().expect("UTF-8 path"),
    ));
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(out.stderr.is_empty(), "{}", text(&out.stderr));
    assert_eq!(read_output(&ndi_out).0, 2041);

    let out = rasterlab(&["info", &server.url("missing.tif")]);
    let stderr = text(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("404") && stderr.contains("missing.tif"),
        "{stderr}"
    );
}
