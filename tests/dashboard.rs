//! The live dashboard over real HTTP: the token is required, only loopback is bound, the
//! server stops when dropped, and a computation started later (on another thread, as a
//! later notebook cell would) is visible in `/status.json` while it runs.

mod common;

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use common::{entries, http_get, http_request, mosaic, venv};
use rasterlab::prelude::*;
use serde_json::Value;

fn status(dash_addr: SocketAddr, token: &str) -> Value {
    let (code, body) =
        http_get(dash_addr, &format!("/status.json?token={token}"), "").expect("status.json");
    assert_eq!(code, 200, "{body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("bad JSON ({e}): {body}"))
}

#[test]
fn requests_without_the_right_token_are_refused() {
    let dash = Dashboard::start_with(DashboardOptions::default()).expect("dashboard");
    let addr = dash.local_addr();
    let token = dash.token().to_string();
    assert_eq!(token.len(), 32, "128 random bits in hex");
    for target in [
        "/",
        "/status.json",
        "/panel",
        "/nope",
        "/?token=",
        "/status.json?token=wrong",
    ] {
        let (code, body) = http_get(addr, target, "").expect("request");
        assert_eq!(code, 403, "{target}: {body}");
        assert!(!body.contains(&token), "{target} leaked the token");
    }
    // A wrong token of the right length, and a wrong header.
    let almost = format!("{}0", &token[..31]);
    let almost = if almost == token {
        format!("{}1", &token[..31])
    } else {
        almost
    };
    assert_eq!(
        http_get(addr, &format!("/?token={almost}"), "")
            .expect("request")
            .0,
        403
    );
    assert_eq!(
        http_get(addr, "/", "Authorization: token nope\r\n")
            .expect("request")
            .0,
        403
    );
    // The right token, in the query or in a header.
    let (code, page) = http_get(addr, &format!("/?token={token}"), "").expect("page");
    assert_eq!(code, 200);
    assert!(page.contains("rasterlab dashboard") && page.contains("Task stream"));
    let header = format!("Authorization: token {token}\r\n");
    assert_eq!(
        http_get(addr, "/status.json", &header).expect("json").0,
        200
    );
    assert_eq!(
        http_get(addr, &format!("/nope?token={token}"), "")
            .expect("404")
            .0,
        404
    );
    // Read-only.
    let mut s = TcpStream::connect(addr).expect("connect");
    write!(
        s,
        "POST /?token={token} HTTP/1.1\r\nContent-Length: 0\r\n\r\n"
    )
    .expect("post");
    let mut text = String::new();
    s.read_to_string(&mut text).expect("response");
    assert!(text.starts_with("HTTP/1.1 405"), "{text}");
}

/// An address of this machine that is not loopback, if it has one.
fn outside_address() -> Option<IpAddr> {
    // Connecting a UDP socket sends nothing; it only picks the outgoing interface.
    let s = UdpSocket::bind("0.0.0.0:0").ok()?;
    s.connect("192.0.2.1:9").ok()?;
    let ip = s.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

#[test]
fn binds_only_to_loopback() {
    let dash = Dashboard::start_with(DashboardOptions::default()).expect("dashboard");
    assert_eq!(
        dash.local_addr().ip(),
        IpAddr::from([127, 0, 0, 1]),
        "must listen on 127.0.0.1 only"
    );
    assert!(dash.url().starts_with("http://127.0.0.1:"));
    match outside_address() {
        Some(ip) => {
            let there = SocketAddr::new(ip, dash.port());
            assert!(
                TcpStream::connect_timeout(&there, Duration::from_secs(2)).is_err(),
                "the dashboard answered on {there}"
            );
        }
        None => eprintln!("no non-loopback address here: only the bound address was checked"),
    }
}

#[test]
fn stops_when_dropped() {
    let dash = Dashboard::start_with(DashboardOptions::default()).expect("dashboard");
    let addr = dash.local_addr();
    let token = dash.token().to_string();
    assert!(dash.is_running());
    assert_eq!(
        http_get(addr, &format!("/?token={token}"), "")
            .expect("up")
            .0,
        200
    );
    drop(dash);
    assert!(
        TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_err(),
        "still accepting connections after drop"
    );
}

#[test]
fn fixed_port_token_and_proxy_link() {
    let opts = DashboardOptions::default()
        .token("secret-token-123")
        .link_template("/user/me/proxy/{port}/");
    let dash = Dashboard::start_with(opts).expect("dashboard");
    assert_eq!(dash.token(), "secret-token-123");
    assert_eq!(
        dash.link(),
        format!("/user/me/proxy/{}/?token=secret-token-123", dash.port())
    );
    let html = dash.to_html();
    assert!(html.contains("<iframe src=\"/user/me/proxy/"));
    assert!(html.contains("<a href=\"/user/me/proxy/"));
    // A second dashboard cannot take a port in use, and says so.
    // It is the OS's refusal (typed, with the cause), not a bad argument.
    match Dashboard::start_with(DashboardOptions::default().port(dash.port())) {
        Err(e @ rasterlab::Error::System { .. }) => {
            let source = std::error::Error::source(&e).map(|s| s.to_string());
            assert!(e.to_string().contains("127.0.0.1"), "{e}");
            assert!(
                source.is_some_and(|s| s.to_lowercase().contains("in use")),
                "{e}"
            );
        }
        other => panic!("expected Error::System, got {:?}", other.map(|d| d.port())),
    }
    for bad in ["short", "has space in it"] {
        let e = Dashboard::start_with(DashboardOptions::default().token(bad));
        assert!(
            matches!(
                e,
                Err(rasterlab::Error::Invalid {
                    what: "dashboard token",
                    ..
                })
            ),
            "{bad}"
        );
    }
}

/// The notebook flow without the kernel: the dashboard is started first ("cell 1"), a
/// computation observed by it runs later on another thread ("cell 2"), and this thread
/// watches it over HTTP while it runs.
#[test]
fn a_later_computation_is_visible_over_http_while_it_runs() {
    let dash = Dashboard::start_with(DashboardOptions::default()).expect("dashboard");
    let (addr, token) = (dash.local_addr(), dash.token().to_string());
    let idle = status(addr, &token);
    assert!(idle["run"].is_null(), "{idle}");

    let prof = dash.profiler().clone();
    let job = std::thread::spawn(move || -> rasterlab::Result<Vec<f64>> {
        let r = Raster::open(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/data/rgbn_20160101.tif"
        ))?
        .with_band_names(["red", "green", "blue", "nir"])?;
        r.band("nir")?
            .chunks(64)?
            .threads(2)
            .progress(ProgressMode::Silent)
            .observe(&prof)
            .map_blocks(|b| {
                std::thread::sleep(Duration::from_millis(25));
                b.data.iter().map(|&v| f64::from(v)).sum::<f64>()
            })
    });

    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seen_running = None;
    while Instant::now() < deadline && !job.is_finished() {
        let s = status(addr, &token);
        let run = &s["run"];
        let done = run["done"].as_u64().unwrap_or(0);
        if run["finished"] == false && done > 0 && done < 63 {
            seen_running = Some(s.clone());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let sums = job.join().expect("job thread").expect("map_blocks");
    assert_eq!(sums.len(), 7 * 9);
    let s = seen_running.expect("never saw the run in progress over HTTP");
    let run = &s["run"];
    assert_eq!(run["label"], "map_blocks");
    assert_eq!(run["total"], 63);
    assert!(run["done"].as_u64().unwrap_or(0) < 63, "{run}");
    assert!(s["tasks"].as_array().is_some_and(|t| !t.is_empty()), "{s}");

    let end = status(addr, &token);
    assert_eq!(end["run"]["finished"], true, "{end}");
    assert_eq!(end["run"]["done"], 63);
    // The page renders the finished run; CPU and memory have been sampled meanwhile.
    let (_, panel) = http_get(addr, &format!("/panel?token={token}"), "").expect("panel");
    assert!(panel.contains("63 / 63 chunks (100%)"), "{panel}");
    assert!(
        panel.contains("worker 0") && panel.contains("<polyline"),
        "{panel}"
    );
    assert!(end["rss_bytes"].as_u64().is_some_and(|b| b > 0), "{end}");
}

/// The Stop button's request: only POST, only with the token in the Authorization header
/// (a page of another site cannot send that without a CORS preflight, which is refused).
#[test]
fn stop_needs_post_and_the_token_in_a_header() {
    let dash = Dashboard::start_with(DashboardOptions::default()).expect("dashboard");
    let (addr, token) = (dash.local_addr(), dash.token().to_string());
    let before = dash.cancel_token();
    let header = format!("Authorization: token {token}\r\n");
    let code = |method: &str, target: &str, headers: &str| {
        http_request(addr, method, target, headers)
            .expect("request")
            .0
    };
    assert_eq!(code("GET", &format!("/stop?token={token}"), ""), 405);
    assert_eq!(code("POST", "/stop", ""), 403);
    assert_eq!(code("POST", &format!("/stop?token={token}"), ""), 403);
    assert_eq!(
        code("POST", "/stop", "Authorization: token wrong-token\r\n"),
        403
    );
    assert_eq!(code("OPTIONS", "/stop", ""), 405);
    assert!(
        !before.is_cancelled(),
        "a refused request cancelled the run"
    );
    assert_eq!(code("POST", "/stop", &header), 200);
    assert!(before.is_cancelled());
    assert!(
        !dash.cancel_token().is_cancelled(),
        "later saves get a fresh token"
    );
    // The page carries the button.
    let (_, page) = http_get(addr, &format!("/?token={token}"), "").expect("page");
    assert!(
        page.contains("id=\"stop\"") && page.contains("method:'POST'"),
        "{page}"
    );
}

/// A long save observed by the dashboard is stopped from it: the save returns
/// `Error::Cancelled` at its next chunk, leaves nothing in the folder, and the next save
/// runs to the end. Idle connections held open meanwhile do not keep Stop from answering.
#[test]
fn stop_cancels_a_running_save_and_leaves_nothing() {
    let dash = Dashboard::start_with(DashboardOptions::default()).expect("dashboard");
    let (addr, token) = (dash.local_addr(), dash.token().to_string());
    let dir = tempfile::tempdir().expect("tempdir");
    let vrt = mosaic(dir.path());
    let out = dir.path().join("out");
    std::fs::create_dir(&out).expect("out");
    let r = Raster::open(&vrt)
        .and_then(|r| r.with_band_names(["blue", "green", "red"]))
        .expect("mosaic");
    let product = (r.band("blue").expect("b") * r.band("green").expect("g")).nodata(0.0);
    let save = product
        .save(out.join("p.tif"))
        .chunks(256)
        .threads(1)
        .progress(ProgressMode::Silent)
        .dashboard(&dash);
    let job = std::thread::spawn(move || save.run());

    // Wait until the save is under way (chunks done, a temporary file in the folder).
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let s = status(addr, &token);
        let done = s["run"]["done"].as_u64().unwrap_or(0);
        if done > 2 && !entries(&out).is_empty() {
            break;
        }
        assert!(
            !job.is_finished(),
            "the save ended before it could be stopped"
        );
        assert!(Instant::now() < deadline, "the save never started: {s}");
        std::thread::sleep(Duration::from_millis(20));
    }
    // 16 idle clients hold connections open (the old limit locked everyone out).
    let idle: Vec<TcpStream> = (0..16)
        .map(|_| TcpStream::connect(addr).expect("idle connection"))
        .collect();
    let t0 = Instant::now();
    let (code, body) = http_request(
        addr,
        "POST",
        "/stop",
        &format!("Authorization: token {token}\r\n"),
    )
    .expect("stop");
    assert_eq!((code, body.trim()), (200, "stopped"));
    assert!(
        t0.elapsed() < Duration::from_secs(2),
        "Stop took {:?}",
        t0.elapsed()
    );
    drop(idle);
    let result = job.join().expect("save thread");
    assert!(
        matches!(result, Err(Error::Cancelled { ref reason }) if reason.contains("dashboard")),
        "{result:?}"
    );
    assert_eq!(entries(&out), Vec::<String>::new(), "debris or output left");

    // A later save with the same dashboard runs to the end.
    let small = Raster::open(common::data(common::RGBN)).expect("rgbn");
    let report = small
        .band("band1")
        .expect("band")
        .save(out.join("later.tif"))
        .progress(ProgressMode::Silent)
        .dashboard(&dash)
        .run()
        .expect("a later save runs");
    assert!(report.path.exists());
}

/// A Jupyter server started by this test, stopped when dropped.
struct JupyterServer(std::process::Child);

impl Drop for JupyterServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Behind JupyterHub the browser reaches the dashboard through jupyter-server-proxy
/// (`/proxy/<port>/`), which the set-up installs: a real Jupyter server on loopback serves
/// the page, the JSON and the Stop button through the proxy, and the dashboard's token is
/// still required behind it.
#[test]
fn the_dashboard_is_reached_through_jupyter_server_proxy() {
    let jupyter = venv().join("bin").join("jupyter");
    assert!(
        jupyter.exists(),
        "no Jupyter at {}: run `make setup`",
        jupyter.display()
    );
    let dash = Dashboard::start_with(DashboardOptions::default().link_template("/proxy/{port}/"))
        .expect("dashboard");
    let (port, token) = (dash.port(), dash.token().to_string());
    assert!(
        dash.link().starts_with(&format!("/proxy/{port}/?token=")),
        "{}",
        dash.link()
    );

    let root = tempfile::tempdir().expect("tempdir");
    let jport = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    // Loopback only and no Jupyter token, so the dashboard's own token is the one that
    // guards the proxied pages (as behind JupyterHub, where the hub authenticates).
    let child = std::process::Command::new(&jupyter)
        .args(["server", "--no-browser", "--allow-root", "--ip=127.0.0.1"])
        .arg(format!("--port={jport}"))
        .args([
            "--ServerApp.token=",
            "--ServerApp.password=",
            "--ServerApp.disable_check_xsrf=True",
        ])
        .arg(format!("--ServerApp.root_dir={}", root.path().display()))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("jupyter server");
    let _server = JupyterServer(child);
    let jaddr = SocketAddr::from(([127, 0, 0, 1], jport));
    let proxied = |target: &str| format!("/proxy/{port}{target}");
    let deadline = Instant::now() + Duration::from_secs(90);
    let (code, body) = loop {
        match http_get(jaddr, &proxied(&format!("/status.json?token={token}")), "") {
            Ok((code, body)) if code != 0 => break (code, body),
            _ if Instant::now() > deadline => panic!("Jupyter did not answer on {jaddr}"),
            _ => std::thread::sleep(Duration::from_millis(200)),
        }
    };
    assert_eq!(
        code, 200,
        "through the proxy: {body} (is jupyter-server-proxy installed? `make setup`)"
    );
    let v: Value = serde_json::from_str(&body).expect("JSON through the proxy");
    assert!(v["cores"].as_u64().is_some_and(|c| c > 0), "{v}");
    let (code, page) = http_get(jaddr, &proxied(&format!("/?token={token}")), "").expect("page");
    assert_eq!(code, 200);
    assert!(page.contains("rasterlab dashboard") && page.contains("id=\"stop\""));
    // The token is still required behind the proxy.
    assert_eq!(
        http_get(jaddr, &proxied("/status.json"), "")
            .expect("no token")
            .0,
        403
    );
    // Stop, through the proxy, with the token in the header.
    let before = dash.cancel_token();
    let header = format!("Authorization: token {token}\r\n");
    let (code, body) = http_request(jaddr, "POST", &proxied("/stop"), &header).expect("stop");
    assert_eq!((code, body.trim()), (200, "stopped"));
    assert!(before.is_cancelled());
}
