//! rasterlab's [`DataType`] and GDAL's types: the one place that knows both, so that
//! GDAL's enums stay out of rasterlab's public API.

use gdal::raster::GdalDataType;
use gdal_sys::GDALDataType;

use crate::core::dtype::{DataType, Element};

/// The rasterlab type of a GDAL type.
pub(crate) fn from_gdal(t: GdalDataType) -> DataType {
    match t {
        GdalDataType::Unknown => DataType::Unknown,
        GdalDataType::UInt8 => DataType::Byte,
        GdalDataType::UInt16 => DataType::UInt16,
        GdalDataType::Int16 => DataType::Int16,
        GdalDataType::UInt32 => DataType::UInt32,
        GdalDataType::Int32 => DataType::Int32,
        GdalDataType::UInt64 => DataType::UInt64,
        GdalDataType::Int64 => DataType::Int64,
        GdalDataType::Float32 => DataType::Float32,
        GdalDataType::Float64 => DataType::Float64,
    }
}

/// The GDAL type of a rasterlab type.
pub(crate) fn to_gdal(t: DataType) -> GdalDataType {
    match t {
        DataType::Unknown => GdalDataType::Unknown,
        DataType::Byte => GdalDataType::UInt8,
        DataType::UInt16 => GdalDataType::UInt16,
        DataType::Int16 => GdalDataType::Int16,
        DataType::UInt32 => GdalDataType::UInt32,
        DataType::Int32 => GdalDataType::Int32,
        DataType::UInt64 => GdalDataType::UInt64,
        DataType::Int64 => GdalDataType::Int64,
        DataType::Float32 => GdalDataType::Float32,
        DataType::Float64 => GdalDataType::Float64,
    }
}

/// The `GDALDataType` of a buffer of `T`, for raw GDAL reads.
pub(crate) fn ordinal<T: Element>() -> GDALDataType::Type {
    to_gdal(T::DATA_TYPE) as GDALDataType::Type
}

#[cfg(test)]
mod tests {
    use super::*;
    use gdal::raster::GdalType;

    #[test]
    fn every_gdal_type_converts_both_ways_with_gdal_s_properties() {
        for g in GdalDataType::iter().chain([GdalDataType::Unknown]) {
            let t = from_gdal(g);
            assert_eq!(to_gdal(t), g);
            assert_eq!(t.name(), g.name(), "{g}");
            assert_eq!(t.to_string(), g.to_string());
            assert_eq!(t.bits(), g.bits(), "{g}");
            assert_eq!(t.bytes(), g.bytes(), "{g}");
            assert_eq!(t.is_integer(), g.is_integer(), "{g}");
            assert_eq!(t.is_floating(), g.is_floating(), "{g}");
            if g != GdalDataType::Unknown {
                // GDAL calls Unknown signed; rasterlab does not.
                assert_eq!(t.is_signed(), g.is_signed(), "{g}");
            }
        }
    }

    #[test]
    fn element_ordinals_are_gdal_s() {
        assert_eq!(ordinal::<u8>(), u8::gdal_ordinal());
        assert_eq!(ordinal::<u16>(), u16::gdal_ordinal());
        assert_eq!(ordinal::<i16>(), i16::gdal_ordinal());
        assert_eq!(ordinal::<u32>(), u32::gdal_ordinal());
        assert_eq!(ordinal::<i32>(), i32::gdal_ordinal());
        assert_eq!(ordinal::<u64>(), u64::gdal_ordinal());
        assert_eq!(ordinal::<i64>(), i64::gdal_ordinal());
        assert_eq!(ordinal::<f32>(), f32::gdal_ordinal());
        assert_eq!(ordinal::<f64>(), f64::gdal_ordinal());
    }
}
