//! Rendering and profiling outside the notebook: reprs, quick-looks, profiler records.
//!
//! Set `RASTERLAB_KEEP_FIGURES=dir` to keep the rendered figures for a look.

use std::path::PathBuf;

use rasterlab::prelude::*;
use rasterlab::profile::TaskKind;

const SCENE: &str = "data/LC08_L1TP_224078_20200518_20200518_01_RT.TIF";

fn scene() -> Raster {
    Raster::open(SCENE)
        .and_then(|r| r.with_band_names(["blue", "green", "red"]))
        .expect("the sample scene opens")
}

fn keep(name: &str) -> Option<PathBuf> {
    let dir = PathBuf::from(std::env::var_os("RASTERLAB_KEEP_FIGURES")?);
    std::fs::create_dir_all(&dir).ok()?;
    Some(dir.join(name))
}

#[test]
fn save_records_read_compute_write_for_every_chunk() {
    let dir = tempfile::tempdir().expect("temp dir");
    let prof = Profiler::new();
    let ndi = scene()
        .norm_diff("green", "red")
        .expect("bands exist")
        .nodata(0.0)
        .scale(1e-4);
    let report = ndi
        .save(dir.path().join("ndi.tif"))
        .chunks(256)
        .threads(2)
        .progress(ProgressMode::Silent)
        .observe(&prof)
        .run()
        .expect("save runs");
    let chunks = report.grid.len();
    let tasks = prof.tasks();
    for kind in TaskKind::ALL {
        let mut seen: Vec<usize> = tasks
            .iter()
            .filter(|t| t.kind == kind)
            .map(|t| t.chunk)
            .collect();
        seen.sort_unstable();
        assert_eq!(seen, (0..chunks).collect::<Vec<_>>(), "{kind} tasks");
    }
    // Reads and computes run on the two workers, writes on the calling thread.
    for t in &tasks {
        assert!(t.start <= t.end);
        match t.kind {
            TaskKind::Write => assert_eq!(t.thread, None),
            _ => assert!(matches!(t.thread, Some(0 | 1)), "{t:?}"),
        }
    }
    // A compute task starts when its read ends, on the same thread.
    for c in tasks.iter().filter(|t| t.kind == TaskKind::Compute) {
        let r = tasks
            .iter()
            .find(|t| t.kind == TaskKind::Read && t.chunk == c.chunk)
            .expect("read of the chunk");
        assert_eq!(r.thread, c.thread);
        assert!(c.start >= r.end);
    }
    let summary = prof.summary();
    assert_eq!(summary.runs, 1);
    assert_eq!(summary.threads, 2);
    assert_eq!(summary.chunks, chunks);
    let svg = prof.to_svg();
    for text in [
        "Tasks per thread",
        "worker 0",
        "worker 1",
        "writer",
        "CPU",
        "RSS",
    ] {
        assert!(svg.contains(text), "figure lacks {text:?}");
    }
    let path = dir.path().join("profile.svg");
    prof.save_svg(&path).expect("svg written");
    assert!(
        std::fs::read_to_string(&path)
            .expect("svg")
            .starts_with("<svg")
    );
    if let Some(p) = keep("profile.svg") {
        prof.save_svg(p).expect("kept");
    }
    // A second run extends the same record; reset empties it.
    ndi.clone()
        .threads(1)
        .progress(ProgressMode::Silent)
        .observe(&prof)
        .compute()
        .expect("compute runs");
    assert_eq!(prof.summary().runs, 2);
    prof.reset();
    assert_eq!(prof.summary().tasks, 0);
}

#[test]
fn a_failed_run_still_closes_its_record() {
    let prof = Profiler::new();
    let dir = tempfile::tempdir().expect("temp dir");
    let err = scene()
        .norm_diff("green", "red")
        .expect("bands exist")
        .save(dir.path().join("missing-dir").join("x.tif"))
        .observe(&prof)
        .progress(ProgressMode::Silent)
        .run();
    assert!(err.is_err());
    // Nothing ran, and rendering an empty profile works.
    assert_eq!(prof.summary().tasks, 0);
    assert!(prof.to_html().contains("<img"));
}

#[test]
fn resource_profiler_samples_until_stopped() {
    let mut rp =
        ResourceProfiler::with_interval(std::time::Duration::from_millis(20)).expect("starts");
    let busy = std::time::Instant::now();
    let mut x = 0u64;
    while busy.elapsed().as_millis() < 150 {
        x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
    }
    std::hint::black_box(x);
    rp.stop();
    assert!(!rp.is_running());
    let samples = rp.samples();
    assert!(samples.len() >= 3, "{} samples", samples.len());
    assert!(samples.windows(2).all(|w| w[0].time <= w[1].time));
    assert!(samples.iter().any(|s| s.cpu_percent > 10.0), "{samples:?}");
    let n = samples.len();
    std::thread::sleep(std::time::Duration::from_millis(60));
    assert_eq!(rp.samples().len(), n, "sampling stopped");
    assert!(rp.to_svg().contains("CPU"));
}

#[test]
fn raster_and_lazy_array_reprs() {
    let r = scene().chunks(256).expect("chunks");
    let html = r.to_html();
    for text in [
        "rasterlab.Raster",
        "(band: 3, y: 1860, x: 2041)",
        "UInt16",
        "64 chunks (8 x 8) of 256 x 256 px",
        "chunk bytes",
        "384.0 KiB",
        "EPSG:32621",
        "bounds",
        "<svg",
        "green",
    ] {
        assert!(html.contains(text), "raster repr lacks {text:?}:\n{html}");
    }
    let ndi = r.norm_diff("green", "red").expect("bands");
    let html = ndi.to_html();
    for text in [
        "rasterlab.LazyArray",
        "(y: 1860, x: 2041)",
        "float32",
        "norm_diff(green, red)",
    ] {
        assert!(html.contains(text), "lazy repr lacks {text:?}");
    }
    // The terminal renderings stay.
    assert!(r.to_string().starts_with("Raster 2041 x 1860"));
    assert!(
        ndi.to_string()
            .starts_with("LazyArray norm_diff(green, red)")
    );
}

#[test]
fn quick_looks_of_raster_lazy_array_and_labels() {
    let r = scene().with_nodata(Some(0.0));
    let rgb = r.show().expect("rgb quick-look");
    assert!(rgb.to_html().contains("red / green / blue"));
    let band = r.show_band("red").expect("band quick-look");
    assert!(band.to_html().contains("linear-gradient"));
    let ndi = r.norm_diff("green", "red").expect("bands");
    let preview = ndi
        .preview(400)
        .expect("preview")
        .index_axis_move(rasterlab::ndarray::Axis(0), 0);
    assert_eq!(preview.dim(), (365, 400));
    // The preview equals the full result sampled at the same pixels (nearest).
    let full = ndi
        .clone()
        .progress(ProgressMode::Silent)
        .compute_band()
        .expect("compute");
    let (ph, pw) = preview.dim();
    let mut compared = 0;
    for (y, x) in [(0, 0), (100, 200), (364, 399), (200, 17)] {
        // GDAL's nearest sampling takes the pixel whose centre is nearest.
        let sy = ((y as f64 + 0.5) * 1860.0 / ph as f64) as usize;
        let sx = ((x as f64 + 0.5) * 2041.0 / pw as f64) as usize;
        let (a, b) = (preview[[y, x]], full[[sy, sx]]);
        assert!(
            a == b || (a.is_nan() && b.is_nan()),
            "({y},{x}): {a} vs {b}"
        );
        compared += 1;
    }
    assert_eq!(compared, 4);
    let img = ndi.show().expect("lazy quick-look");
    assert!(img.png_bytes().starts_with(b"\x89PNG"));
    let labels = ndarray::Array2::from_shape_fn((300, 400), |(y, x)| {
        if y < 20 {
            -1
        } else {
            ((x / 50 + y / 60) % 6) as i32
        }
    });
    let map = labels.show();
    assert!(map.to_html().contains("6 label(s)"));
    for (name, img) in [
        ("rgb.png", &rgb),
        ("red.png", &band),
        ("ndi.png", &img),
        ("labels.png", &map),
    ] {
        if let Some(p) = keep(name) {
            img.save_png(p).expect("kept");
        }
    }
}

#[test]
fn a_large_raster_renders_quickly() {
    // A 10 000 x 10 000 VRT mosaic of the scene (about 600 MB decoded) renders from a
    // decimated read, without holding the full raster in memory.
    let dir = tempfile::tempdir().expect("temp dir");
    let vrt = dir.path().join("big.vrt");
    let src = std::fs::canonicalize(SCENE).expect("scene path");
    let mut xml = String::from("<VRTDataset rasterXSize=\"10000\" rasterYSize=\"10000\">\n");
    for band in 1..=3 {
        xml.push_str(&format!(
            "<VRTRasterBand dataType=\"UInt16\" band=\"{band}\"><NoDataValue>0</NoDataValue>\n"
        ));
        for ty in 0..6 {
            for tx in 0..5 {
                xml.push_str(&format!(
                    "<SimpleSource><SourceFilename relativeToVRT=\"0\">{}</SourceFilename>\
                     <SourceBand>{band}</SourceBand>\
                     <SrcRect xOff=\"0\" yOff=\"0\" xSize=\"2041\" ySize=\"1860\"/>\
                     <DstRect xOff=\"{}\" yOff=\"{}\" xSize=\"2041\" ySize=\"1860\"/></SimpleSource>\n",
                    src.display(),
                    tx * 2000,
                    ty * 1700
                ));
            }
        }
        xml.push_str("</VRTRasterBand>\n");
    }
    xml.push_str("</VRTDataset>\n");
    std::fs::write(&vrt, xml).expect("vrt written");
    let big = Raster::open(&vrt).expect("vrt opens");
    assert_eq!(big.size(), (10_000, 10_000));
    let t = std::time::Instant::now();
    let img = big.show().expect("quick-look");
    let secs = t.elapsed().as_secs_f64();
    assert_eq!(img.size(), (800, 800));
    eprintln!("10 000 x 10 000 quick-look in {secs:.2} s");
    assert!(secs < 20.0, "{secs} s");
}

#[test]
fn cli_writes_a_profile_figure() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (out, svg) = (dir.path().join("ndi.tif"), dir.path().join("profile.svg"));
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_rasterlab"))
        .args([
            "ndi",
            SCENE,
            "--band-names",
            "blue,green,red",
            "--a",
            "green",
            "--b",
            "red",
        ])
        .args(["--chunks", "512", "--quiet", "-o"])
        .arg(&out)
        .arg("--profile")
        .arg(&svg)
        .output()
        .expect("rasterlab runs");
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let text = std::fs::read_to_string(&svg).expect("profile written");
    assert!(text.contains("worker 0") && text.contains("RSS"));
}
