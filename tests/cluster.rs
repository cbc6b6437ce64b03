//! Clustering checked against scikit-learn (run from the project's Python environment on
//! the same arrays, passed through .npy files) and against plain GDAL reads.
//!
//! Python is found through `RASTERLAB_VENV` (set by `make test`), else `.venv` in the
//! crate root, else `python3` on the PATH; it needs numpy and scikit-learn.

#[path = "support/rainfall.rs"]
mod rainfall;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Instant;

use ndarray::Array2;
use rasterlab::cluster::{adjusted_rand_index, inertia, silhouette_score};
use rasterlab::prelude::*;

const LANDSAT: &str = "data/LC08_L1TP_224078_20200518_20200518_01_RT.TIF";
const LANDSAT_VALID: usize = 3_169_229;

// ---------------------------------------------------------------------------------------
// Python and .npy plumbing

fn python() -> PathBuf {
    if let Some(v) = std::env::var_os("RASTERLAB_VENV").filter(|v| !v.is_empty()) {
        return Path::new(&v).join("bin").join("python");
    }
    let local = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    if local.exists() {
        return local;
    }
    PathBuf::from("python3")
}

/// Runs a Python script with arguments and returns its `key value` stdout lines.
fn run_python(script: &str, args: &[&Path]) -> Vec<(String, String)> {
    let py = python();
    let out = Command::new(&py)
        .arg("-c")
        .arg(script)
        .args(args)
        .env("OMP_NUM_THREADS", "2")
        .env("OPENBLAS_NUM_THREADS", "2")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", py.display()));
    assert!(
        out.status.success(),
        "{} failed (needs numpy and scikit-learn: run `make setup` or set RASTERLAB_VENV):\n{}",
        py.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            l.split_once(' ')
                .map(|(k, v)| (k.to_string(), v.trim().to_string()))
        })
        .collect()
}

fn value(kv: &[(String, String)], key: &str) -> f64 {
    kv.iter()
        .find(|(k, _)| k == key)
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or_else(|| panic!("python printed no {key}: {kv:?}"))
}

trait NpyElem: Copy {
    const DESCR: &'static str;
    fn bytes(self) -> Vec<u8>;
}

impl NpyElem for f32 {
    const DESCR: &'static str = "<f4";
    fn bytes(self) -> Vec<u8> {
        self.to_le_bytes().to_vec()
    }
}

impl NpyElem for f64 {
    const DESCR: &'static str = "<f8";
    fn bytes(self) -> Vec<u8> {
        self.to_le_bytes().to_vec()
    }
}

impl NpyElem for i32 {
    const DESCR: &'static str = "<i4";
    fn bytes(self) -> Vec<u8> {
        self.to_le_bytes().to_vec()
    }
}

/// Writes a C-order .npy file (format version 1.0).
fn write_npy<T: NpyElem>(path: &Path, data: &[T], shape: &[usize]) {
    let dims = match shape {
        [n] => format!("({n},)"),
        _ => format!(
            "({})",
            shape
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let mut header = format!(
        "{{'descr': '{}', 'fortran_order': False, 'shape': {dims}, }}",
        T::DESCR
    );
    // magic (6) + version (2) + length (2) + header + '\n' must be a multiple of 64
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = Vec::with_capacity(10 + header.len() + data.len() * 8);
    out.extend_from_slice(b"\x93NUMPY\x01\x00");
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    for v in data {
        out.extend(v.bytes());
    }
    let mut f = std::fs::File::create(path).expect("create npy");
    f.write_all(&out).expect("write npy");
}

/// Reads a C-order .npy of `<f4`, `<f8`, `<i4` or `<i8` as f64 values and its shape.
fn read_npy(path: &Path) -> (Vec<f64>, Vec<usize>) {
    let bytes = std::fs::read(path).expect("read npy");
    assert_eq!(&bytes[..6], b"\x93NUMPY", "{} is not .npy", path.display());
    let (hlen, start) = if bytes[6] == 1 {
        (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10)
    } else {
        (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        )
    };
    let header = std::str::from_utf8(&bytes[start..start + hlen]).expect("header");
    assert!(header.contains("'fortran_order': False"), "{header}");
    let descr = header
        .split("'descr': '")
        .nth(1)
        .and_then(|s| s.split('\'').next())
        .expect("descr");
    let shape: Vec<usize> = header
        .split("'shape': (")
        .nth(1)
        .and_then(|s| s.split(')').next())
        .expect("shape")
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let body = &bytes[start + hlen..];
    let values: Vec<f64> = match descr {
        "<f8" => body
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
            .collect(),
        "<f4" => body
            .chunks_exact(4)
            .map(|c| f64::from(f32::from_le_bytes(c.try_into().unwrap())))
            .collect(),
        "<i4" => body
            .chunks_exact(4)
            .map(|c| f64::from(i32::from_le_bytes(c.try_into().unwrap())))
            .collect(),
        "<i8" => body
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes(c.try_into().unwrap()) as f64)
            .collect(),
        other => panic!("unsupported dtype {other}"),
    };
    (values, shape)
}

fn as_labels(v: &[f64]) -> Vec<i32> {
    v.iter().map(|&x| x as i32).collect()
}

// ---------------------------------------------------------------------------------------
// Landsat k-means against scikit-learn

fn landsat() -> Raster {
    Raster::open(Path::new(env!("CARGO_MANIFEST_DIR")).join(LANDSAT))
        .and_then(|r| r.with_band_names(["blue", "green", "red"]))
        .map(|r| r.with_nodata(Some(0.0)).with_scale(1e-4, 0.0))
        .expect("open the Landsat scene")
}

/// The Landsat samples and our k-means fit (k = 8, n_init 1, seed 0, 2 threads), shared
/// by the tests that need them.
fn landsat_fit() -> &'static (Samples, KMeansModel) {
    static FIT: OnceLock<(Samples, KMeansModel)> = OnceLock::new();
    FIT.get_or_init(|| {
        let x = landsat().to_samples().expect("samples");
        let km = KMeans::new(8)
            .seed(0)
            .n_init(1)
            .threads(2)
            .progress(ProgressMode::Silent)
            .fit(&x)
            .expect("k-means");
        (x, km)
    })
}

const SKLEARN_KMEANS: &str = r#"
import sys, time
import numpy as np
from sklearn.cluster import KMeans
X = np.load(sys.argv[1])
t = time.perf_counter()
km = KMeans(n_clusters=8, n_init=1, random_state=0).fit(X)
print("seconds", time.perf_counter() - t)
np.save(sys.argv[2], km.labels_.astype(np.int32))
np.save(sys.argv[3], km.cluster_centers_.astype(np.float64))
print("inertia", float(km.inertia_))
print("n_iter", km.n_iter_)
"#;

#[test]
fn kmeans_on_landsat_agrees_with_scikit_learn() {
    let (x, km) = landsat_fit();
    assert_eq!(x.n_samples(), LANDSAT_VALID);
    assert_eq!(x.n_features(), 3);
    let dir = tempfile::tempdir().unwrap();
    let (xp, lp, cp) = (
        dir.path().join("x.npy"),
        dir.path().join("labels.npy"),
        dir.path().join("centers.npy"),
    );
    let a = x.as_f32().expect("raster samples are f32");
    write_npy(&xp, a.as_slice().unwrap(), &[a.nrows(), a.ncols()]);
    let kv = run_python(SKLEARN_KMEANS, &[&xp, &lp, &cp]);
    let sk_labels = as_labels(&read_npy(&lp).0);
    let (centers, shape) = read_npy(&cp);
    let sk_centers = Array2::from_shape_vec((shape[0], shape[1]), centers).unwrap();
    // scikit-learn's inertia recomputed in f64 from its labels and centers (its own
    // inertia_ is accumulated in float32 for float32 input)
    let sk_inertia = inertia(x, &sk_centers, &sk_labels).unwrap();
    let ari = adjusted_rand_index(km.labels(), &sk_labels).unwrap();
    let rel = (km.inertia() - sk_inertia) / sk_inertia;
    println!(
        "k-means on {} Landsat pixels: rasterlab inertia {:.4} ({} iterations, {:.3} s); \
         scikit-learn inertia {:.4} (reported {:.4}, {} iterations, {:.3} s); \
         relative difference {rel:+.5}; ARI {ari:.4}",
        x.n_samples(),
        km.inertia(),
        km.n_iter(),
        km.seconds(),
        sk_inertia,
        value(&kv, "inertia"),
        value(&kv, "n_iter"),
        value(&kv, "seconds"),
    );
    // our own inertia is what the model says it is
    let ours = inertia(x, km.centroids(), km.labels()).unwrap();
    assert!(
        (ours - km.inertia()).abs() < 1e-6 * ours,
        "{ours} vs {}",
        km.inertia()
    );
    assert!(rel.abs() <= 0.01, "inertia differs by {rel}");
    assert!(ari >= 0.95, "ARI {ari}");
}

#[test]
fn kmeans_is_deterministic_across_thread_counts() {
    let (x, km) = landsat_fit();
    let one = KMeans::new(8)
        .seed(0)
        .threads(1)
        .progress(ProgressMode::Silent)
        .fit(x)
        .unwrap();
    assert_eq!(one.labels(), km.labels());
    assert_eq!(one.centroids(), km.centroids());
    assert_eq!(one.inertia(), km.inertia());
}

/// What a runtime's observer sees: each run's label and thread count, and for each
/// compute task the size of the rayon pool it ran on (`rayon::current_num_threads` on
/// the worker) and the worker's name.
#[derive(Debug, Default)]
struct ThreadWitness {
    runs: std::sync::Mutex<Vec<(String, usize)>>,
    tasks: std::sync::Mutex<Vec<(usize, String)>>,
}

impl rasterlab::runtime::observe::RunObserver for ThreadWitness {
    fn begin_run(
        &self,
        threads: usize,
        label: &str,
        _total: usize,
    ) -> rasterlab::runtime::observe::RunGuard {
        self.runs.lock().unwrap().push((label.to_string(), threads));
        rasterlab::runtime::observe::RunGuard::new(())
    }

    fn task(
        &self,
        kind: rasterlab::runtime::observe::TaskKind,
        _chunk: usize,
        _start: Instant,
        _end: Instant,
    ) {
        if kind == rasterlab::runtime::observe::TaskKind::Compute {
            let name = std::thread::current().name().unwrap_or("").to_string();
            self.tasks
                .lock()
                .unwrap()
                .push((rayon::current_num_threads(), name));
        }
    }
}

#[test]
fn a_thread_setting_reaches_predict_and_the_metrics() {
    use rasterlab::cluster::{inertia_in, silhouette_score_in};
    let (x, km) = landsat_fit();
    let scene = landsat();
    let bands = ["blue", "green", "red"];
    // 3 threads on this 2-core machine differs from rayon's global pool (one per core)
    for n in [1, 3] {
        let witness = std::sync::Arc::new(ThreadWitness::default());
        // a budget that holds the samples, in several chunks
        let rt = Runtime::builder()
            .threads(n)
            .memory(128 << 20)
            .progress(ProgressMode::Silent)
            .observer(witness.clone())
            .build()
            .unwrap();
        assert_eq!(km.predict_in(x, &rt).unwrap(), km.labels());
        let i = inertia_in(x, km.centroids(), km.labels(), &rt).unwrap();
        assert!(
            (i - km.inertia()).abs() < 1e-6 * i,
            "{i} vs {}",
            km.inertia()
        );
        silhouette_score_in(x, km.labels(), 500, 0, &rt).unwrap();
        let z = x.clone().standardize_in(&rt).unwrap();
        assert_eq!(z.n_samples(), LANDSAT_VALID);
        let again = Samples::from_bands_in(&scene, &bands, &rt).unwrap();
        assert_eq!(again.as_f32(), x.as_f32());
        let map = km.predict_raster_in(&scene, &bands, &rt).unwrap();
        assert_eq!(map.valid_count(), LANDSAT_VALID);
        MiniBatchKMeans::new(8)
            .max_iter(1)
            .runtime(&rt)
            .progress(ProgressMode::Silent)
            .fit_raster(&scene, &bands)
            .unwrap();

        let runs = witness.runs.lock().unwrap().clone();
        let tasks = witness.tasks.lock().unwrap().clone();
        let labels: Vec<&str> = runs.iter().map(|(l, _)| l.as_str()).collect();
        println!(
            "{n} thread(s): {} runs ({}), {} compute tasks",
            runs.len(),
            labels.join(", "),
            tasks.len()
        );
        for expected in [
            "predict",
            "inertia",
            "silhouette",
            "standardize: scaling",
            "samples",
            "predict_raster",
            "mini-batch k-means counts",
        ] {
            assert!(
                labels.contains(&expected),
                "no {expected} run in {labels:?}"
            );
        }
        assert!(runs.iter().all(|(_, t)| *t == n), "{runs:?}");
        // the rasters were streamed in several chunks each
        assert!(tasks.len() > runs.len(), "{} tasks", tasks.len());
        for (pool, name) in &tasks {
            assert_eq!(*pool, n, "a task on a pool of {pool} threads ({name})");
            assert!(name.starts_with("rasterlab-"), "a task on thread {name:?}");
        }
        let workers: std::collections::HashSet<&String> = tasks.iter().map(|(_, w)| w).collect();
        println!(
            "{n} thread(s): tasks ran on {} distinct workers",
            workers.len()
        );
        assert!(workers.len() <= n, "{workers:?}");
    }
}

#[test]
fn kmeans_parallel_init_reaches_the_same_quality() {
    let (x, km) = landsat_fit();
    let par = KMeans::new(8)
        .seed(0)
        .init(Init::KMeansParallel)
        .progress(ProgressMode::Silent)
        .fit(x)
        .unwrap();
    let rel = (par.inertia() - km.inertia()) / km.inertia();
    println!(
        "k-means|| inertia {:.4} ({rel:+.5} vs k-means++)",
        par.inertia()
    );
    assert!(rel.abs() < 0.01, "{rel}");
}

#[test]
fn minibatch_on_landsat_is_close_to_full_kmeans() {
    let (x, km) = landsat_fit();
    let mb = MiniBatchKMeans::new(8)
        .seed(0)
        .progress(ProgressMode::Silent)
        .fit(x)
        .unwrap();
    let rel = (mb.inertia() - km.inertia()) / km.inertia();
    println!(
        "mini-batch inertia {:.4} vs k-means {:.4} ({rel:+.4}), {:.3} s",
        mb.inertia(),
        km.inertia(),
        mb.seconds()
    );
    assert_eq!(mb.labels().len(), x.n_samples());
    assert!(
        rel < 0.05,
        "mini-batch inertia {rel:+.4} relative to k-means"
    );
}

const SKLEARN_PARTIAL_FIT: &str = r#"
import sys
import numpy as np
from sklearn.cluster import MiniBatchKMeans
X = np.load(sys.argv[1])
off = np.load(sys.argv[2])
mb = MiniBatchKMeans(n_clusters=8, random_state=0)
steps = 0
for s, e in zip(off[:-1], off[1:]):
    if e - s < (8 if steps == 0 else 1):
        continue
    mb.partial_fit(X[s:e])
    steps += 1
labels = mb.predict(X)
C = mb.cluster_centers_.astype(np.float64)
print("inertia", ((X.astype(np.float64) - C[labels]) ** 2).sum())
print("steps", steps)
"#;

#[test]
fn minibatch_streams_raster_chunks() {
    let (x, km) = landsat_fit();
    let scene = landsat();
    // partial_fit over the raster's 256 x 256 chunks, read one by one in row-major order:
    // spatially ordered, very unlike random batches, so compare with scikit-learn's
    // partial_fit on the very same sequence of chunks
    let grid = rasterlab::runtime::grid::ChunkGrid::new(2041, 1860, 256, 256).unwrap();
    let mut mb = MiniBatchKMeans::new(8).seed(0);
    let mut all: Vec<f32> = Vec::new();
    let mut offsets = vec![0i32];
    for window in grid.iter() {
        let chunk = Samples::from_window(&scene, &["blue", "green", "red"], window).unwrap();
        all.extend(chunk.as_f32().unwrap().iter());
        offsets.push((all.len() / 3) as i32);
        if mb.n_steps() == 0 && chunk.n_samples() < 8 {
            continue; // the first step initialises and needs k samples
        }
        mb.partial_fit(&chunk).unwrap();
    }
    assert_eq!(all.len() / 3, LANDSAT_VALID);
    let streamed_x = Array2::from_shape_vec((LANDSAT_VALID, 3), all.clone()).unwrap();
    let model = mb.to_model().unwrap();
    let streamed = inertia(
        &streamed_x,
        model.centroids(),
        &model.predict(&streamed_x).unwrap(),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (xp, op) = (dir.path().join("x.npy"), dir.path().join("off.npy"));
    write_npy(&xp, &all, &[LANDSAT_VALID, 3]);
    write_npy(&op, &offsets, &[offsets.len()]);
    let kv = run_python(SKLEARN_PARTIAL_FIT, &[&xp, &op]);
    let sk = value(&kv, "inertia");
    println!(
        "partial_fit over {} chunks in raster order: inertia {streamed:.4} ({:+.4} vs k-means); \
         scikit-learn's partial_fit on the same chunks {sk:.4} ({:+.4})",
        mb.n_steps(),
        streamed / km.inertia() - 1.0,
        sk / km.inertia() - 1.0
    );
    assert_eq!(mb.n_steps() as f64, value(&kv, "steps"));
    assert!(streamed <= sk * 1.05, "{streamed} vs scikit-learn {sk}");

    // fit_raster: streaming with shuffled chunk order and mini-batches
    let fr = MiniBatchKMeans::new(8)
        .seed(0)
        .progress(ProgressMode::Silent)
        .fit_raster(&scene, &["blue", "green", "red"])
        .unwrap();
    assert_eq!(fr.counts().iter().sum::<usize>(), LANDSAT_VALID);
    assert!(fr.labels().is_empty());
    let rel = (fr.inertia() - km.inertia()) / km.inertia();
    println!(
        "fit_raster inertia {:.4} ({rel:+.4} vs k-means), {:.3} s",
        fr.inertia(),
        fr.seconds()
    );
    assert!(rel < 0.05, "{rel}");
    // its labels on the map agree with predicting the in-memory samples
    let map = fr
        .predict_raster(&scene, &["blue", "green", "red"])
        .unwrap();
    let direct = fr.predict(x).unwrap();
    let from_map: Vec<i32> = x
        .indices()
        .unwrap()
        .iter()
        .map(|&p| map.labels()[[p / 2041, p % 2041]])
        .collect();
    assert_eq!(from_map, direct);
}

#[test]
fn silhouette_agrees_with_scikit_learn_on_the_same_subset() {
    let (x, km) = landsat_fit();
    // the same 2000 samples for both: pick them here, pass them to Python
    let a = x.as_f32().unwrap();
    let idx: Vec<usize> = (0..2000).map(|i| i * 1583).collect();
    let sub = Array2::from_shape_fn((idx.len(), 3), |(i, j)| f64::from(a[[idx[i], j]]));
    let labels: Vec<i32> = idx.iter().map(|&i| km.labels()[i]).collect();
    let ours = silhouette_score(&sub, &labels, 10_000, 0).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (xp, lp) = (dir.path().join("x.npy"), dir.path().join("l.npy"));
    write_npy(&xp, sub.as_slice().unwrap(), &[idx.len(), 3]);
    write_npy(&lp, &labels, &[idx.len()]);
    let kv = run_python(
        "import sys, numpy as np\nfrom sklearn.metrics import silhouette_score\n\
         print('s', silhouette_score(np.load(sys.argv[1]), np.load(sys.argv[2])))",
        &[&xp, &lp],
    );
    let theirs = value(&kv, "s");
    println!("silhouette: rasterlab {ours:.6}, scikit-learn {theirs:.6}");
    assert!((ours - theirs).abs() < 1e-9, "{ours} vs {theirs}");
    // sampled: a random subset gives a close value
    let sampled = silhouette_score(x, km.labels(), 3000, 1).unwrap();
    assert!((sampled - ours).abs() < 0.1, "{sampled} vs {ours}");
}

// ---------------------------------------------------------------------------------------
// Samples <-> map

/// Validity of every pixel by a plain loop over the three bands read whole with GDAL.
fn valid_by_gdal() -> Vec<bool> {
    let ds = gdal::Dataset::open(Path::new(env!("CARGO_MANIFEST_DIR")).join(LANDSAT)).unwrap();
    let bands: Vec<Vec<u16>> = (1..=3)
        .map(|b| {
            ds.rasterband(b)
                .unwrap()
                .read_as::<u16>((0, 0), (2041, 1860), (2041, 1860), None)
                .unwrap()
                .data()
                .to_vec()
        })
        .collect();
    (0..2041 * 1860)
        .map(|p| bands.iter().all(|b| b[p] != 0))
        .collect()
}

#[test]
fn unstack_round_trip_keeps_nodata_and_georeference() {
    let (x, km) = landsat_fit();
    let map: LabelMap = x.unstack(km.labels()).unwrap();
    let valid = valid_by_gdal();
    assert_eq!(valid.iter().filter(|&&v| v).count(), LANDSAT_VALID);
    let labels = map.labels().as_slice().unwrap();
    for (p, (&v, &l)) in valid.iter().zip(labels).enumerate() {
        assert_eq!(v, l >= 0, "pixel {p}: valid {v}, label {l}");
        assert!(l < 8);
    }
    // the samples are the pixels' decoded values, in row-major order
    let a = x.as_f32().unwrap();
    let idx = x.indices().unwrap();
    assert!(idx.windows(2).all(|w| w[0] < w[1]));
    let raw = landsat()
        .read_raw::<u16>(
            rasterlab::runtime::grid::Window::new(0, 0, 2041, 1860),
            &["blue", "green", "red"],
        )
        .unwrap();
    for i in (0..x.n_samples()).step_by(997) {
        let (c, r) = x.pixel(i).unwrap();
        for b in 0..3 {
            assert_eq!(a[[i, b]], raw[[b, r, c]] as f32 * 1e-4f32);
        }
    }

    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("labels.tif");
    map.save(&out).unwrap();
    let src = gdal::Dataset::open(Path::new(env!("CARGO_MANIFEST_DIR")).join(LANDSAT)).unwrap();
    let ds = gdal::Dataset::open(&out).unwrap();
    assert_eq!(ds.raster_size(), (2041, 1860));
    assert_eq!(ds.geo_transform().unwrap(), src.geo_transform().unwrap());
    assert_eq!(ds.spatial_ref().unwrap(), src.spatial_ref().unwrap());
    assert_eq!(ds.spatial_ref().unwrap().auth_code().unwrap(), 32621);
    let band = ds.rasterband(1).unwrap();
    assert_eq!(band.no_data_value(), Some(-1.0));
    let back = band
        .read_as::<f32>((0, 0), (2041, 1860), (2041, 1860), None)
        .unwrap();
    assert!(back.data().iter().zip(labels).all(|(&b, &l)| b == l as f32));
    // nothing but the output in the folder (no temp file left behind)
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

// ---------------------------------------------------------------------------------------
// Spectral clustering on a generated rainfall cube

const SKLEARN_SPECTRAL: &str = r#"
import sys, time
import numpy as np
from sklearn.cluster import SpectralClustering
X = np.load(sys.argv[1])
gamma = float(sys.argv[3])
t = time.perf_counter()
sc = SpectralClustering(n_clusters=8, affinity="rbf", gamma=gamma, random_state=0).fit(X)
print("seconds", time.perf_counter() - t)
np.save(sys.argv[2], sc.labels_.astype(np.int32))
"#;

#[test]
fn spectral_on_rainfall_cube_agrees_with_scikit_learn() {
    let cube = rainfall::rainfall_cube(7);
    let x = &cube.samples;
    assert_eq!(x.dim(), (47 * 131, 303));
    let t = Instant::now();
    let exact: SpectralModel = SpectralClustering::new(8)
        .exact()
        .seed(0)
        .progress(ProgressMode::Silent)
        .fit(x)
        .unwrap();
    let t_exact = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let nystrom = SpectralClustering::new(8)
        .n_components(100)
        .seed(0)
        .progress(ProgressMode::Silent)
        .fit(x)
        .unwrap();
    let t_nystrom = t.elapsed().as_secs_f64();
    assert_eq!(exact.gamma(), nystrom.gamma());

    let dir = tempfile::tempdir().unwrap();
    let (xp, lp) = (dir.path().join("x.npy"), dir.path().join("labels.npy"));
    write_npy(&xp, x.as_slice().unwrap(), &[x.nrows(), x.ncols()]);
    let gamma_arg = PathBuf::from(format!("{:.17e}", exact.gamma()));
    let kv = run_python(SKLEARN_SPECTRAL, &[&xp, &lp, &gamma_arg]);
    let sk = as_labels(&read_npy(&lp).0);

    let agree = adjusted_rand_index(exact.labels(), &sk).unwrap();
    let sk_truth = adjusted_rand_index(&sk, &cube.truth).unwrap();
    let exact_truth = adjusted_rand_index(exact.labels(), &cube.truth).unwrap();
    let nystrom_truth = adjusted_rand_index(nystrom.labels(), &cube.truth).unwrap();
    println!(
        "spectral on 6157 x 303 (gamma {:.4e}): exact {t_exact:.3} s, nystrom {t_nystrom:.3} s, \
         scikit-learn {:.3} s; ARI exact vs scikit-learn {agree:.4}; ARI vs truth: \
         scikit-learn {sk_truth:.4}, exact {exact_truth:.4}, nystrom {nystrom_truth:.4}",
        exact.gamma(),
        value(&kv, "seconds"),
    );
    assert!(agree >= 0.9, "exact vs scikit-learn ARI {agree}");
    assert!(
        exact_truth >= sk_truth - 0.05,
        "{exact_truth} vs {sk_truth}"
    );
    assert!(
        nystrom_truth >= sk_truth - 0.05,
        "{nystrom_truth} vs {sk_truth}"
    );
}

// ---------------------------------------------------------------------------------------
// Bad input

#[test]
fn bad_input_gives_typed_errors() {
    let x = Samples::from_array(Array2::from_shape_fn((20, 2), |(i, j)| (i * 2 + j) as f64));
    assert!(matches!(
        KMeans::new(0).fit(&x),
        Err(Error::Invalid { what: "k", .. })
    ));
    assert!(matches!(
        KMeans::new(21).fit(&x),
        Err(Error::TooFewSamples {
            what: "k",
            requested: 21,
            available: 20
        })
    ));
    assert!(matches!(
        MiniBatchKMeans::new(21).fit(&x),
        Err(Error::TooFewSamples { what: "k", .. })
    ));
    assert!(matches!(
        SpectralClustering::new(21).exact().fit(&x),
        Err(Error::TooFewSamples { what: "k", .. })
    ));
    assert!(matches!(
        SpectralClustering::new(2).n_components(25).fit(&x),
        Err(Error::TooFewSamples {
            what: "n_components",
            requested: 25,
            available: 20
        })
    ));
    assert!(matches!(
        KMeans::new(2).fit(&Array2::<f64>::zeros((0, 2))),
        Err(Error::NoValidSamples { .. })
    ));

    // NaN in features
    let mut nan = x.to_f64();
    nan[[7, 1]] = f64::NAN;
    for result in [
        KMeans::new(2).fit(&nan).map(|_| ()),
        MiniBatchKMeans::new(2).fit(&nan).map(|_| ()),
        SpectralClustering::new(2)
            .n_components(10)
            .fit(&nan)
            .map(|_| ()),
    ] {
        assert!(
            matches!(
                result,
                Err(Error::NonFinite {
                    sample: 7,
                    feature: 1,
                    ..
                })
            ),
            "{result:?}"
        );
    }

    // all-nodata raster: a GeoTIFF of zeros with nodata 0
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("zeros.tif");
    {
        let driver = gdal::DriverManager::get_driver_by_name("GTiff").unwrap();
        let mut ds = driver
            .create_with_band_type::<u16, _>(&path, 32, 16, 2)
            .unwrap();
        ds.set_geo_transform(&[0.0, 1.0, 0.0, 16.0, 0.0, -1.0])
            .unwrap();
        for b in 1..=2 {
            ds.rasterband(b)
                .unwrap()
                .set_no_data_value(Some(0.0))
                .unwrap();
        }
    }
    let r = Raster::open(&path).unwrap();
    assert!(matches!(
        Samples::from_raster(&r),
        Err(Error::NoValidSamples { .. })
    ));
    assert!(matches!(
        MiniBatchKMeans::new(2).fit_raster(&r, &["band1", "band2"]),
        Err(Error::NoValidSamples { .. })
    ));
    assert!(matches!(
        Samples::from_bands(&r, &["nope"]),
        Err(Error::UnknownBand { .. })
    ));
}

// ---------------------------------------------------------------------------------------
// CLI

#[test]
fn cli_cluster_writes_a_label_map_and_fails_cleanly() {
    let exe = env!("CARGO_BIN_EXE_rasterlab");
    let scene = Path::new(env!("CARGO_MANIFEST_DIR")).join(LANDSAT);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("labels.tif");
    let run = |args: &[&str]| Command::new(exe).args(args).output().unwrap();
    let ok = run(&[
        "cluster",
        scene.to_str().unwrap(),
        "--band-names",
        "blue,green,red",
        "--bands",
        "green,red",
        "--nodata",
        "0",
        "--scale",
        "0.0001",
        "--k",
        "5",
        "--method",
        "minibatch",
        "--standardize",
        "--quiet",
        "-o",
        out.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&ok.stdout);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(
        stdout.contains("inertia:") && stdout.contains("iterations:"),
        "{stdout}"
    );
    assert!(stdout.contains("3169229 valid pixels"), "{stdout}");
    let ds = gdal::Dataset::open(&out).unwrap();
    assert_eq!(ds.rasterband(1).unwrap().no_data_value(), Some(-1.0));

    for (args, needle) in [
        (vec!["--k", "0"], "invalid k"),
        (vec!["--k", "3", "--bands", "nir"], "unknown band"),
        (
            vec!["--k", "3", "--method", "spectral", "--n-components", "2"],
            "n_components",
        ),
    ] {
        let bad_out = dir.path().join("bad.tif");
        let mut all = vec![
            "cluster",
            scene.to_str().unwrap(),
            "--band-names",
            "blue,green,red",
            "--nodata",
            "0",
            "-o",
            bad_out.to_str().unwrap(),
        ];
        all.extend(args);
        let res = run(&all);
        let stderr = String::from_utf8_lossy(&res.stderr);
        assert!(!res.status.success());
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
        assert!(stderr.contains(needle), "{stderr}");
        assert!(!bad_out.exists());
    }
    // only the good output is left
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}
