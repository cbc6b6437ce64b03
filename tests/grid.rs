//! Chunk grids cover every pixel exactly once, whatever the sizes.

use rasterlab::prelude::*;

fn coverage(grid: &ChunkGrid) -> Vec<u8> {
    let (w, h) = grid.raster_size();
    let mut hits = vec![0u8; w * h];
    for win in grid.iter() {
        assert!(win.fits(w, h) && !win.is_empty(), "{win} outside {w} x {h}");
        for y in win.y..win.y + win.height {
            for x in win.x..win.x + win.width {
                hits[y * w + x] += 1;
            }
        }
    }
    hits
}

#[test]
fn grids_cover_each_pixel_once() {
    for (w, h) in [(1, 1), (7, 3), (100, 100), (2041, 1860), (515, 403)] {
        for (cw, ch) in [
            (1, 1),
            (3, 5),
            (64, 64),
            (100, 100),
            (256, 256),
            (333, 333),
            (5000, 5000),
        ] {
            if w * h / (cw * ch).max(1) > 200_000 {
                continue;
            }
            let grid = ChunkGrid::new(w, h, cw, ch).expect("grid");
            assert_eq!(grid.iter().len(), grid.len());
            assert!(
                coverage(&grid).iter().all(|&c| c == 1),
                "{w}x{h} by {cw}x{ch}"
            );
            let (nx, ny) = grid.shape();
            assert_eq!((nx, ny), (w.div_ceil(cw.min(w)), h.div_ceil(ch.min(h))));
            assert_eq!(grid.window(grid.len()), None);
        }
    }
}

#[test]
fn aligned_grids_are_block_multiples_and_keep_workers_busy() {
    for threads in [1, 2, 8] {
        for target in [1u64 << 20, 8 << 20, 256 << 20] {
            let grid =
                ChunkGrid::aligned(2041, 1860, (256, 256), 12, target, threads).expect("grid");
            let (cw, ch) = grid.chunk_size();
            assert!(cw % 256 == 0 || cw == 2041, "{cw}");
            assert!(ch % 256 == 0 || ch == 1860, "{ch}");
            assert!(
                (cw * ch * 12) as u64 <= target.max(256 * 256 * 12),
                "chunk over target"
            );
            assert!(
                grid.len() >= 4 * threads || (cw, ch) == (256, 256),
                "{} chunks for {threads} threads",
                grid.len()
            );
            assert!(coverage(&grid).iter().all(|&c| c == 1));
        }
    }
    // Strip-organised files: chunks are whole rows, a multiple of the strip height.
    let grid = ChunkGrid::aligned(515, 403, (515, 8), 4, 1 << 20, 2).expect("grid");
    let (cw, ch) = grid.chunk_size();
    assert_eq!(cw, 515);
    assert_eq!(ch % 8, 0);
    // ... and grow past one strip while the budget and the worker count allow it
    // (16 chunks of 403 rows: 24 rows each).
    assert_eq!(ch, 24, "strips should be grouped");
    // One-row blocks (GDAL's netCDF driver on a contiguous variable): many rows per chunk.
    let grid = ChunkGrid::aligned(501, 550, (501, 1), 303 * 4, 64 << 20, 2).expect("grid");
    // 36 rows is the tallest chunk that still gives 16 chunks (550 / 37 rounds up to 15).
    assert_eq!(grid.chunk_size(), (501, 36));
    assert!(grid.len() >= 16);
}
