//! One progress mechanism for every long call: an `indicatif` bar on a terminal,
//! throttled complete lines on stdout in a notebook (evcxr streams stdout line by line and
//! holds back `\r` redraws), or nothing.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

/// How a long call reports progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ProgressMode {
    /// Lines inside evcxr, a bar on a terminal, nothing otherwise.
    #[default]
    Auto,
    /// An `indicatif` bar on stderr.
    Bar,
    /// Throttled complete lines on stdout: first, about one per second, last.
    Lines,
    /// No output.
    Silent,
}

impl ProgressMode {
    /// What `Auto` means here: `Lines` inside the evcxr kernel (it sets
    /// `EVCXR_IS_RUNTIME` in the process that runs cells), `Bar` on a terminal, else
    /// `Silent`.
    ///
    /// ```
    /// use rasterlab::prelude::*;
    /// assert_eq!(ProgressMode::Silent.resolve(), ProgressMode::Silent);
    /// assert_ne!(ProgressMode::Auto.resolve(), ProgressMode::Auto);
    /// ```
    pub fn resolve(self) -> ProgressMode {
        match self {
            ProgressMode::Auto if std::env::var_os("EVCXR_IS_RUNTIME").is_some() => {
                ProgressMode::Lines
            }
            ProgressMode::Auto if std::io::stderr().is_terminal() => ProgressMode::Bar,
            ProgressMode::Auto => ProgressMode::Silent,
            other => other,
        }
    }
}

/// Progress of one job of `total` steps.
///
/// ```
/// use rasterlab::runtime::progress::{Progress, ProgressMode};
/// let mut p = Progress::new(ProgressMode::Silent, "demo", "chunks", 10);
/// p.inc(10);
/// p.finish();
/// assert_eq!(p.done(), 10);
/// ```
pub struct Progress {
    mode: ProgressMode,
    label: String,
    unit: String,
    total: u64,
    done: u64,
    start: Instant,
    last_line: Option<Instant>,
    bar: Option<ProgressBar>,
    finished: bool,
    message: String,
}

impl Progress {
    /// Minimum time between two progress lines in a notebook.
    pub const LINE_INTERVAL: Duration = Duration::from_secs(1);

    /// Starts reporting `label`, a job of `total` `unit`s.
    pub fn new(mode: ProgressMode, label: &str, unit: &str, total: u64) -> Progress {
        let mode = mode.resolve();
        let bar = (mode == ProgressMode::Bar).then(|| {
            let bar = ProgressBar::new(total);
            let template = format!(
                "{{prefix}} [{{bar:30}}] {{pos}}/{{len}} {unit} {{per_sec}} ETA {{eta}} {{msg}}"
            );
            if let Ok(style) = ProgressStyle::with_template(&template) {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.set_prefix(label.to_string());
            bar
        });
        let mut p = Progress {
            mode,
            label: label.to_string(),
            unit: unit.to_string(),
            total,
            done: 0,
            start: Instant::now(),
            last_line: None,
            bar,
            finished: false,
            message: String::new(),
        };
        p.line(false);
        p
    }

    /// What is being reported, e.g. `save out.tif`.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// Steps done so far.
    pub fn done(&self) -> u64 {
        self.done
    }

    /// Marks `n` more steps done.
    pub fn inc(&mut self, n: u64) {
        self.done += n;
        if let Some(bar) = &self.bar {
            bar.inc(n);
        }
        if self.mode == ProgressMode::Lines
            && self.done < self.total
            && self
                .last_line
                .is_none_or(|t| t.elapsed() >= Self::LINE_INTERVAL)
        {
            self.line(false);
        }
    }

    /// Sets a short status text (e.g. `inertia 2213.0, shift 1.2e-5`) shown after the
    /// counts: on the bar at once, and appended to the next progress line in
    /// [`ProgressMode::Lines`].
    ///
    /// ```
    /// use rasterlab::runtime::progress::{Progress, ProgressMode};
    /// let mut p = Progress::new(ProgressMode::Silent, "k-means", "iterations", 300);
    /// p.message("inertia 12.5");
    /// p.inc(1);
    /// p.finish();
    /// ```
    pub fn message(&mut self, msg: &str) {
        msg.clone_into(&mut self.message);
        if let Some(bar) = &self.bar {
            bar.set_message(self.message.clone());
        }
    }

    /// Ends the report (the last line, or clears the bar).
    pub fn finish(&mut self) {
        if self.finished {
            return;
        }
        self.finished = true;
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        self.line(true);
    }

    fn line(&mut self, last: bool) {
        if self.mode != ProgressMode::Lines {
            return;
        }
        self.last_line = Some(Instant::now());
        let secs = self.start.elapsed().as_secs_f64();
        let pct = if self.total == 0 {
            100.0
        } else {
            100.0 * self.done as f64 / self.total as f64
        };
        let rate = if secs > 0.0 {
            self.done as f64 / secs
        } else {
            0.0
        };
        let tail = if last {
            format!("done in {secs:.2} s")
        } else if self.done == 0 || rate == 0.0 {
            "starting".to_string()
        } else {
            format!("ETA {:.1} s", (self.total - self.done) as f64 / rate)
        };
        let msg = if self.message.is_empty() {
            String::new()
        } else {
            format!(", {}", self.message)
        };
        println!(
            "{}: {}/{} {} ({pct:.0}%), {rate:.1} {}/s, {tail}{msg}",
            self.label, self.done, self.total, self.unit, self.unit
        );
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
