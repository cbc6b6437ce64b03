//! Per worker, a member warped onto the raster's grid: a warped VRT built by GDAL's
//! `gdalwarp` library over the worker's own handle of the file.

use std::ffi::{CString, c_char};
use std::path::Path;

use gdal::Dataset;
use gdal::spatial_ref::SpatialRef;

use crate::core::float::same_opt_f64;
use crate::error::{Error, Result};
use crate::raster::{QuietGdal, Raster, open_dataset};

/// The WKT of a CRS given as GDAL accepts it (`EPSG:32622`, PROJ, WKT).
pub(super) fn crs_wkt(crs: &str) -> Result<String> {
    let _quiet = QuietGdal::new();
    SpatialRef::from_definition(crs)
        .and_then(|s| s.to_wkt())
        .map_err(|_| {
            Error::invalid(
                "crs",
                format!("{crs:?} is not a CRS GDAL knows (e.g. EPSG:32622, a PROJ string, WKT)"),
            )
        })
}

/// A number as gdalwarp reads it back exactly (Rust prints the shortest round-trip form).
pub(super) fn num(v: f64) -> String {
    if v.is_nan() {
        "nan".into()
    } else {
        v.to_string()
    }
}

/// Opens `path` for one worker: the file itself, or when the raster warps it, a warped
/// VRT onto the raster's grid over the worker's own handle of the file.
pub(crate) fn open_member(raster: &Raster, path: &Path) -> Result<Dataset> {
    let source = open_dataset(path)?;
    let Some(alignment) = raster.alignment.as_ref().filter(|a| a.is_warped(path)) else {
        return Ok(source);
    };
    let [x0, dx, _, y0, _, dy] = raster.geo_transform;
    let (x1, y1) = (
        x0 + dx * raster.width as f64,
        y0 + dy * raster.height as f64,
    );
    let mut args: Vec<String> = [
        "-of",
        "VRT",
        "-r",
        alignment.resampling.name(),
        // Exact per-pixel transformation (see the module's docs).
        "-et",
        "0",
    ]
    .map(String::from)
    .to_vec();
    if !raster.crs_wkt.is_empty() {
        args.extend(["-t_srs".into(), raster.crs_wkt.clone()]);
    }
    args.extend([
        "-te".into(),
        num(x0.min(x1)),
        num(y0.min(y1)),
        num(x0.max(x1)),
        num(y0.max(y1)),
        "-ts".into(),
        raster.width.to_string(),
        raster.height.to_string(),
    ]);
    // Nodata in use for this file's bands, in band order (overrides included).
    let mut nodata: Vec<(usize, Option<f64>)> = raster
        .bands
        .iter()
        .filter(|b| b.path == path)
        .map(|b| (b.index, b.nodata))
        .collect();
    nodata.sort_by_key(|(i, _)| *i);
    nodata.dedup_by(|a, b| a.0 == b.0 && same_opt_f64(a.1, b.1));
    if nodata.iter().all(|(_, v)| v.is_none()) {
        args.extend(["-srcnodata".into(), "None".into()]);
    } else {
        // A band without nodata among bands with one: NaN matches no stored value.
        let list = nodata
            .iter()
            .map(|(_, v)| num(v.unwrap_or(f64::NAN)))
            .collect::<Vec<_>>()
            .join(" ");
        args.extend(["-srcnodata".into(), list.clone(), "-dstnodata".into(), list]);
    }
    // The resampling kernel's scale, fixed for the whole file (see `kernel_scale`).
    if let Some((sx, sy)) = kernel_scale(&source, &raster.crs_wkt, dx.abs(), dy.abs()) {
        args.extend([
            "-wo".into(),
            format!("XSCALE={}", num(sx)),
            "-wo".into(),
            format!("YSCALE={}", num(sy)),
        ]);
    }
    gdalwarp_vrt(source, path, &args)
}

/// Target pixels per source pixel along x and y, from the source's pixel at its centre
/// carried into the target CRS (`(2.0, 2.0)` for 60 m onto 30 m).
///
/// GDAL's warper otherwise derives this scale from each block's source window: a block of
/// a rotated source (another UTM zone) covers a taller window than the block, so bilinear
/// and cubic kernels were widened block by block (43 % of the pixels of the zone-22 test
/// differed from a whole-image `gdalwarp`, by 12 on average). GDAL's `XSCALE`/`YSCALE`
/// warp options fix it, and `gdalwarp -wo XSCALE=.. -wo YSCALE=..` gives the same values.
fn kernel_scale(source: &Dataset, dst_wkt: &str, dx: f64, dy: f64) -> Option<(f64, f64)> {
    let gt = source.geo_transform().ok()?;
    let (w, h) = source.raster_size();
    let src_wkt = CString::new(source.projection()).ok()?;
    let dst_wkt = CString::new(dst_wkt).ok()?;
    let (cx, cy) = ((w / 2) as f64, (h / 2) as f64);
    let mut x = [cx, cx + 1.0, cx];
    let mut y = [cy, cy, cy + 1.0];
    let mut z = [0.0; 3];
    let mut ok = [0; 3];
    // SAFETY: valid NUL-terminated strings and geotransform; a NULL destination
    // geotransform makes the transformer return target CRS coordinates. The transformer
    // is destroyed on every path below.
    unsafe {
        let t = gdal_sys::GDALCreateGenImgProjTransformer3(
            src_wkt.as_ptr(),
            gt.as_ptr(),
            dst_wkt.as_ptr(),
            std::ptr::null(),
        );
        if t.is_null() {
            return None;
        }
        gdal_sys::GDALGenImgProjTransform(
            t,
            0,
            3,
            x.as_mut_ptr(),
            y.as_mut_ptr(),
            z.as_mut_ptr(),
            ok.as_mut_ptr(),
        );
        gdal_sys::GDALDestroyGenImgProjTransformer(t);
    }
    if ok.contains(&0) {
        return None;
    }
    let along_x = (x[1] - x[0]).hypot(y[1] - y[0]);
    let along_y = (x[2] - x[0]).hypot(y[2] - y[0]);
    let (sx, sy) = (along_x / dx, along_y / dy);
    (sx.is_finite() && sy.is_finite() && sx > 0.0 && sy > 0.0).then_some((sx, sy))
}

/// `gdalwarp ARGS source` into a VRT in memory, which takes over the source handle.
pub(super) fn gdalwarp_vrt(source: Dataset, path: &Path, args: &[String]) -> Result<Dataset> {
    let _quiet = QuietGdal::new();
    let fail = |what: &str| Error::Gdal {
        context: format!("warping {} ({what})", path.display()),
        source: crate::raster::last_gdal_error("GDALWarp"),
    };
    let c_args = args
        .iter()
        .map(|a| CString::new(a.as_str()))
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|_| Error::invalid("warp options", "a NUL byte in an option"))?;
    let mut argv: Vec<*mut c_char> = c_args.iter().map(|a| a.as_ptr() as *mut c_char).collect();
    argv.push(std::ptr::null_mut());
    // SAFETY: argv is a NULL-terminated array of NUL-terminated strings that outlive the
    // call; GDAL copies what it keeps. The options are freed below on every path.
    let options =
        unsafe { gdal_sys::GDALWarpAppOptionsNew(argv.as_mut_ptr(), std::ptr::null_mut()) };
    if options.is_null() {
        return Err(fail("options"));
    }
    let empty = CString::default();
    let mut src = source.c_dataset();
    let mut usage = 0;
    // SAFETY: one valid source handle, valid options; an empty destination name with the
    // VRT format gives an in-memory warped VRT.
    let vrt = unsafe {
        gdal_sys::GDALWarp(
            empty.as_ptr(),
            std::ptr::null_mut(),
            1,
            &mut src,
            options,
            &mut usage,
        )
    };
    // SAFETY: created above, not used after this.
    unsafe { gdal_sys::GDALWarpAppOptionsFree(options) };
    if vrt.is_null() {
        return Err(fail(if usage != 0 { "usage" } else { "gdalwarp" }));
    }
    // SAFETY: a new dataset handle owned by nobody else; closed when the Dataset drops.
    let vrt = unsafe { Dataset::from_c_dataset(vrt) };
    // The warped VRT took a reference on the source (GDAL documents it), and closes the
    // source when its own count drops to zero: hand ours over rather than close it.
    let src_handle = source.c_dataset();
    std::mem::forget(source);
    // SAFETY: drops this function's reference on a valid handle; the VRT holds another.
    let left = unsafe { gdal_sys::GDALDereferenceDataset(src_handle) };
    if left < 1 {
        // No reference held by the VRT (not expected): keep ours by closing the VRT first
        // and reporting, rather than leave the VRT pointing at a closed dataset.
        drop(vrt);
        // SAFETY: restore and then close our own handle.
        unsafe {
            gdal_sys::GDALReferenceDataset(src_handle);
            gdal_sys::GDALClose(src_handle);
        }
        return Err(Error::Internal(format!(
            "GDAL's warped VRT of {} holds no reference on its source",
            path.display()
        )));
    }
    Ok(vrt)
}
