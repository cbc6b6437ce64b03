//! NetCDF `(time, y, x)` variables read through GDAL's multidimensional API.
//!
//! GDAL's classic netCDF driver serves a contiguous variable as one band per time step
//! with one-row blocks, so a chunk of 36 rows x 303 days costs about 11,000 driver calls,
//! each behind the driver's process-wide lock (libnetcdf is not thread-safe). A
//! multidimensional read fetches the same `[time, y, x]` slab in one call. [`Cube`] is
//! that fast path; [`Reader`](super::Reader) falls back to the classic API whenever a
//! variable is not a plain 3-D grid or check reads cannot tell how the classic view orders
//! its rows.

use std::ffi::CString;
use std::path::Path;
use std::ptr;

use gdal::{Dataset, DatasetOptions, GdalOpenFlags, Metadata};

use super::gdal_types;
use crate::core::dtype::Element;
use crate::runtime::grid::Window;

/// One worker's handle on a 3-D NetCDF variable, band `k` of the classic view being time
/// step `k - 1`.
pub(crate) struct Cube {
    array: gdal_sys::GDALMDArrayH,
    /// Sizes along time, y and x.
    dims: [usize; 3],
    /// The file stores rows south first and GDAL's classic view flips them.
    bottom_up: bool,
    // Dropped after `array` (see `Drop`): the array's shared netCDF handle lives here.
    _dataset: Dataset,
}

// SAFETY: the handle is owned by one `Cube` and used through `&mut`-free calls by the one
// worker thread that owns the `Reader`; GDAL objects may move between threads as long as
// they are not used concurrently, which `Cube: !Sync` guarantees.
unsafe impl Send for Cube {}

impl Drop for Cube {
    fn drop(&mut self) {
        // SAFETY: `array` came from GDALGroupOpenMDArray and is released exactly once.
        unsafe { gdal_sys::GDALMDArrayRelease(self.array) };
    }
}

impl Cube {
    /// The multidimensional view of `classic` (a netCDF dataset `NETCDF:"file":var` or a
    /// single-variable file), or `None` when it does not apply. Never an error: the
    /// classic path always works.
    pub(crate) fn open(path: &Path, classic: &Dataset) -> Option<Cube> {
        // One step per file (daily files opened as a glob): the slab would save little,
        // and each worker would pay a second open per file.
        if !classic.driver().short_name().eq_ignore_ascii_case("netCDF")
            || classic.raster_count() < 2
        {
            return None;
        }
        let _quiet = super::QuietGdal::new();
        let band = classic.rasterband(1).ok()?;
        let var = band.metadata_item("NETCDF_VARNAME", "")?;
        let file = super::source_file(path);
        let dataset = Dataset::open_ex(
            &file,
            DatasetOptions {
                open_flags: GdalOpenFlags::GDAL_OF_MULTIDIM_RASTER
                    | GdalOpenFlags::GDAL_OF_READONLY,
                ..Default::default()
            },
        )
        .ok()?;
        let cvar = CString::new(var).ok()?;
        // SAFETY: the root group is released right after the array is opened; GDAL keeps
        // what the array needs alive through shared ownership.
        let array = unsafe {
            let root = gdal_sys::GDALDatasetGetRootGroup(dataset.c_dataset());
            if root.is_null() {
                return None;
            }
            let a = gdal_sys::GDALGroupOpenMDArray(root, cvar.as_ptr(), ptr::null_mut());
            gdal_sys::GDALGroupRelease(root);
            a
        };
        if array.is_null() {
            return None;
        }
        let mut cube = Cube {
            array,
            dims: [0; 3],
            bottom_up: false,
            _dataset: dataset,
        };
        let dims = cube.shape()?;
        let (w, h) = classic.raster_size();
        if dims != [classic.raster_count(), h, w] {
            return None;
        }
        cube.dims = dims;
        cube.bottom_up = cube.orientation(classic)?;
        Some(cube)
    }

    /// Dimension sizes when the array has exactly three.
    fn shape(&self) -> Option<[usize; 3]> {
        let mut n = 0usize;
        // SAFETY: GDAL returns `n` dimension handles, released below with the same count.
        unsafe {
            let dims = gdal_sys::GDALMDArrayGetDimensions(self.array, &mut n);
            if dims.is_null() {
                return None;
            }
            let sizes = (n == 3).then(|| {
                let handles = std::slice::from_raw_parts(dims, n);
                [0, 1, 2].map(|i| gdal_sys::GDALDimensionGetSize(handles[i]) as usize)
            });
            gdal_sys::GDALReleaseDimensions(dims, n);
            sizes
        }
    }

    /// Whether GDAL's classic view flips the file's rows, found by comparing sampled rows
    /// of the first, middle and last steps with the classic driver: `None` when neither
    /// order matches, or both do (data symmetric top to bottom at every sampled row), so
    /// that such files keep the classic path. GDAL's own rule depends on whether it takes
    /// the coordinates as georeferencing and on `GDAL_NETCDF_BOTTOMUP`; asking the data
    /// needs no copy of that rule.
    fn orientation(&self, classic: &Dataset) -> Option<bool> {
        let [nt, h, w] = self.dims;
        let mut rows = vec![0, 1, h / 3, h / 2, 2 * h / 3, h.saturating_sub(2), h - 1];
        let mut steps = vec![0, nt / 2, nt - 1];
        for v in [&mut rows, &mut steps] {
            v.sort_unstable();
            v.dedup();
        }
        let same = |a: &[f64], b: &[f64]| {
            a.iter()
                .zip(b)
                .all(|(x, y)| x == y || (x.is_nan() && y.is_nan()))
        };
        let (mut as_stored, mut flipped) = (true, true);
        let (mut file_row, mut mirror) = (vec![0f64; w], vec![0f64; w]);
        for &t in &steps {
            let band = classic.rasterband(t + 1).ok()?;
            for &r in rows.iter().filter(|&&r| r < h) {
                let view = band
                    .read_as::<f64>((0, r as isize), (w, 1), (w, 1), None)
                    .ok()?;
                let ok = read_raw(
                    self.array,
                    &[t as u64, r as u64, 0],
                    &[1, 1, w],
                    &mut file_row,
                ) && read_raw(
                    self.array,
                    &[t as u64, (h - 1 - r) as u64, 0],
                    &[1, 1, w],
                    &mut mirror,
                );
                if !ok {
                    return None;
                }
                as_stored &= same(view.data(), &file_row);
                flipped &= same(view.data(), &mirror);
            }
        }
        match (as_stored, flipped) {
            (true, false) => Some(false),
            (false, true) => Some(true),
            _ => None,
        }
    }

    /// Reads time steps `t0..t0 + n` of `window` (classic-view coordinates) into `out`,
    /// step-major; `false` if GDAL refused.
    pub(crate) fn read<T: Element>(
        &self,
        window: Window,
        t0: usize,
        n: usize,
        out: &mut [T],
    ) -> bool {
        let [nt, h, _] = self.dims;
        let (rows, cols) = (window.height, window.width);
        if t0 + n > nt || out.len() != n * rows * cols || window.y + rows > h {
            return false;
        }
        let y0 = if self.bottom_up {
            h - window.y - rows
        } else {
            window.y
        };
        let start = [t0 as u64, y0 as u64, window.x as u64];
        if !read_raw(self.array, &start, &[n, rows, cols], out) {
            return false;
        }
        if self.bottom_up {
            for step in out.chunks_exact_mut(rows * cols) {
                for r in 0..rows / 2 {
                    let (top, bottom) = step.split_at_mut((rows - 1 - r) * cols);
                    top[r * cols..(r + 1) * cols].swap_with_slice(&mut bottom[..cols]);
                }
            }
        }
        true
    }
}

/// `GDALMDArrayRead` of a dense C-order block into `out` (converted to `T`).
fn read_raw<T: Element>(
    array: gdal_sys::GDALMDArrayH,
    start: &[u64],
    count: &[usize],
    out: &mut [T],
) -> bool {
    debug_assert_eq!(count.iter().product::<usize>(), out.len());
    // SAFETY: `out` holds exactly prod(count) values of T, the buffer type is T's, and
    // the default (dense, C-order) strides are requested with null step/stride pointers.
    unsafe {
        let dtype = gdal_sys::GDALExtendedDataTypeCreate(gdal_types::ordinal::<T>());
        if dtype.is_null() {
            return false;
        }
        let ok = gdal_sys::GDALMDArrayRead(
            array,
            start.as_ptr(),
            count.as_ptr(),
            ptr::null(),
            ptr::null(),
            dtype,
            out.as_mut_ptr().cast(),
            out.as_ptr().cast(),
            std::mem::size_of_val(out),
        );
        gdal_sys::GDALExtendedDataTypeRelease(dtype);
        ok != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 3 x 4 x 5 variable `v = 100 t + 10 row + col` in file order, written by `ncgen`.
    fn write(dir: &Path, name: &str, y_increasing: bool, georef: bool) -> std::path::PathBuf {
        write_values(dir, name, y_increasing, georef, |t, r, c| {
            100 * t + 10 * r + c
        })
    }

    fn write_values(
        dir: &Path,
        name: &str,
        y_increasing: bool,
        georef: bool,
        value: impl Fn(usize, usize, usize) -> usize + Copy,
    ) -> std::path::PathBuf {
        let attrs = if georef {
            " y:units = \"m\" ;\n y:standard_name = \"projection_y_coordinate\" ;\n \
             x:units = \"m\" ;\n x:standard_name = \"projection_x_coordinate\" ;\n"
        } else {
            ""
        };
        let ys = if y_increasing {
            "0.5, 1.5, 2.5, 3.5"
        } else {
            "3.5, 2.5, 1.5, 0.5"
        };
        let v: Vec<String> = (0..3)
            .flat_map(|t| (0..4).flat_map(move |r| (0..5).map(move |c| value(t, r, c).to_string())))
            .collect();
        let cdl = format!(
            "netcdf c {{\ndimensions:\n time = 3 ;\n y = 4 ;\n x = 5 ;\nvariables:\n \
             double time(time) ;\n time:units = \"days since 2020-01-01\" ;\n \
             double y(y) ;\n double x(x) ;\n{attrs} float v(time, y, x) ;\n\
             data:\n time = 0, 1, 2 ;\n y = {ys} ;\n x = 0.5, 1.5, 2.5, 3.5, 4.5 ;\n v = {} ;\n}}\n",
            v.join(", ")
        );
        let cdl_path = dir.join(format!("{name}.cdl"));
        let nc = dir.join(format!("{name}.nc"));
        std::fs::write(&cdl_path, cdl).expect("cdl");
        let ok = std::process::Command::new("ncgen")
            .arg("-o")
            .arg(&nc)
            .arg(&cdl_path)
            .status()
            .expect("ncgen (netcdf-bin)");
        assert!(ok.success());
        nc
    }

    #[test]
    fn data_symmetric_top_to_bottom_keeps_the_classic_path() {
        // Rows 0..4 equal rows 3..0: no read can tell the order, so no fast path.
        let dir = tempfile::tempdir().expect("tempdir");
        let nc = write_values(dir.path(), "sym", false, true, |t, r, c| {
            100 * t + 10 * r.min(3 - r) + c
        });
        let name = std::path::PathBuf::from(format!("NETCDF:\"{}\":v", nc.display()));
        let classic = super::super::open_dataset(&name).expect("open");
        assert!(Cube::open(&name, &classic).is_none());
    }

    #[test]
    fn slabs_match_the_classic_driver_both_row_orders() {
        let dir = tempfile::tempdir().expect("tempdir");
        // Without georeferencing GDAL flips rows whatever the y order: the check read
        // finds out; with it, the y order decides.
        for (y_increasing, georef) in [(false, true), (true, true), (false, false), (true, false)] {
            let nc = write(
                dir.path(),
                &format!("c{y_increasing}{georef}"),
                y_increasing,
                georef,
            );
            let name = std::path::PathBuf::from(format!("NETCDF:\"{}\":v", nc.display()));
            let classic = super::super::open_dataset(&name).expect("open");
            let cube = Cube::open(&name, &classic).expect("the fast path applies");
            if georef {
                assert_eq!(cube.bottom_up, y_increasing);
            }
            let window = Window::new(1, 1, 3, 2);
            let mut fast = vec![0f32; 2 * 6];
            assert!(cube.read(window, 1, 2, &mut fast));
            for (k, t) in [1usize, 2].into_iter().enumerate() {
                let band = classic.rasterband(t + 1).expect("band");
                let slow = band
                    .read_as::<f32>((1, 1), (3, 2), (3, 2), None)
                    .expect("read");
                assert_eq!(
                    &fast[k * 6..(k + 1) * 6],
                    slow.data(),
                    "y increasing {y_increasing}, t {t}"
                );
            }
            // Out-of-range requests are refused, not read past the end.
            assert!(!cube.read(Window::new(0, 3, 5, 2), 0, 1, &mut [0f32; 10]));
            assert!(!cube.read(window, 2, 2, &mut fast));
        }
    }
}
