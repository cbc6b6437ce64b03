//! The distance kernels: centroids packed 8 to a block for the nearest centroid of one
//! sample (Hamerly, mini-batch, label maps), and the assignment pass over all samples
//! (Lloyd, predict), which puts 8 samples in the vector lanes instead, with per-chunk
//! partial sums.

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
            // the distance loop fully unrolled for the usual few bands; the accumulator
            // row holds the d sums and the count (width d + 1)
            match d {
                1 => assign_chunk::<T, 1, 2>(x, packed, lab, &mut p),
                2 => assign_chunk::<T, 2, 3>(x, packed, lab, &mut p),
                3 => assign_chunk::<T, 3, 4>(x, packed, lab, &mut p),
                4 => assign_chunk::<T, 4, 5>(x, packed, lab, &mut p),
                5 => assign_chunk::<T, 5, 6>(x, packed, lab, &mut p),
                6 => assign_chunk::<T, 6, 7>(x, packed, lab, &mut p),
                7 => assign_chunk::<T, 7, 8>(x, packed, lab, &mut p),
                8 => assign_chunk::<T, 8, 9>(x, packed, lab, &mut p),
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

/// Samples handled together by [`nearest_group`]: one lane each, 8 `f32` lanes fill an
/// AVX register.
pub(super) const GROUP: usize = 8;

/// Nearest centroid (first index on ties) and its squared distance for each of `GROUP`
/// samples stored feature-major (`xs[feature][lane]`).
///
/// The vector lanes run over samples, not centroids: every centroid costs `D`
/// subtract/multiply/add, a compare and two selects for 8 samples at once, with no
/// horizontal reduction and no branch, and `k` need not be a multiple of 8. The sum of
/// squares is formed in feature order, as [`Packed::dist2`] does, so the distances (and
/// hence labels and inertia) are bit for bit those of the plain per-sample loop.
#[inline(always)]
pub(super) fn nearest_group<T: Real, const D: usize>(
    xs: &[[T; GROUP]; D],
    centroids: &[[T; D]],
) -> ([u32; GROUP], [T; GROUP]) {
    let mut best = [T::infinity(); GROUP];
    let mut arg = [0u32; GROUP];
    for (c, cen) in centroids.iter().enumerate() {
        let mut acc = [T::zero(); GROUP];
        for j in 0..D {
            for l in 0..GROUP {
                let t = xs[j][l] - cen[j];
                // 0 + t*t is t*t exactly (a square is never -0), so the first feature
                // starts the sum without the add
                acc[l] = if j == 0 { t * t } else { acc[l] + t * t };
            }
        }
        for l in 0..GROUP {
            let closer = acc[l] < best[l];
            best[l] = if closer { acc[l] } else { best[l] };
            arg[l] = if closer { c as u32 } else { arg[l] };
        }
    }
    (arg, best)
}

/// One chunk of an assignment pass, dispatched to an AVX2 build of the same code when
/// the CPU has it (checked at run time, so the binary still runs on any x86-64): the
/// portable build is limited to 4-lane SSE2.
#[inline(always)]
pub(super) fn assign_chunk<T: Real, const D: usize, const W: usize>(
    x: &[T],
    packed: &Packed<T>,
    lab: &mut [i32],
    p: &mut Partial,
) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the only requirement of a `target_feature` function is that the CPU
        // supports the feature, checked on the line above.
        unsafe { assign_chunk_avx2::<T, D, W>(x, packed, lab, p) };
        return;
    }
    assign_fixed::<T, D, W>(x, packed, lab, p);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn assign_chunk_avx2<T: Real, const D: usize, const W: usize>(
    x: &[T],
    packed: &Packed<T>,
    lab: &mut [i32],
    p: &mut Partial,
) {
    assign_fixed::<T, D, W>(x, packed, lab, p);
}

/// Assignment of one chunk with `D` features known at compile time; `W = D + 1` is the
/// width of an accumulator row (the `D` sums, then the count).
#[inline(always)]
pub(super) fn assign_fixed<T: Real, const D: usize, const W: usize>(
    x: &[T],
    packed: &Packed<T>,
    lab: &mut [i32],
    p: &mut Partial,
) {
    debug_assert_eq!(W, D + 1);
    let k = packed.k;
    let centroids: Vec<[T; D]> = packed
        .rows
        .chunks_exact(D)
        .map(|r| std::array::from_fn(|j| r[j]))
        .collect();
    // Neighbouring pixels usually fall in the same cluster, so adding each sample into
    // acc[cluster] makes a chain of dependent read-modify-writes. Four interleaved copies
    // (by sample index mod 4) break the chain; they are added up in a fixed order at the
    // end of the chunk. Sums and count of a cluster share one row: one vector add.
    let mut acc = vec![[0.0f64; W]; 4 * k];
    let mut inertia = [0.0f64; 4];
    let mut changed = 0usize;
    let n = lab.len();
    let mut o = 0;
    while o < n {
        let m = (n - o).min(GROUP);
        // transpose GROUP samples to feature-major; a short last group repeats its last
        // sample in the missing lanes, whose results are ignored
        let rows: [&[T]; GROUP] = std::array::from_fn(|l| {
            let s = o + l.min(m - 1);
            &x[s * D..s * D + D]
        });
        let xs: [[T; GROUP]; D] = std::array::from_fn(|j| std::array::from_fn(|l| rows[l][j]));
        let (arg, best) = nearest_group::<T, D>(&xs, &centroids);
        for l in 0..m {
            let i = o + l;
            let c = arg[l] as usize;
            changed += usize::from(lab[i] != c as i32);
            lab[i] = c as i32;
            let lane = i & 3;
            inertia[lane] += best[l].as_f64();
            let row = &x[i * D..i * D + D];
            let a = &mut acc[lane * k + c];
            for j in 0..D {
                a[j] += row[j].as_f64();
            }
            a[D] += 1.0;
        }
        o += GROUP;
    }
    p.changed += changed;
    p.inertia += (inertia[0] + inertia[1]) + (inertia[2] + inertia[3]);
    let accumulate = !p.sums.is_empty();
    for lane in 0..4 {
        for c in 0..k {
            let a = &acc[lane * k + c];
            p.counts[c] += a[D];
            if accumulate {
                for (t, v) in p.sums[c * D..(c + 1) * D].iter_mut().zip(a) {
                    *t += v;
                }
            }
        }
    }
}
