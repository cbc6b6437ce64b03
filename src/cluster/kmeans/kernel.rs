//! The distance kernel: centroids packed 8 to a block for SIMD, the nearest centroid of a
//! sample, and one assignment pass over all samples with per-chunk partial sums.

use rayon::prelude::*;

use crate::cluster::{CHUNK, Data, Real};

/// Centroids stored for the distance kernel: blocks of 8 centroids, feature-major inside a
/// block (`[block][feature][lane]`), so one sample's distances to 8 centroids are 8-wide
/// vector operations. Lanes past `k` hold +inf and are never nearest.
pub(crate) struct Packed<T> {
    pub(super) data: Vec<T>,
    pub(super) rows: Vec<T>,
    pub(super) k: usize,
    pub(super) d: usize,
    pub(super) blocks: usize,
}

#[inline(always)]
pub(super) fn mn<T: Real>(a: T, b: T) -> T {
    if b < a { b } else { a }
}

/// Minimum of 8 lanes as a tree (vector min instructions, short dependency chain).
#[inline(always)]
pub(super) fn min8<T: Real>(a: &[T; 8]) -> T {
    let m4 = [
        mn(a[0], a[4]),
        mn(a[1], a[5]),
        mn(a[2], a[6]),
        mn(a[3], a[7]),
    ];
    let m2 = [mn(m4[0], m4[2]), mn(m4[1], m4[3])];
    mn(m2[0], m2[1])
}

/// Lowest-index minimum of 8 lanes as a tree of selects (no data-dependent branch).
#[inline(always)]
pub(super) fn argmin8<T: Real>(a: &[T; 8]) -> (usize, T) {
    let mut v4 = [T::zero(); 4];
    let mut i4 = [0u32; 4];
    for i in 0..4 {
        let take = a[i + 4] < a[i];
        v4[i] = if take { a[i + 4] } else { a[i] };
        i4[i] = if take { i as u32 + 4 } else { i as u32 };
    }
    let pick = |va: T, ia: u32, vb: T, ib: u32| {
        let take = (vb < va) | ((vb == va) & (ib < ia));
        if take { (vb, ib) } else { (va, ia) }
    };
    let (v0, i0) = pick(v4[0], i4[0], v4[2], i4[2]);
    let (v1, i1) = pick(v4[1], i4[1], v4[3], i4[3]);
    let (v, i) = pick(v0, i0, v1, i1);
    (i as usize, v)
}

/// Index of the first lane equal to `m` (which is one of the lanes), without branches.
#[inline(always)]
pub(super) fn first_eq<T: Real>(a: &[T; 8], m: T) -> usize {
    let mut mask = 0u32;
    for (l, &v) in a.iter().enumerate() {
        mask |= u32::from(v == m) << l;
    }
    mask.trailing_zeros() as usize
}

impl<T: Real> Packed<T> {
    /// From `k x d` row-major centroids.
    pub fn new(centroids: &[f64], k: usize, d: usize) -> Packed<T> {
        let blocks = k.div_ceil(8);
        let mut data = vec![T::infinity(); blocks * d * 8];
        for c in 0..k {
            let (b, l) = (c / 8, c % 8);
            for j in 0..d {
                data[(b * d + j) * 8 + l] = T::of(centroids[c * d + j]);
            }
        }
        Packed {
            data,
            rows: centroids.iter().map(|&v| T::of(v)).collect(),
            k,
            d,
            blocks,
        }
    }

    /// Number of centroids.
    pub fn k(&self) -> usize {
        self.k
    }

    #[inline(always)]
    pub(super) fn block(&self, x: &[T], b: usize) -> [T; 8] {
        let mut acc = [T::zero(); 8];
        let block = &self.data[b * self.d * 8..(b + 1) * self.d * 8];
        for (c, &xj) in block.chunks_exact(8).zip(x) {
            for l in 0..8 {
                let t = xj - c[l];
                acc[l] = acc[l] + t * t;
            }
        }
        acc
    }

    /// Nearest centroid and its squared distance (first index wins ties). Branch-free
    /// inside a block: a data-dependent `if v < best` per centroid mispredicted so often
    /// that it took a quarter of the iteration time.
    #[inline(always)]
    pub fn nearest(&self, x: &[T]) -> (usize, T) {
        let mut best = T::infinity();
        let mut arg = 0;
        for b in 0..self.blocks {
            let acc = self.block(x, b);
            let m = min8(&acc);
            if m < best {
                best = m;
                arg = b * 8 + first_eq(&acc, m);
            }
        }
        (arg, best)
    }

    /// The centroid blocks as fixed-size arrays, for [`nearest_fixed`].
    pub(super) fn typed_blocks<const D: usize>(&self) -> Vec<[[T; 8]; D]> {
        (0..self.blocks)
            .map(|b| {
                let mut blk = [[T::infinity(); 8]; D];
                for (j, lanes) in blk.iter_mut().enumerate() {
                    lanes.copy_from_slice(&self.data[(b * D + j) * 8..(b * D + j + 1) * 8]);
                }
                blk
            })
            .collect()
    }

    /// Nearest centroid, its squared distance and the second-smallest squared distance.
    #[inline(always)]
    pub(super) fn nearest2(&self, x: &[T]) -> (usize, T, T) {
        let mut best = T::infinity();
        let mut second = T::infinity();
        let mut arg = 0;
        for b in 0..self.blocks {
            let mut acc = self.block(x, b);
            let m = min8(&acc);
            let l = first_eq(&acc, m);
            acc[l] = T::infinity();
            let m2 = min8(&acc);
            if m < best {
                second = if best < m2 { best } else { m2 };
                best = m;
                arg = b * 8 + l;
            } else if m < second {
                second = m;
            }
        }
        (arg, best, second)
    }

    /// Squared distance to centroid `c`.
    #[inline(always)]
    pub(super) fn dist2(&self, x: &[T], c: usize) -> T {
        let row = &self.rows[c * self.d..(c + 1) * self.d];
        let mut acc = T::zero();
        for (&a, &b) in x.iter().zip(row) {
            let t = a - b;
            acc = acc + t * t;
        }
        acc
    }
}

/// Partial result of one chunk of an assignment pass.
pub(super) struct Partial {
    pub(super) sums: Vec<f64>,
    pub(super) counts: Vec<f64>,
    pub(super) inertia: f64,
    pub(super) changed: usize,
}

impl Partial {
    pub(super) fn new(k: usize, d: usize, accumulate: bool) -> Partial {
        Partial {
            sums: if accumulate {
                vec![0.0; k * d]
            } else {
                Vec::new()
            },
            counts: vec![0.0; k],
            inertia: 0.0,
            changed: 0,
        }
    }

    #[inline(always)]
    pub(super) fn record<T: Real>(
        &mut self,
        c: usize,
        dist: T,
        row: &[T],
        label: &mut i32,
        accumulate: bool,
    ) {
        if *label != c as i32 {
            self.changed += 1;
            *label = c as i32;
        }
        self.inertia += dist.as_f64();
        if accumulate {
            self.add(c, row);
        } else {
            self.counts[c] += 1.0;
        }
    }

    #[inline(always)]
    pub(super) fn add<T: Real>(&mut self, c: usize, row: &[T]) {
        self.counts[c] += 1.0;
        let d = row.len();
        for (s, v) in self.sums[c * d..(c + 1) * d].iter_mut().zip(row) {
            *s += v.as_f64();
        }
    }

    /// Adds chunk partials in chunk order (deterministic).
    pub(super) fn reduce(parts: Vec<Partial>, k: usize, d: usize, accumulate: bool) -> Partial {
        let mut total = Partial::new(k, d, accumulate);
        for p in parts {
            for (a, b) in total.sums.iter_mut().zip(&p.sums) {
                *a += b;
            }
            for (a, b) in total.counts.iter_mut().zip(&p.counts) {
                *a += b;
            }
            total.inertia += p.inertia;
            total.changed += p.changed;
        }
        total
    }
}

/// Assigns every sample to its nearest centroid; with `accumulate`, also sums the
/// samples per cluster. Returns counts, inertia (with these centroids) and the number of
/// labels that changed.
pub(super) fn assign<T: Real>(
    data: Data<'_, T>,
    packed: &Packed<T>,
    labels: &mut [i32],
    accumulate: bool,
) -> Partial {
    let (k, d) = (packed.k, data.d);
    let parts: Vec<Partial> = labels
        .par_chunks_mut(CHUNK)
        .enumerate()
        .map(|(ci, lab)| {
            let start = ci * CHUNK;
            let x = &data.x[start * d..(start + lab.len()) * d];
            let mut p = Partial::new(k, d, accumulate);
            // the distance loop fully unrolled for the usual few bands
            match d {
                1 => assign_fixed::<T, 1>(x, packed, lab, accumulate, &mut p),
                2 => assign_fixed::<T, 2>(x, packed, lab, accumulate, &mut p),
                3 => assign_fixed::<T, 3>(x, packed, lab, accumulate, &mut p),
                4 => assign_fixed::<T, 4>(x, packed, lab, accumulate, &mut p),
                5 => assign_fixed::<T, 5>(x, packed, lab, accumulate, &mut p),
                6 => assign_fixed::<T, 6>(x, packed, lab, accumulate, &mut p),
                7 => assign_fixed::<T, 7>(x, packed, lab, accumulate, &mut p),
                8 => assign_fixed::<T, 8>(x, packed, lab, accumulate, &mut p),
                _ => {
                    for (row, l) in x.chunks_exact(d).zip(lab.iter_mut()) {
                        let (c, dist) = packed.nearest(row);
                        p.record(c, dist, row, l, accumulate);
                    }
                }
            }
            p
        })
        .collect();
    Partial::reduce(parts, k, d, accumulate)
}

/// Nearest of the centroids in `blocks` (see [`Packed::typed_blocks`]): with the number
/// of features known at compile time the blocks stay in vector registers.
#[inline(always)]
pub(super) fn nearest_fixed<T: Real, const D: usize>(
    blocks: &[[[T; 8]; D]],
    x: &[T; D],
) -> (usize, T) {
    let mut best = T::infinity();
    let mut arg = 0;
    for (b, blk) in blocks.iter().enumerate() {
        let mut acc = [T::zero(); 8];
        for j in 0..D {
            let xj = x[j];
            for l in 0..8 {
                let t = xj - blk[j][l];
                acc[l] = acc[l] + t * t;
            }
        }
        let (l, m) = argmin8(&acc);
        if m < best {
            best = m;
            arg = b * 8 + l;
        }
    }
    (arg, best)
}

#[inline(always)]
pub(super) fn assign_fixed<T: Real, const D: usize>(
    x: &[T],
    packed: &Packed<T>,
    lab: &mut [i32],
    accumulate: bool,
    p: &mut Partial,
) {
    // Neighbouring pixels usually fall in the same cluster, so adding each sample into
    // sums[cluster] makes a chain of dependent read-modify-writes. Four interleaved
    // copies of the sums break the chain; they are added up at the end of the chunk.
    let k = packed.k;
    let blocks = packed.typed_blocks::<D>();
    let mut sums = vec![[0.0f64; D]; 4 * k];
    let mut counts = vec![0.0f64; 4 * k];
    let mut inertia = [0.0f64; 4];
    // k <= 8: the one block as a local value, which the stores below cannot alias, so it
    // stays in registers instead of being reloaded for every sample
    let single: Option<[[T; 8]; D]> = (blocks.len() == 1).then(|| blocks[0]);
    for (o, (row, l)) in x.chunks_exact(D).zip(lab.iter_mut()).enumerate() {
        let Ok(row) = <&[T; D]>::try_from(row) else {
            continue;
        };
        let (c, dist) = match &single {
            Some(blk) => nearest_fixed::<T, D>(std::slice::from_ref(blk), row),
            None => nearest_fixed::<T, D>(&blocks, row),
        };
        if *l != c as i32 {
            p.changed += 1;
            *l = c as i32;
        }
        let lane = o & 3;
        inertia[lane] += dist.as_f64();
        counts[lane * k + c] += 1.0;
        if accumulate {
            let s = &mut sums[lane * k + c];
            for j in 0..D {
                s[j] += row[j].as_f64();
            }
        }
    }
    p.inertia += (inertia[0] + inertia[1]) + (inertia[2] + inertia[3]);
    for lane in 0..4 {
        for c in 0..k {
            p.counts[c] += counts[lane * k + c];
            if accumulate {
                for (t, v) in p.sums[c * D..(c + 1) * D]
                    .iter_mut()
                    .zip(&sums[lane * k + c])
                {
                    *t += v;
                }
            }
        }
    }
}
