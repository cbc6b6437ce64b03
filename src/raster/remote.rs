//! Remote rasters: `http://` and `https://` URLs and GDAL's network file systems
//! (`/vsicurl/`, `/vsis3/`, `/vsigs/`, `/vsiaz/`, ...).
//!
//! A URL opens as GDAL's `/vsicurl/URL`, which reads byte ranges: a Cloud-Optimized
//! GeoTIFF costs one request for its header, then one per tile a chunk touches. GDAL
//! keeps the header and the file's size per process, so the handle each worker thread
//! opens costs no request. The URL stays as the user gave it in band paths, reprs and
//! errors.
//!
//! While a remote name opens (and while a remote dataset is read), two GDAL options are
//! set on the calling thread only, and only when the user has not set them (environment
//! or `gdal::config`):
//! * `GDAL_DISABLE_READDIR_ON_OPEN=EMPTY_DIR`: no directory listing and no probing for
//!   side-car files (`.aux.xml`, `.ovr`, `.msk`, `.IMD`, ...): without it GDAL 3.6 sends
//!   45 requests to open a COG over HTTP, with it two (a `HEAD` and the header's range).
//!   Set per thread, not process-wide, so local files keep their side-cars.
//! * `CPL_DEBUG=ON`, captured and not printed: GDAL reports an HTTP error on a range
//!   request only as a debug line (`Got response_code=503`), which gives the status of
//!   [`Error::Remote`].

use std::cell::RefCell;
use std::ffi::{CStr, CString, c_char};
use std::path::{Path, PathBuf};

use gdal::Dataset;

use crate::error::{Error, Result};

/// GDAL's network file systems (a chained name such as `/vsizip//vsicurl/...` counts).
const NETWORK_FS: &[&str] = &[
    "/vsicurl",
    "/vsis3",
    "/vsigs",
    "/vsiaz",
    "/vsiadls",
    "/vsioss",
    "/vsiswift",
    "/vsihdfs",
    "/vsiwebhdfs",
];

/// `CPLE_HttpResponse` (11) up to `CPLE_AWSError` (17): failures of the network layer.
const HTTP_ERRORS: std::ops::RangeInclusive<i32> = 11..=17;

/// True for `http://` and `https://` URLs (any case of the scheme).
pub(crate) fn is_url(name: &str) -> bool {
    let lower = name.get(..8).unwrap_or(name).to_ascii_lowercase();
    lower.starts_with("http://") || lower.starts_with("https://")
}

/// True for a URL or a name on one of GDAL's network file systems (`/vsis3/...`,
/// `/vsis3_streaming/...`, `/vsicurl?url=...`, chained as `/vsizip//vsicurl/...`).
pub(crate) fn is_remote(path: &Path) -> bool {
    let name = path.to_string_lossy();
    let network = |fs: &&str| {
        name.match_indices(fs)
            .any(|(i, _)| matches!(name[i + fs.len()..].chars().next(), Some('/' | '?' | '_')))
    };
    is_url(&name) || (name.starts_with("/vsi") && NETWORK_FS.iter().any(network))
}

/// The name GDAL opens: `https://host/a.tif` -> `/vsicurl/https://host/a.tif`; other
/// names unchanged.
pub(crate) fn gdal_name(path: &Path) -> PathBuf {
    let name = path.to_string_lossy();
    if is_url(&name) {
        PathBuf::from(format!("/vsicurl/{name}"))
    } else {
        path.to_path_buf()
    }
}

/// Opens a remote raster (`is_remote(path)`); failures of the network are
/// [`Error::Remote`] naming `path` as given and the HTTP status when there is one.
pub(crate) fn open(path: &Path, options: gdal::DatasetOptions) -> Result<Dataset> {
    let name = gdal_name(path);
    let capture = Capture::new();
    match Dataset::open_ex(&name, options) {
        Ok(ds) => Ok(ds),
        Err(e) => {
            let failure = capture.failure();
            forget(&name);
            let gdal_said = match &e {
                gdal::errors::GdalError::NullPointer { msg, .. } if msg.trim().is_empty() => {
                    "GDAL recognizes no raster format in it".to_string()
                }
                _ => crate::error::gdal_message(&e),
            };
            // The server answered, but not with a raster (an HTML page, say).
            Err(failure
                .into_error(path, None, &gdal_said)
                .unwrap_or_else(|| Error::NotARaster {
                    path: path.to_path_buf(),
                    reason: gdal_said,
                }))
        }
    }
}

/// For a failed read of the remote raster `path` (`context`: what was read): an
/// [`Error::Remote`] if the network failed while `capture` listened, else `None`.
pub(crate) fn read_failure(
    capture: &Capture,
    path: &Path,
    context: &str,
    gdal_said: &str,
) -> Option<Error> {
    let error = capture
        .failure()
        .into_error(path, Some(context), gdal_said)?;
    // A failure GDAL cached (the file "does not exist") must not outlive this run.
    forget(&gdal_name(path));
    Some(error)
}

/// Drops what GDAL cached about `name` (its size, that it does not exist), so that
/// opening it again asks the server again.
fn forget(name: &Path) {
    if let Ok(c) = CString::new(name.to_string_lossy().as_bytes()) {
        // SAFETY: a NUL-terminated string valid for the call.
        unsafe { gdal_sys::VSICurlPartialClearCache(c.as_ptr()) };
    }
}

/// One message GDAL reported while a [`Capture`] was listening.
#[derive(Debug, Clone)]
struct Message {
    class: gdal_sys::CPLErr::Type,
    number: i32,
    text: String,
}

/// What the handler records into; boxed so its address is stable while pushed.
struct Sink {
    messages: RefCell<Vec<Message>>,
    /// Forward debug lines to GDAL's default handler (the user turned `CPL_DEBUG` on).
    forward_debug: bool,
}

/// Failures and debug lines kept at most (debug lines: the newest).
const MAX_MESSAGES: usize = 64;

unsafe extern "C" fn record(
    class: gdal_sys::CPLErr::Type,
    number: gdal_sys::CPLErrorNum,
    message: *const c_char,
) {
    // SAFETY: GDAL calls the handler on the thread that pushed it, with the user data
    // given to CPLPushErrorHandlerEx: the boxed sink of a live `Capture`.
    let sink = unsafe { gdal_sys::CPLGetErrorHandlerUserData() } as *const Sink;
    if sink.is_null() || message.is_null() {
        return;
    }
    // SAFETY: `sink` is alive until the guard pops this handler; `message` is a
    // NUL-terminated string valid for this call. Nothing here panics (try_borrow_mut,
    // to_string_lossy), so no unwind crosses the C frame.
    unsafe {
        let sink = &*sink;
        if class == gdal_sys::CPLErr::CE_Debug && sink.forward_debug {
            gdal_sys::CPLDefaultErrorHandler(class, number, message);
        }
        let text = CStr::from_ptr(message).to_string_lossy().trim().to_string();
        if let Ok(mut messages) = sink.messages.try_borrow_mut() {
            if messages.len() >= MAX_MESSAGES {
                // Keep every failure; drop the oldest debug line.
                match messages
                    .iter()
                    .position(|m| m.class == gdal_sys::CPLErr::CE_Debug)
                {
                    Some(i) => {
                        messages.remove(i);
                    }
                    None => return,
                }
            }
            messages.push(Message {
                class,
                number,
                text,
            });
        }
    }
}

/// Sets a GDAL option on this thread if the user has not set it anywhere; true if set.
fn set_if_unset(key: &CStr, value: &CStr) -> bool {
    // SAFETY: NUL-terminated strings valid for the calls; GDAL copies the value.
    unsafe {
        if gdal_sys::CPLGetConfigOption(key.as_ptr(), std::ptr::null()).is_null() {
            gdal_sys::CPLSetThreadLocalConfigOption(key.as_ptr(), value.as_ptr());
            true
        } else {
            false
        }
    }
}

/// While alive, on this thread: GDAL's messages are recorded instead of printed, and
/// the remote-friendly options are set (see the module docs). Dropped on the thread
/// that made it.
pub(crate) struct Capture {
    sink: Box<Sink>,
    /// Options this guard set (thread-local), unset on drop.
    set: Vec<&'static CStr>,
    _thread_bound: std::marker::PhantomData<*const ()>,
}

impl Capture {
    pub(crate) fn new() -> Capture {
        let mut set = Vec::new();
        if set_if_unset(c"GDAL_DISABLE_READDIR_ON_OPEN", c"EMPTY_DIR") {
            set.push(c"GDAL_DISABLE_READDIR_ON_OPEN");
        }
        let forced_debug = set_if_unset(c"CPL_DEBUG", c"ON");
        if forced_debug {
            set.push(c"CPL_DEBUG");
        }
        let sink = Box::new(Sink {
            messages: RefCell::new(Vec::new()),
            // A `CPL_DEBUG` found set is the user's unless an enclosing guard forced it.
            forward_debug: !forced_debug && !DEBUG_FORCED.get(),
        });
        if forced_debug {
            DEBUG_FORCED.set(true);
        }
        let data = std::ptr::from_ref(&*sink).cast_mut().cast();
        // SAFETY: the handler reads `data` only while pushed; `Drop` pops it on this
        // thread before the box is freed.
        unsafe { gdal_sys::CPLPushErrorHandlerEx(Some(record), data) };
        Capture {
            sink,
            set,
            _thread_bound: std::marker::PhantomData,
        }
    }

    /// What the network said, from the messages recorded so far (and forgets them).
    fn failure(&self) -> Failure {
        let messages = std::mem::take(&mut *self.sink.messages.borrow_mut());
        Failure::from_messages(&messages)
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        // SAFETY: pops the handler pushed by `new` on this same thread, then unsets the
        // thread-local options this guard set (a NULL value removes the key).
        unsafe {
            gdal_sys::CPLPopErrorHandler();
            for key in &self.set {
                gdal_sys::CPLSetThreadLocalConfigOption(key.as_ptr(), std::ptr::null());
            }
        }
        if self.set.contains(&c"CPL_DEBUG") {
            DEBUG_FORCED.set(false);
        }
    }
}

thread_local! {
    /// A live `Capture` on this thread set `CPL_DEBUG` (so a nested one must not forward).
    static DEBUG_FORCED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// The network's part of a failure: the HTTP status and GDAL's words, if any.
#[derive(Debug, Clone, Default)]
struct Failure {
    /// The HTTP status of the failing request (400 and above).
    status: Option<u16>,
    /// GDAL's message about the network (`HTTP response code: 404`, `CURL error: ...`).
    message: Option<String>,
}

impl Failure {
    fn from_messages(messages: &[Message]) -> Failure {
        let is_failure = |m: &&Message| {
            m.class == gdal_sys::CPLErr::CE_Failure || m.class == gdal_sys::CPLErr::CE_Fatal
        };
        let network: Vec<&Message> = messages
            .iter()
            .filter(is_failure)
            .filter(|m| HTTP_ERRORS.contains(&m.number) || http_status(&m.text).is_some())
            .collect();
        // A failure's words first; else the debug line of a failed range request.
        let status = network
            .iter()
            .find_map(|m| http_status(&m.text))
            .or_else(|| {
                messages
                    .iter()
                    .rev()
                    .filter(|m| m.class == gdal_sys::CPLErr::CE_Debug)
                    .find_map(|m| debug_status(&m.text))
            });
        Failure {
            status,
            message: network.first().map(|m| m.text.clone()),
        }
    }

    /// True when the network failed (an HTTP error or a connection failure).
    fn is_network(&self) -> bool {
        self.status.is_some() || self.message.is_some()
    }

    /// [`Error::Remote`] for a network failure of `path`, `None` when the network did
    /// not fail. `context` says what was being read, `gdal_said` is GDAL's last message.
    fn into_error(self, path: &Path, context: Option<&str>, gdal_said: &str) -> Option<Error> {
        if !self.is_network() {
            return None;
        }
        let url = path.to_string_lossy().into_owned();
        let mut reason = match (self.message, self.status) {
            (Some(m), _) => m,
            (None, Some(s)) => {
                format!("a range request was answered with HTTP {s} (GDAL: {gdal_said})")
            }
            (None, None) => gdal_said.to_string(),
        };
        // GDAL quotes its own name (`/vsicurl/https://...`): show the URL as given.
        let gdal = gdal_name(path).to_string_lossy().into_owned();
        if gdal != url {
            reason = reason.replace(&gdal, &url);
        }
        if let Some(context) = context {
            reason = format!("{context}: {reason}");
        }
        if matches!(self.status, Some(401 | 403)) && !is_url(&url) {
            reason.push_str(
                "; for a public bucket set AWS_NO_SIGN_REQUEST=YES (and AWS_REGION), \
                 else give credentials",
            );
        }
        Some(Error::Remote {
            url,
            status: self.status,
            reason,
        })
    }
}

/// The status in GDAL's failure messages: `HTTP response code: 404`, `HTTP error code: 500`.
fn http_status(text: &str) -> Option<u16> {
    let lower = text.to_ascii_lowercase();
    ["response code:", "error code:", "error code :"]
        .iter()
        .find_map(|key| lower.find(key).map(|i| &lower[i + key.len()..]))
        .and_then(leading_status)
}

/// The status of a debug line such as `VSICURL: Got response_code=503`.
fn debug_status(text: &str) -> Option<u16> {
    let i = text.find("response_code=")?;
    leading_status(&text[i + "response_code=".len()..])
}

/// An HTTP error status (400..=599) at the start of `s`, after blanks.
fn leading_status(s: &str) -> Option<u16> {
    let digits: String = s
        .trim_start()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits
        .parse::<u16>()
        .ok()
        .filter(|s| (400..=599).contains(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(class: gdal_sys::CPLErr::Type, number: i32, text: &str) -> Message {
        Message {
            class,
            number,
            text: text.into(),
        }
    }

    #[test]
    fn urls_and_network_names_are_remote() {
        for name in [
            "http://h/a.tif",
            "HTTPS://h/a.tif",
            "/vsicurl/https://h/a.tif",
            "/vsis3/bucket/a.tif",
            "/vsis3_streaming/bucket/a.tif",
            "/vsicurl?url=http%3A%2F%2Fh%2Fa.tif",
            "/vsizip//vsicurl/http://h/a.zip/a.tif",
        ] {
            assert!(is_remote(Path::new(name)), "{name}");
        }
        for name in [
            "data/a.tif",
            "data/vsis3/a.tif",
            "/vsizip/a.zip/a.tif",
            "/vsizip/vsis3.zip/a.tif",
            "NETCDF:\"a.nc\":t",
            "http.tif",
        ] {
            assert!(!is_remote(Path::new(name)), "{name}");
        }
        assert_eq!(
            gdal_name(Path::new("https://h/a.tif")),
            Path::new("/vsicurl/https://h/a.tif")
        );
        assert_eq!(
            gdal_name(Path::new("/vsis3/b/a.tif")),
            Path::new("/vsis3/b/a.tif")
        );
    }

    #[test]
    fn status_from_failures_or_range_debug_lines() {
        use gdal_sys::CPLErr::{CE_Debug, CE_Failure};
        let f = Failure::from_messages(&[msg(CE_Failure, 11, "HTTP response code: 404")]);
        assert_eq!(f.status, Some(404));
        let f = Failure::from_messages(&[
            msg(CE_Debug, 0, "VSICURL: GetFileSize(x)=10 response_code=200"),
            msg(CE_Debug, 0, "VSICURL: Got response_code=503"),
            msg(
                CE_Failure,
                4,
                "`x' not recognized as a supported file format.",
            ),
        ]);
        assert_eq!(f.status, Some(503));
        assert!(f.message.is_none());
        let f = Failure::from_messages(&[msg(
            CE_Failure,
            11,
            "CURL error: Failed to connect to 127.0.0.1 port 9: Couldn't connect to server",
        )]);
        assert_eq!(f.status, None);
        assert!(f.is_network());
        let f = Failure::from_messages(&[msg(CE_Failure, 4, "not recognized")]);
        assert!(!f.is_network());
        let e = Failure::from_messages(&[msg(CE_Debug, 0, "Got response_code=500")])
            .into_error(
                Path::new("http://h/a.tif"),
                Some("reading x 0..1, y 0..1"),
                "/vsicurl/http://h/a.tif, band 1: IReadBlock failed",
            )
            .expect("a network failure");
        assert_eq!(
            e.to_string(),
            "cannot read remote raster http://h/a.tif: HTTP 500 Internal Server Error: reading \
             x 0..1, y 0..1: a range request was answered with HTTP 500 (GDAL: \
             http://h/a.tif, band 1: IReadBlock failed)"
        );
    }

    #[test]
    fn options_are_set_on_this_thread_only_while_capturing() {
        let get = |key: &CStr| {
            // SAFETY: a NUL-terminated key; the result is copied at once.
            let v = unsafe { gdal_sys::CPLGetConfigOption(key.as_ptr(), std::ptr::null()) };
            (!v.is_null()).then(|| {
                // SAFETY: GDAL returns a NUL-terminated string it owns; copied before any
                // other config call could free it.
                unsafe { CStr::from_ptr(v) }.to_string_lossy().into_owned()
            })
        };
        let key = c"GDAL_DISABLE_READDIR_ON_OPEN";
        if get(key).is_some() {
            return; // set by whoever runs the tests: nothing to check
        }
        {
            let _capture = Capture::new();
            assert_eq!(get(key).as_deref(), Some("EMPTY_DIR"));
            std::thread::spawn(move || assert_eq!(get(key), None))
                .join()
                .expect("other thread");
        }
        assert_eq!(get(key), None);
    }
}
