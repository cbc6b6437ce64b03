//! The dashboard's HTTP server: a loopback-only accept loop that also samples CPU and
//! memory, request parsing, the token check, and the routes.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::page::{page, panel};
use super::status::ResourceSample;
use super::{MAX_CONNECTIONS, SAMPLE_EVERY, SAMPLES_KEPT, Shared};
use crate::profile::ProcessSampler;

/// The server loop: accepts connections (each served on its own short-lived thread) and
/// samples CPU and memory, until `stop`.
pub(super) fn serve(listener: TcpListener, shared: Arc<Shared>, stop: Arc<AtomicBool>) {
    // No sampler (no /proc, say): the page shows no CPU or memory figures.
    let mut sampler = ProcessSampler::new().ok();
    // The first window ends one interval from now (a sample at once would cover no time).
    let mut next_sample = Instant::now() + SAMPLE_EVERY;
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
            if let Some(sampler) = sampler.as_mut() {
                let previous = (shared.samples.lock())
                    .unwrap_or_else(|e| e.into_inner())
                    .last()
                    .map(|s| s.cpu_percent);
                // The lock is not held while /proc is read: status requests never wait.
                if let Some((_, cpu_percent, rss_bytes)) = sampler.sample(previous) {
                    let mut samples = shared.samples.lock().unwrap_or_else(|e| e.into_inner());
                    samples.push(ResourceSample {
                        time: shared.started.elapsed().as_secs_f64(),
                        cpu_percent,
                        rss_bytes,
                    });
                    if samples.len() > SAMPLES_KEPT {
                        let extra = samples.len() - SAMPLES_KEPT;
                        samples.drain(..extra);
                    }
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
pub(super) fn same_token(a: &str, b: &str) -> bool {
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
