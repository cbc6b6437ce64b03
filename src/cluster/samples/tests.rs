use super::{Samples, SourceGrid};

#[test]
fn unstack_needs_a_grid_and_matching_labels() {
    let x = Samples::from_array(ndarray::array![[0.0], [1.0]]);
    assert!(x.unstack(&[0, 1]).is_err());
    let grid = SourceGrid {
        width: 3,
        height: 1,
        geo_transform: [0.0, 1.0, 0.0, 0.0, 0.0, -1.0],
        crs_wkt: String::new(),
        sources: Vec::new(),
    };
    assert!(x.clone().with_grid(grid.clone(), vec![0, 3]).is_err());
    let x = x.with_grid(grid, vec![2, 0]).unwrap();
    assert!(x.unstack(&[1]).is_err());
    let m = x.unstack(&[1, 0]).unwrap();
    assert_eq!(m.labels(), ndarray::array![[0, -1, 1]]);
    assert_eq!((m.counts(), m.nodata_count()), (&[1usize, 1][..], 1));
    assert_eq!(x.pixel(0), Some((2, 0)));
    assert!(m.to_string().contains("nodata pixels"));
}

#[test]
fn standardize_keeps_a_scaler() {
    let x = Samples::from_array_f32(ndarray::array![[1.0f32, 2.0], [3.0, 2.0]])
        .standardize()
        .unwrap();
    let s = x.scaler().unwrap();
    assert_eq!(s.mean(), &[2.0, 2.0]);
    assert_eq!(s.std(), &[1.0, 1.0]);
    assert_eq!(
        x.as_f32().unwrap(),
        ndarray::array![[-1.0f32, 0.0], [1.0, 0.0]]
    );
}
