//! A rectangle of pixels in a raster's pixel space.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A rectangle of pixels: column `x`, row `y`, `width` columns and `height` rows.
///
/// ```
/// use rasterlab::core::window::Window;
/// let w = Window::new(10, 20, 100, 50);
/// assert_eq!(w.len(), 5000);
/// assert_eq!(w.to_string(), "x 10..110, y 20..70");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Window {
    /// First column.
    pub x: usize,
    /// First row.
    pub y: usize,
    /// Number of columns.
    pub width: usize,
    /// Number of rows.
    pub height: usize,
}

impl Window {
    /// A window at `(x, y)` of `width` x `height` pixels.
    pub const fn new(x: usize, y: usize, width: usize, height: usize) -> Self {
        Window {
            x,
            y,
            width,
            height,
        }
    }

    /// Number of pixels in the window.
    pub const fn len(&self) -> usize {
        self.width * self.height
    }

    /// True when the window holds no pixel.
    pub const fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// True when the window lies inside a raster of `width` x `height` pixels.
    ///
    /// ```
    /// use rasterlab::core::window::Window;
    /// assert!(Window::new(0, 0, 10, 10).fits(10, 10));
    /// assert!(!Window::new(5, 0, 10, 10).fits(10, 10));
    /// ```
    pub const fn fits(&self, width: usize, height: usize) -> bool {
        self.x + self.width <= width && self.y + self.height <= height
    }
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "x {}..{}, y {}..{}",
            self.x,
            self.x + self.width,
            self.y,
            self.y + self.height
        )
    }
}
