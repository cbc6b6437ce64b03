//! How values are resampled when a member is warped onto the reference grid.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// How values are resampled when a member of a stack is warped onto the reference grid
/// (GDAL's `gdalwarp -r`).
///
/// ```
/// use rasterlab::raster::align::Resampling;
/// assert_eq!("Bilinear".parse::<Resampling>()?, Resampling::Bilinear);
/// assert_eq!(Resampling::Mode.to_string(), "mode");
/// let err = "lanczos".parse::<Resampling>().unwrap_err();
/// assert!(err.to_string().contains("nearest, bilinear, cubic, average, mode"), "{err}");
/// # Ok::<(), rasterlab::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Resampling {
    /// The nearest source pixel (the default; the only choice for labels and classes).
    #[default]
    Nearest,
    /// Bilinear interpolation of the 2 x 2 nearest source pixels.
    Bilinear,
    /// Cubic convolution over 4 x 4 source pixels.
    Cubic,
    /// The mean of the source pixels a target pixel covers (for coarser targets).
    Average,
    /// The most frequent source value a target pixel covers (labels at coarser targets).
    Mode,
}

impl Resampling {
    /// Every method, in the order the CLI lists them.
    pub const ALL: [Resampling; 5] = [
        Resampling::Nearest,
        Resampling::Bilinear,
        Resampling::Cubic,
        Resampling::Average,
        Resampling::Mode,
    ];

    /// The lower-case name (`--resampling`, `gdalwarp -r`).
    pub fn name(self) -> &'static str {
        match self {
            Resampling::Nearest => "nearest",
            Resampling::Bilinear => "bilinear",
            Resampling::Cubic => "cubic",
            Resampling::Average => "average",
            Resampling::Mode => "mode",
        }
    }
}

impl FromStr for Resampling {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let wanted = s.trim().to_ascii_lowercase();
        Resampling::ALL
            .into_iter()
            .find(|r| r.name() == wanted)
            .ok_or_else(|| {
                let names: Vec<&str> = Resampling::ALL.iter().map(|r| r.name()).collect();
                Error::invalid(
                    "resampling",
                    format!("{s:?}; choose one of {}", names.join(", ")),
                )
            })
    }
}

impl fmt::Display for Resampling {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
