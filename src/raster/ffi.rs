//! Calls into GDAL's C API that the `gdal` crate does not wrap: the per-thread error
//! handler and last error, the block cache size, a dataset's file list.

use std::path::PathBuf;

use gdal::Dataset;

/// Keeps GDAL from printing its own `ERROR n: ...` lines on stderr while alive, on this
/// thread (GDAL's handler stack is per thread): rasterlab turns failures into typed errors
/// that carry GDAL's message (`CPLGetLastErrorMsg` still records it), and in a notebook
/// the extra red lines only repeat them.
pub(crate) struct QuietGdal(std::marker::PhantomData<*const ()>);

impl QuietGdal {
    pub(crate) fn new() -> QuietGdal {
        // SAFETY: pushes a handler that GDAL provides; popped on this thread by `Drop`
        // (the marker keeps the guard on the thread that created it).
        unsafe { gdal_sys::CPLPushErrorHandler(Some(gdal_sys::CPLQuietErrorHandler)) };
        QuietGdal(std::marker::PhantomData)
    }
}

impl Drop for QuietGdal {
    fn drop(&mut self) {
        // SAFETY: pops the handler pushed by `new` on this same thread.
        unsafe { gdal_sys::CPLPopErrorHandler() };
    }
}

pub(crate) fn last_gdal_error(method: &'static str) -> gdal::errors::GdalError {
    // SAFETY: CPLGetLastErrorMsg returns a pointer to a thread-local, NUL-terminated buffer.
    let msg = unsafe { std::ffi::CStr::from_ptr(gdal_sys::CPLGetLastErrorMsg()) }
        .to_string_lossy()
        .into_owned();
    // SAFETY: plain accessors of thread-local error state.
    let (class, number) = unsafe {
        (
            gdal_sys::CPLGetLastErrorType(),
            gdal_sys::CPLGetLastErrorNo(),
        )
    };
    gdal::errors::GdalError::CplError {
        class,
        number,
        msg: if msg.is_empty() {
            format!("{method} failed")
        } else {
            msg
        },
    }
}

/// GDAL's block cache defaults to 5 % of RAM; chunks are read whole, so a small cache
/// costs no speed and keeps peak memory low (measured: 332 -> 148 MB). A user's
/// `GDAL_CACHEMAX` wins.
pub(crate) fn limit_gdal_cache() {
    if std::env::var_os("GDAL_CACHEMAX").is_none() {
        // SAFETY: sets a process-wide integer in GDAL.
        unsafe { gdal_sys::GDALSetCacheMax64(64 << 20) };
    }
}

/// `GDALGetFileList`: the files a dataset is made of.
pub(super) fn gdal_file_list(ds: &Dataset) -> Vec<PathBuf> {
    // SAFETY: a valid dataset handle; the list is a NULL-terminated array of C strings
    // owned by the caller and freed with CSLDestroy below.
    unsafe {
        let list = gdal_sys::GDALGetFileList(ds.c_dataset());
        if list.is_null() {
            return Vec::new();
        }
        let mut out = Vec::new();
        let mut i = 0;
        loop {
            let item = *list.add(i);
            if item.is_null() {
                break;
            }
            out.push(PathBuf::from(
                std::ffi::CStr::from_ptr(item)
                    .to_string_lossy()
                    .into_owned(),
            ));
            i += 1;
        }
        gdal_sys::CSLDestroy(list);
        out
    }
}
