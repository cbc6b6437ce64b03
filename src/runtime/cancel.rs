//! Stopping a run from outside: a signal handler, another thread, a time limit.

use std::sync::{Arc, Mutex, PoisonError};

use crate::error::{Error, Result};

/// A switch shared by a running computation and whoever may stop it.
///
/// Clones share one state. A run given a token (e.g. [`Save::cancel_on`]) checks it
/// before each chunk and once more before the output is renamed into place; once
/// cancelled, the run stops with [`Error::Cancelled`], its temporary file is removed
/// and nothing appears under the output name.
///
/// ```
/// use rasterlab::CancelToken;
/// let token = CancelToken::new();
/// let handle = token.clone();
/// assert!(token.check().is_ok());
/// handle.cancel("stopped by the user");
/// assert_eq!(token.reason().as_deref(), Some("stopped by the user"));
/// assert!(matches!(token.check(), Err(rasterlab::Error::Cancelled { .. })));
/// ```
///
/// [`Save::cancel_on`]: crate::array::Save::cancel_on
#[derive(Debug, Clone, Default)]
pub struct CancelToken {
    reason: Arc<Mutex<Option<String>>>,
}

impl CancelToken {
    /// A token that is not cancelled.
    pub fn new() -> CancelToken {
        CancelToken::default()
    }

    /// Cancels every run holding a clone of this token; the first reason is kept.
    pub fn cancel(&self, reason: impl Into<String>) {
        let mut slot = self.reason.lock().unwrap_or_else(PoisonError::into_inner);
        if slot.is_none() {
            *slot = Some(reason.into());
        }
    }

    /// Why the token was cancelled; `None` while it is not.
    pub fn reason(&self) -> Option<String> {
        self.reason
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// True once cancelled.
    pub fn is_cancelled(&self) -> bool {
        self.reason().is_some()
    }

    /// `Err(Error::Cancelled)` once cancelled.
    pub fn check(&self) -> Result<()> {
        match self.reason() {
            None => Ok(()),
            Some(reason) => Err(Error::Cancelled { reason }),
        }
    }
}
