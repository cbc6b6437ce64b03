//! What an aligned raster records: the reference, the resampling method and the files
//! read through a warp.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{Reference, Resampling};

/// How an aligned stack was aligned: part of the raster's plan (it serializes with it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Alignment {
    pub(super) reference: Reference,
    pub(super) resampling: Resampling,
    /// The files read through a warp (those whose grid differs from the reference).
    pub(super) warped: Vec<PathBuf>,
}

impl Alignment {
    /// Where the reference grid came from.
    pub fn reference(&self) -> &Reference {
        &self.reference
    }

    /// The resampling method of the warps.
    pub fn resampling(&self) -> Resampling {
        self.resampling
    }

    /// The files warped onto the reference grid, in stack order.
    pub fn warped(&self) -> &[PathBuf] {
        &self.warped
    }

    pub(crate) fn is_warped(&self, path: &Path) -> bool {
        self.warped.iter().any(|p| p == path)
    }
}

impl Alignment {
    /// The text repr's rows (`Raster`'s `Display`).
    pub(crate) fn fmt_rows(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "  aligned: onto {} ({})",
            self.reference, self.resampling
        )?;
        if self.warped.is_empty() {
            writeln!(f, "  warped:  none (every file is on the grid)")
        } else {
            for p in &self.warped {
                writeln!(f, "  warped:  {}", p.display())?;
            }
            Ok(())
        }
    }
}
