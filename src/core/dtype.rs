//! The stored types of rasterlab's outputs.

/// The stored type of a saved array.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OutputType {
    /// 8-bit unsigned.
    Byte,
    /// 16-bit unsigned.
    UInt16,
    /// 16-bit signed.
    Int16,
    /// 32-bit signed.
    Int32,
    /// 32-bit float (the default; nodata as NaN).
    #[default]
    Float32,
    /// 64-bit float.
    Float64,
}

impl OutputType {
    /// True for integer types, which cannot hold NaN.
    pub fn is_integer(self) -> bool {
        !matches!(self, OutputType::Float32 | OutputType::Float64)
    }

    /// The range of values the type holds.
    pub fn range(self) -> (f64, f64) {
        match self {
            OutputType::Byte => (0.0, 255.0),
            OutputType::UInt16 => (0.0, 65535.0),
            OutputType::Int16 => (-32768.0, 32767.0),
            OutputType::Int32 => (i32::MIN as f64, i32::MAX as f64),
            OutputType::Float32 => (f32::MIN as f64, f32::MAX as f64),
            OutputType::Float64 => (f64::MIN, f64::MAX),
        }
    }
}

impl std::fmt::Display for OutputType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self:?}")
    }
}
