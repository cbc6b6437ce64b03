//! Data types: [`DataType`], the stored type of a raster band (GDAL's types, in
//! rasterlab's own enum), [`Element`], the Rust types values are read into, and
//! [`OutputType`], the stored type of rasterlab's outputs.

use serde::{Deserialize, Serialize};

/// The stored type of a saved array.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[non_exhaustive]
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

    /// Bytes per stored value.
    ///
    /// ```
    /// use rasterlab::core::dtype::OutputType;
    /// assert_eq!(OutputType::Float32.bytes(), 4);
    /// assert_eq!(OutputType::Byte.bytes(), 1);
    /// ```
    pub fn bytes(self) -> u8 {
        match self {
            OutputType::Byte => 1,
            OutputType::UInt16 | OutputType::Int16 => 2,
            OutputType::Int32 | OutputType::Float32 => 4,
            OutputType::Float64 => 8,
        }
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

/// The stored data type of a raster band, named as GDAL names it (`Byte`, `UInt16`, ...).
///
/// rasterlab's own enum, so that a GDAL upgrade is not a breaking change of rasterlab's
/// API; the conversions to and from GDAL's types live in the raster layer. Bands of a type
/// GDAL 3.6's Rust bindings do not describe (complex numbers) are `Unknown`.
///
/// ```
/// use rasterlab::core::dtype::DataType;
/// assert_eq!(DataType::UInt16.to_string(), "UInt16");
/// assert_eq!(DataType::Byte.bytes(), 1);
/// assert!(DataType::Int16.is_signed() && DataType::Int16.is_integer());
/// assert!(DataType::Float32.is_floating());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum DataType {
    /// A type GDAL does not describe (or a complex type).
    Unknown,
    /// 8-bit unsigned.
    Byte,
    /// 16-bit unsigned.
    UInt16,
    /// 16-bit signed.
    Int16,
    /// 32-bit unsigned.
    UInt32,
    /// 32-bit signed.
    Int32,
    /// 64-bit unsigned.
    UInt64,
    /// 64-bit signed.
    Int64,
    /// 32-bit float.
    Float32,
    /// 64-bit float.
    Float64,
}

impl DataType {
    /// GDAL's name of the type (`GDALGetDataTypeName`): `Byte`, `UInt16`, `Float32`, ...
    pub fn name(self) -> &'static str {
        match self {
            DataType::Unknown => "Unknown",
            DataType::Byte => "Byte",
            DataType::UInt16 => "UInt16",
            DataType::Int16 => "Int16",
            DataType::UInt32 => "UInt32",
            DataType::Int32 => "Int32",
            DataType::UInt64 => "UInt64",
            DataType::Int64 => "Int64",
            DataType::Float32 => "Float32",
            DataType::Float64 => "Float64",
        }
    }

    /// Size of one value in bits (0 for `Unknown`).
    pub fn bits(self) -> u8 {
        match self {
            DataType::Unknown => 0,
            DataType::Byte => 8,
            DataType::UInt16 | DataType::Int16 => 16,
            DataType::UInt32 | DataType::Int32 | DataType::Float32 => 32,
            DataType::UInt64 | DataType::Int64 | DataType::Float64 => 64,
        }
    }

    /// Size of one value in bytes (0 for `Unknown`).
    pub fn bytes(self) -> u8 {
        self.bits() / 8
    }

    /// True for integer types.
    pub fn is_integer(self) -> bool {
        !matches!(
            self,
            DataType::Unknown | DataType::Float32 | DataType::Float64
        )
    }

    /// True for floating-point types.
    pub fn is_floating(self) -> bool {
        matches!(self, DataType::Float32 | DataType::Float64)
    }

    /// True for types that hold negative values (signed integers and floats).
    pub fn is_signed(self) -> bool {
        matches!(
            self,
            DataType::Int16
                | DataType::Int32
                | DataType::Int64
                | DataType::Float32
                | DataType::Float64
        )
    }
}

impl std::fmt::Display for DataType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A Rust type raster values can be read into
/// ([`Raster::read_raw`](crate::raster::Raster::read_raw)): `u8`, `u16`, `i16`, `u32`,
/// `i32`, `u64`, `i64`, `f32` and `f64`. Sealed: reads hand GDAL a buffer of the type's
/// [`DataType`], so only types whose memory layout is that type implement it.
pub trait Element: Copy + Default + Send + Sync + 'static + sealed::Sealed {
    /// The GDAL data type of a value in memory.
    const DATA_TYPE: DataType;
}

mod sealed {
    pub trait Sealed {}
}

macro_rules! element {
    ($($t:ty => $d:ident),* $(,)?) => {
        $(
            impl sealed::Sealed for $t {}
            impl Element for $t {
                const DATA_TYPE: DataType = DataType::$d;
            }
        )*
    };
}

element! {
    u8 => Byte,
    u16 => UInt16,
    i16 => Int16,
    u32 => UInt32,
    i32 => Int32,
    u64 => UInt64,
    i64 => Int64,
    f32 => Float32,
    f64 => Float64,
}
