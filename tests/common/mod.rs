//! Shared test helpers: paths to the shipped data and an independent reference reader.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use gdal::Dataset;

pub const SCENE: &str = "data/LC08_L1TP_224078_20200518_20200518_01_RT.TIF";
pub const B2: &str = "data/LC08_L1TP_224078_20200518_20200518_01_RT_B2.TIF";
pub const B3: &str = "data/LC08_L1TP_224078_20200518_20200518_01_RT_B3.TIF";
pub const B4: &str = "data/LC08_L1TP_224078_20200518_20200518_01_RT_B4.TIF";
pub const RGBN: &str = "data/rgbn_20160101.tif";

pub fn data(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// A whole band read straight through the gdal crate, as u16 (width, height, values).
pub fn read_band_u16(path: &str, band: usize) -> (usize, usize, Vec<u16>) {
    let ds = Dataset::open(data(path)).expect("open reference");
    let rb = ds.rasterband(band).expect("band");
    let (w, h) = rb.size();
    let buf = rb
        .read_as::<u16>((0, 0), (w, h), (w, h), None)
        .expect("read");
    (w, h, buf.data().to_vec())
}

/// Reads band 1 of a written output as f32.
pub fn read_output(path: &Path) -> (usize, usize, Vec<f32>) {
    let ds = Dataset::open(path).expect("open output");
    let rb = ds.rasterband(1).expect("band");
    let (w, h) = rb.size();
    let buf = rb
        .read_as::<f32>((0, 0), (w, h), (w, h), None)
        .expect("read");
    (w, h, buf.data().to_vec())
}

/// Names of every entry in `dir`.
pub fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

// The CLI helpers name the binary, which exists only with the `cli` feature.
#[cfg(feature = "cli")]
pub mod cli;
pub mod cube;

/// The project's Python environment: `RASTERLAB_VENV` (set by `make test`), else
/// `<crate>/.venv` (made by `make setup`).
pub fn venv() -> PathBuf {
    std::env::var_os("RASTERLAB_VENV")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| data(".venv"))
}

/// The 4 x 4 mosaic of the scene as a VRT (8164 x 7440 x 3 UInt16): its product takes
/// seconds to save with one thread and 256-pixel chunks.
pub fn mosaic(dir: &Path) -> PathBuf {
    let scene = data(SCENE);
    let (w, h, tiles) = (2041, 1860, 4);
    let mut bands = String::new();
    for b in 1..=3 {
        bands.push_str(&format!(
            "  <VRTRasterBand dataType=\"UInt16\" band=\"{b}\">\n"
        ));
        for ty in 0..tiles {
            for tx in 0..tiles {
                bands.push_str(&format!(
                    "    <SimpleSource><SourceFilename relativeToVRT=\"0\">{}</SourceFilename>\
                     <SourceBand>{b}</SourceBand><SrcRect xOff=\"0\" yOff=\"0\" xSize=\"{w}\" ySize=\"{h}\"/>\
                     <DstRect xOff=\"{}\" yOff=\"{}\" xSize=\"{w}\" ySize=\"{h}\"/></SimpleSource>\n",
                    scene.display(),
                    tx * w,
                    ty * h
                ));
            }
        }
        bands.push_str("  </VRTRasterBand>\n");
    }
    let vrt = format!(
        "<VRTDataset rasterXSize=\"{}\" rasterYSize=\"{}\">\n  <GeoTransform>717345, 30, 0, -2776995, 0, -30</GeoTransform>\n{bands}</VRTDataset>\n",
        w * tiles,
        h * tiles
    );
    let path = dir.join("mosaic.vrt");
    std::fs::write(&path, vrt).expect("vrt");
    path
}

/// Runs the ignored test `name` of this test binary in a child process with `env` set, for
/// what is process-wide (environment variables, peak RSS, what GDAL prints on stderr).
pub fn run_child_test(name: &str, env: &[(&str, &std::ffi::OsStr)]) -> std::process::Output {
    let mut cmd = std::process::Command::new(std::env::current_exe().expect("test binary"));
    cmd.args([
        "--exact",
        name,
        "--include-ignored",
        "--nocapture",
        "--test-threads=1",
    ]);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("child test process")
}

/// A GET over a plain socket with extra header lines (each ending in CRLF): the status code
/// and the body. For the dashboard, from the tests and from the notebook watcher.
pub fn http_get(
    addr: std::net::SocketAddr,
    target: &str,
    headers: &str,
) -> std::io::Result<(u16, String)> {
    http_request(addr, "GET", target, headers)
}

/// One HTTP/1.1 request with an empty body; the status code and the body of the answer.
pub fn http_request(
    addr: std::net::SocketAddr,
    method: &str,
    target: &str,
    headers: &str,
) -> std::io::Result<(u16, String)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_secs(2))?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(5)))?;
    write!(
        s,
        "{method} {target} HTTP/1.1\r\nHost: {addr}\r\n{headers}Content-Length: 0\r\n\
         Connection: close\r\n\r\n"
    )?;
    let mut text = String::new();
    s.read_to_string(&mut text)?;
    let code = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((code, body))
}
