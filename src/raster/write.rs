//! Tiled, compressed GeoTIFF output, written to a temporary file and renamed on success.

use std::ffi::CString;
use std::fmt;
use std::path::{Path, PathBuf};

use gdal::raster::{Buffer, RasterCreationOptions};
use gdal::{Dataset, DriverManager, Metadata};

use crate::error::{Error, Result};
use crate::grid::Window;

/// Compression of a GeoTIFF's tiles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compression {
    /// No compression: fastest to write, largest file.
    None,
    /// LZW, readable by every GeoTIFF reader (the default).
    #[default]
    Lzw,
    /// DEFLATE (zlib).
    Deflate,
    /// ZSTD: needs GDAL built with zstd (Debian's is).
    Zstd,
}

impl Compression {
    /// The GTiff `COMPRESS` value.
    pub fn gdal_name(self) -> &'static str {
        match self {
            Compression::None => "NONE",
            Compression::Lzw => "LZW",
            Compression::Deflate => "DEFLATE",
            Compression::Zstd => "ZSTD",
        }
    }
}

impl std::str::FromStr for Compression {
    type Err = Error;

    /// ```
    /// use rasterlab::prelude::*;
    /// assert_eq!("zstd".parse::<Compression>()?, Compression::Zstd);
    /// assert!("bogus".parse::<Compression>().is_err());
    /// # Ok::<(), rasterlab::Error>(())
    /// ```
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "none" => Ok(Compression::None),
            "lzw" => Ok(Compression::Lzw),
            "deflate" | "zlib" => Ok(Compression::Deflate),
            "zstd" => Ok(Compression::Zstd),
            _ => Err(Error::invalid(
                "compression",
                format!("{s:?}; choose one of none, lzw, deflate, zstd"),
            )),
        }
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.gdal_name())
    }
}

/// What a GeoTIFF output looks like.
#[derive(Debug, Clone, PartialEq)]
pub struct TiffSpec {
    /// Width and height in pixels.
    pub size: (usize, usize),
    /// Number of bands.
    pub bands: usize,
    /// Stored type of every band.
    pub dtype: crate::array::OutputType,
    /// Georeference carried over from the source.
    pub geo_transform: [f64; 6],
    /// CRS as WKT; empty for none.
    pub crs_wkt: String,
    /// Nodata value recorded in the file.
    pub nodata: Option<f64>,
    /// Tile compression.
    pub compression: Compression,
    /// Tile size (multiples of 16, as the TIFF spec requires).
    pub tile: (usize, usize),
    /// Threads GDAL may use to compress tiles.
    pub threads: usize,
    /// Band descriptions.
    pub band_names: Vec<String>,
}

/// Checks that `path` can be created: its folder exists, is a folder and is writable,
/// and `path` itself is not a folder. Runs before any computation starts.
pub fn check_output_path(path: &Path) -> Result<()> {
    let fail = |reason: String| Error::Output {
        path: path.to_path_buf(),
        reason,
    };
    if path.is_dir() {
        return Err(fail("it is a folder".into()));
    }
    let dir = parent_dir(path);
    if !dir.exists() {
        return Err(fail(format!("folder {} does not exist", dir.display())));
    }
    if !dir.is_dir() {
        return Err(fail(format!("{} is not a folder", dir.display())));
    }
    let probe = dir.join(format!(".rasterlab-probe-{}", std::process::id()));
    match std::fs::File::create(&probe) {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            Ok(())
        }
        Err(e) => Err(fail(format!(
            "folder {} is not writable ({e})",
            dir.display()
        ))),
    }
}

fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Creation options for a tiled GTiff, validated against the driver (GDAL only warns
/// about bad options and silently writes something else).
fn creation_options(spec: &TiffSpec) -> Result<RasterCreationOptions> {
    let _quiet = super::QuietGdal::new();
    let driver = DriverManager::get_driver_by_name("GTiff")
        .map_err(Error::gdal("loading the GTiff driver"))?;
    let (tw, th) = spec.tile;
    if tw == 0 || th == 0 || tw % 16 != 0 || th % 16 != 0 {
        return Err(Error::invalid(
            "tile size",
            format!("{tw} x {th}: tiles must be positive multiples of 16"),
        ));
    }
    let supported = driver
        .metadata_item("DMD_CREATIONOPTIONLIST", "")
        .unwrap_or_default();
    if !supported.contains(spec.compression.gdal_name()) {
        return Err(Error::invalid(
            "compression",
            format!(
                "this GDAL's GTiff driver does not offer {}",
                spec.compression
            ),
        ));
    }
    let mut opts = vec![
        "TILED=YES".to_string(),
        format!("BLOCKXSIZE={tw}"),
        format!("BLOCKYSIZE={th}"),
        format!("COMPRESS={}", spec.compression.gdal_name()),
        format!("NUM_THREADS={}", spec.threads.max(1)),
        "BIGTIFF=IF_SAFER".to_string(),
        "INTERLEAVE=BAND".to_string(),
    ];
    if spec.compression != Compression::None {
        // Predictors make smooth data compress better: floating-point or horizontal.
        let float = matches!(
            spec.dtype,
            crate::array::OutputType::Float32 | crate::array::OutputType::Float64
        );
        opts.push(if float { "PREDICTOR=3" } else { "PREDICTOR=2" }.into());
    }
    if spec.compression == Compression::Zstd {
        // GDAL's default level 9 is slow; level 1 gave a file 1.4 % larger in half the
        // time on the sample scene's Float32 NDI.
        opts.push("ZSTD_LEVEL=1".into());
    }
    let c_opts: Vec<CString> = opts
        .iter()
        .map(|o| CString::new(o.as_str()).map_err(|_| Error::invalid("creation option", o.clone())))
        .collect::<Result<_>>()?;
    let mut ptrs: Vec<*mut std::ffi::c_char> =
        c_opts.iter().map(|c| c.as_ptr().cast_mut()).collect();
    ptrs.push(std::ptr::null_mut());
    // SAFETY: a NULL-terminated list of valid C strings that outlive the call.
    let ok = unsafe { gdal_sys::GDALValidateCreationOptions(driver.c_driver(), ptrs.as_mut_ptr()) };
    if ok == 0 {
        return Err(Error::invalid("creation options", opts.join(" ")));
    }
    let mut list = RasterCreationOptions::new();
    for o in &opts {
        list.add_string(o)
            .map_err(Error::gdal("building creation options"))?;
    }
    Ok(list)
}

/// A GeoTIFF being written: the file lives under a temporary name in the target folder
/// until [`TiffWriter::finish`] renames it; dropping an unfinished writer deletes it.
pub struct TiffWriter {
    dataset: Option<Dataset>,
    tmp_path: PathBuf,
    final_path: PathBuf,
    size: (usize, usize),
}

impl TiffWriter {
    /// Creates the temporary file for `path`.
    pub fn create(path: impl AsRef<Path>, spec: &TiffSpec) -> Result<TiffWriter> {
        let _quiet = super::QuietGdal::new();
        let final_path = path.as_ref().to_path_buf();
        check_output_path(&final_path)?;
        if spec.bands == 0 {
            return Err(Error::invalid("output", "zero bands"));
        }
        let options = creation_options(spec)?;
        let name = final_path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "out.tif".into());
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let tmp_path = parent_dir(&final_path).join(format!(
            ".{name}.rasterlab-{}-{nanos}.tmp",
            std::process::id()
        ));
        let driver = DriverManager::get_driver_by_name("GTiff")
            .map_err(Error::gdal("loading the GTiff driver"))?;
        let output_error = |e: gdal::errors::GdalError| Error::Output {
            path: final_path.clone(),
            reason: e.to_string(),
        };
        let (w, h, n) = (spec.size.0, spec.size.1, spec.bands);
        use crate::array::OutputType as T;
        let created =
            match spec.dtype {
                T::Byte => {
                    driver.create_with_band_type_with_options::<u8, _>(&tmp_path, w, h, n, &options)
                }
                T::UInt16 => driver
                    .create_with_band_type_with_options::<u16, _>(&tmp_path, w, h, n, &options),
                T::Int16 => driver
                    .create_with_band_type_with_options::<i16, _>(&tmp_path, w, h, n, &options),
                T::Int32 => driver
                    .create_with_band_type_with_options::<i32, _>(&tmp_path, w, h, n, &options),
                T::Float32 => driver
                    .create_with_band_type_with_options::<f32, _>(&tmp_path, w, h, n, &options),
                T::Float64 => driver
                    .create_with_band_type_with_options::<f64, _>(&tmp_path, w, h, n, &options),
            };
        let mut ds = created.map_err(output_error)?;
        // From here on the temp file exists: hand it to the guard before anything can fail.
        let mut writer = TiffWriter {
            dataset: None,
            tmp_path,
            final_path,
            size: spec.size,
        };
        ds.set_geo_transform(&spec.geo_transform)
            .map_err(Error::gdal("setting the geotransform"))?;
        if !spec.crs_wkt.is_empty() {
            ds.set_projection(&spec.crs_wkt)
                .map_err(Error::gdal("setting the CRS"))?;
        }
        for b in 1..=spec.bands {
            let mut band = ds
                .rasterband(b)
                .map_err(Error::gdal("opening an output band"))?;
            band.set_no_data_value(spec.nodata)
                .map_err(Error::gdal("setting nodata"))?;
            if let Some(name) = spec.band_names.get(b - 1) {
                band.set_description(name)
                    .map_err(Error::gdal("naming a band"))?;
            }
        }
        writer.dataset = Some(ds);
        Ok(writer)
    }

    /// Writes `data` (row-major, `window.len()` values) into 1-based `band`; GDAL
    /// converts to the band's type (rounding and saturating for integers).
    pub fn write(&mut self, band: usize, window: Window, data: Vec<f32>) -> Result<()> {
        let _quiet = super::QuietGdal::new();
        if !window.fits(self.size.0, self.size.1) || data.len() != window.len() {
            return Err(Error::invalid(
                "output window",
                format!("{window} with {} values", data.len()),
            ));
        }
        let ds = self
            .dataset
            .as_ref()
            .ok_or_else(|| Error::invalid("output", "already closed"))?;
        let mut rb = ds
            .rasterband(band)
            .map_err(Error::gdal("opening an output band"))?;
        let mut buf = Buffer::new((window.width, window.height), data);
        rb.write(
            (window.x as isize, window.y as isize),
            (window.width, window.height),
            &mut buf,
        )
        .map_err(Error::gdal(format!("writing {window}")))
    }

    /// Flushes, closes (checking GDAL's result) and renames the file to its final name.
    pub fn finish(mut self) -> Result<PathBuf> {
        let _quiet = super::QuietGdal::new();
        if let Some(ds) = self.dataset.take() {
            ds.close().map_err(|e| Error::Output {
                path: self.final_path.clone(),
                reason: format!("closing failed: {e}"),
            })?;
        }
        std::fs::rename(&self.tmp_path, &self.final_path).map_err(|source| Error::Io {
            path: self.final_path.clone(),
            source,
        })?;
        Ok(self.final_path.clone())
    }
}

impl Drop for TiffWriter {
    fn drop(&mut self) {
        if self.dataset.take().is_some() || self.tmp_path.exists() {
            let _ = std::fs::remove_file(&self.tmp_path);
            let _ = std::fs::remove_file(self.tmp_path.with_extension("tmp.aux.xml"));
        }
    }
}
