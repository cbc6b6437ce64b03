//! Catching panics of user code quietly.
//!
//! The executor turns a panic in a user function into [`Error::Panic`](crate::Error::Panic)
//! naming the chunk, and the kernel lives on. Rust's default panic hook would still print
//! `thread '<unnamed>' panicked at ...` (and, with `RUST_BACKTRACE` set as evcxr does, a
//! backtrace of rayon's and evcxr's generated frames) before the one useful line reaches the
//! notebook. Here a hook layer stays silent for panics that [`catch`] is about to catch on
//! the same thread, and keeps where the panic happened for the error message. Every other
//! panic goes to the previous hook unchanged.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::panic::{AssertUnwindSafe, PanicHookInfo};
use std::sync::Once;

thread_local! {
    /// Set while this thread runs code inside [`catch`].
    static CATCHING: Cell<bool> = const { Cell::new(false) };
    /// Where the last quietly caught panic on this thread happened.
    static LOCATION: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// The hook layer is process-wide, so it is installed once per loaded copy of this
/// crate (each evcxr cell that links rasterlab anew adds at most one thin layer that
/// checks its own thread-local flag and otherwise hands the panic on). A `Once` is the
/// one static here: installing per run would stack a layer per run.
static INSTALL: Once = Once::new();

fn install() {
    INSTALL.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info: &PanicHookInfo<'_>| {
            if CATCHING.with(Cell::get) {
                let at = info
                    .location()
                    .map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()));
                LOCATION.with(|slot| *slot.borrow_mut() = at);
            } else {
                previous(info);
            }
        }));
    });
}

/// A caught panic: its message and, when known, `file:line:column` of the panic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Caught {
    /// The panic message (`"index out of bounds: ..."`).
    pub message: String,
    /// Where it panicked.
    pub location: Option<String>,
}

impl Caught {
    /// `message (at file:line:column)`, the text of [`Error::Panic`](crate::Error::Panic).
    pub fn describe(&self) -> String {
        match &self.location {
            Some(at) => format!("{} (at {at})", self.message),
            None => self.message.clone(),
        }
    }
}

/// Runs `f`, catching a panic without printing it. Nested calls keep the outer one's
/// quiet state.
pub(crate) fn catch<R>(f: impl FnOnce() -> R) -> std::result::Result<R, Caught> {
    install();
    let was = CATCHING.with(|c| c.replace(true));
    let result = std::panic::catch_unwind(AssertUnwindSafe(f));
    CATCHING.with(|c| c.set(was));
    result.map_err(|payload| Caught {
        message: panic_message(payload.as_ref()),
        location: LOCATION.with(|slot| slot.borrow_mut().take()),
    })
}

/// Text of a panic payload.
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic payload".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_caught_panic_keeps_message_and_location() {
        let caught = catch(|| -> u32 { panic!("bad block {}", 7) }).unwrap_err();
        assert_eq!(caught.message, "bad block 7");
        let at = caught
            .location
            .clone()
            .expect("location recorded by the hook");
        assert!(at.starts_with(file!()), "{at}");
        assert!(caught.describe().starts_with("bad block 7 (at "));
        // The flag is reset: a value comes back untouched.
        assert_eq!(catch(|| 5), Ok(5));
        assert!(!CATCHING.with(Cell::get));
    }
}
