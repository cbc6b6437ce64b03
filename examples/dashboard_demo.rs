//! Starts the live dashboard, prints its address on the first line of stdout, then saves
//! the normalized difference of a 5 x 5 mosaic of the Landsat scene (a VRT, 10205 x 9300
//! pixels) again and again, observed by the dashboard, for a while, and keeps serving a
//! little longer.
//!
//! ```text
//! cargo run --example dashboard_demo -- [seconds of work, default 20] [seconds to linger, default 5]
//! ```
//!
//! Open the printed address in a browser; `make screenshots` uses it for
//! `docs/dashboard.png`.

use std::io::Write;
use std::time::{Duration, Instant};

use rasterlab::prelude::*;

fn main() -> rasterlab::Result<()> {
    let mut args = std::env::args().skip(1);
    let mut secs = |default: u64| -> rasterlab::Result<Duration> {
        match args.next() {
            None => Ok(Duration::from_secs(default)),
            Some(a) => a
                .parse::<u64>()
                .map(Duration::from_secs)
                .map_err(|e| Error::invalid("seconds", format!("{a:?}: {e}"))),
        }
    };
    let (work, linger) = (secs(20)?, secs(5)?);

    let dash = Dashboard::start()?;
    println!("{}", dash.url());
    // The address must reach a reader waiting on a pipe before the work starts.
    let _ = std::io::stdout().flush();

    let out = std::env::temp_dir().join(format!("rasterlab-dashboard-demo-{}", std::process::id()));
    std::fs::create_dir_all(&out).map_err(|source| Error::Io {
        path: out.clone(),
        source,
    })?;
    let scene = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/data/LC08_L1TP_224078_20200518_20200518_01_RT.TIF"
    );
    // 5 x 5: each save lasts ~5 s, long enough for a screenshot of a run in progress.
    let mosaic = write_mosaic(scene, &out.join("mosaic.vrt"), 5)?;
    let scene = Raster::open(&mosaic)?
        .with_band_names(["blue", "green", "red"])?
        .with_nodata(Some(0.0));
    let ndi = scene.norm_diff("green", "red")?.nodata(0.0).scale(1e-4);
    let target = out.join("ndi.tif");

    let start = Instant::now();
    let mut runs = 0;
    while start.elapsed() < work {
        let report = ndi
            .save(&target)
            .chunks(256)
            .threads(2)
            .compress(Compression::Lzw)
            .progress(ProgressMode::Silent)
            .observe(dash.profiler())
            .run()?;
        runs += 1;
        eprintln!(
            "run {runs}: {} chunks in {:.2} s",
            report.grid.len(),
            report.elapsed.as_secs_f64()
        );
    }
    std::thread::sleep(linger);
    let _ = std::fs::remove_dir_all(&out);
    drop(dash);
    Ok(())
}

/// Writes a GDAL VRT tiling `scene` `n` x `n` times (east and south of its origin).
fn write_mosaic(
    scene: &str,
    vrt: &std::path::Path,
    n: usize,
) -> rasterlab::Result<std::path::PathBuf> {
    let src = Raster::open(scene)?;
    let (w, h) = src.size();
    let gt = src.geo_transform();
    let esc = rasterlab::display::escape_html;
    let mut xml = format!(
        "<VRTDataset rasterXSize=\"{}\" rasterYSize=\"{}\">\n<SRS>{}</SRS>\n\
         <GeoTransform>{}, {}, {}, {}, {}, {}</GeoTransform>\n",
        w * n,
        h * n,
        esc(src.crs_wkt()),
        gt[0],
        gt[1],
        gt[2],
        gt[3],
        gt[4],
        gt[5]
    );
    for band in 1..=src.band_count() {
        xml.push_str(&format!(
            "<VRTRasterBand dataType=\"UInt16\" band=\"{band}\"><NoDataValue>0</NoDataValue>\n"
        ));
        for (i, j) in (0..n).flat_map(|i| (0..n).map(move |j| (i, j))) {
            xml.push_str(&format!(
                "<SimpleSource><SourceFilename relativeToVRT=\"0\">{}</SourceFilename>\
                 <SourceBand>{band}</SourceBand><SrcRect xOff=\"0\" yOff=\"0\" xSize=\"{w}\" ySize=\"{h}\"/>\
                 <DstRect xOff=\"{}\" yOff=\"{}\" xSize=\"{w}\" ySize=\"{h}\"/></SimpleSource>\n",
                esc(scene),
                j * w,
                i * h
            ));
        }
        xml.push_str("</VRTRasterBand>\n");
    }
    xml.push_str("</VRTDataset>\n");
    std::fs::write(vrt, xml).map_err(|source| Error::Io {
        path: vrt.to_path_buf(),
        source,
    })?;
    Ok(vrt.to_path_buf())
}
