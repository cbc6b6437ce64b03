//! SIGINT, SIGTERM and SIGHUP end a run without leaving anything behind.
//!
//! The first signal cancels the run's [`CancelToken`]: a save stops at its next chunk,
//! removes its temporary file and the process exits with the shell's code for the
//! signal (130 for SIGINT, 143 for SIGTERM, 129 for SIGHUP). Work that holds no
//! temporary file and does not look at the token (a k-means fit) is ended after a short
//! grace period with the same code. A second signal ends the process at once; anything
//! it leaves is recognised as debris of a dead process and removed by the next run that
//! writes into the same folder.

use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::Duration;

use rasterlab::CancelToken;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

/// How long a cancelled run may take to clean up before the process ends anyway.
const GRACE: Duration = Duration::from_secs(3);

/// The signals this process listens to, and what it has received.
pub struct Interrupts {
    token: CancelToken,
    received: Arc<AtomicI32>,
}

fn name(signal: i32) -> &'static str {
    match signal {
        SIGINT => "SIGINT",
        SIGTERM => "SIGTERM",
        SIGHUP => "SIGHUP",
        _ => "a signal",
    }
}

impl Interrupts {
    /// Starts listening (a background thread; the handlers only wake it up).
    pub fn install() -> std::io::Result<Interrupts> {
        let mut signals = Signals::new([SIGINT, SIGTERM, SIGHUP])?;
        let token = CancelToken::new();
        let received = Arc::new(AtomicI32::new(0));
        let (t, r) = (token.clone(), received.clone());
        std::thread::Builder::new()
            .name("rasterlab-signals".into())
            .spawn(move || {
                for signal in signals.forever() {
                    if r.swap(signal, Ordering::SeqCst) != 0 {
                        // Second signal: the user wants out now.
                        std::process::exit(128 + signal);
                    }
                    t.cancel(format!("interrupted by {}", name(signal)));
                    std::thread::spawn(move || {
                        std::thread::sleep(GRACE);
                        std::process::exit(128 + signal);
                    });
                }
            })?;
        Ok(Interrupts { token, received })
    }

    /// The token every run of this process is given.
    pub fn token(&self) -> &CancelToken {
        &self.token
    }

    /// The exit status for the signal received, if any (128 + its number).
    pub fn exit_code(&self) -> Option<u8> {
        match self.received.load(Ordering::SeqCst) {
            0 => None,
            s => u8::try_from(128 + s).ok(),
        }
    }
}
