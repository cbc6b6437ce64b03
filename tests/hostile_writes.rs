//! Hostile writes: a full disk, an output that is an input (however it is spelled),
//! special files and planted symbolic links at the output path, signals in the middle of
//! a save, absurd thread counts and memory budgets, names at the file system's limit.
//!
//! Every case runs the real binary in a temporary folder and checks the exit status, the
//! one-line message, what the folder holds afterwards (nothing new, no temporary debris)
//! and the bytes of every file that was there before (a previous output, the inputs).
//!
//! The full-disk cases mount a 2 MiB tmpfs, which needs root (CI runs as root); without
//! it they print `SKIPPED (needs root to mount a tmpfs): ...` and pass.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::cli::*;
use common::*;
use gdal::{Dataset, Metadata};
use rasterlab::prelude::*;

// ---------------------------------------------------------------------------------------
// Helpers

/// What stands under a name, seen without following it or opening it (a FIFO would
/// block a reader).
#[derive(Debug, Clone, PartialEq)]
enum Entry {
    File(Vec<u8>),
    Link(PathBuf),
    Folder,
    Special(&'static str),
}

fn entry(path: &Path) -> Option<Entry> {
    use std::os::unix::fs::FileTypeExt;
    let meta = std::fs::symlink_metadata(path).ok()?;
    let t = meta.file_type();
    Some(if t.is_symlink() {
        Entry::Link(std::fs::read_link(path).expect("read_link"))
    } else if t.is_dir() {
        Entry::Folder
    } else if t.is_file() {
        Entry::File(std::fs::read(path).expect("read"))
    } else if t.is_fifo() {
        Entry::Special("fifo")
    } else if t.is_char_device() {
        Entry::Special("character device")
    } else if t.is_block_device() {
        Entry::Special("block device")
    } else if t.is_socket() {
        Entry::Special("socket")
    } else {
        Entry::Special("unknown")
    })
}

/// Every entry of `dir` (not recursing into folders).
fn snapshot(dir: &Path) -> BTreeMap<String, Entry> {
    entries(dir)
        .into_iter()
        .filter_map(|name| entry(&dir.join(&name)).map(|e| (name, e)))
        .collect()
}

fn assert_same(before: &BTreeMap<String, Entry>, after: &BTreeMap<String, Entry>, what: &str) {
    assert_eq!(
        after.keys().collect::<Vec<_>>(),
        before.keys().collect::<Vec<_>>(),
        "{what}: the folder changed"
    );
    for (name, e) in before {
        assert!(after[name] == *e, "{what}: {name} was modified");
    }
}

/// Runs `args` in `cwd` and checks a refusal: exit status 1 (rasterlab's own error, not a
/// panic's 101 nor a signal), one `error:` line holding every needle, nothing on stdout,
/// and every folder of `watch` exactly as before (no new entry, no temporary file,
/// previous files byte for byte, special files and links as they were). Returns the
/// message and the time the run took.
fn refused_watching(
    cwd: &Path,
    watch: &[&Path],
    args: &[&str],
    env: &[(&str, &str)],
    needles: &[&str],
) -> (String, Duration) {
    let before: Vec<_> = watch.iter().map(|d| snapshot(d)).collect();
    let start = Instant::now();
    let out = run_env(cwd, args, env);
    let took = start.elapsed();
    let stderr = text(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{args:?}: status {:?}\n{stderr}",
        out.status
    );
    assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    assert_eq!(
        stderr.trim_end().lines().count(),
        1,
        "{args:?}: not one line:\n{stderr}"
    );
    let line = stderr.trim_end().to_string();
    assert!(line.starts_with("error: "), "{args:?}: {stderr}");
    for needle in needles {
        assert!(line.contains(needle), "{args:?}: no {needle:?} in {line}");
    }
    assert!(out.stdout.is_empty(), "{args:?}: {}", text(&out.stdout));
    for (dir, before) in watch.iter().zip(&before) {
        assert_same(before, &snapshot(dir), &format!("{args:?}"));
    }
    (line, took)
}

fn refused(dir: &Path, args: &[&str], needles: &[&str]) -> (String, Duration) {
    refused_watching(dir, &[dir], args, &[], needles)
}

/// `gdalinfo -checksum` of `path`: the checksum lines; panics when GDAL cannot read it.
fn checksums(path: &Path) -> Vec<String> {
    let out = Command::new("gdalinfo")
        .arg("-checksum")
        .arg(path)
        .output()
        .expect("gdalinfo");
    let stdout = text(&out.stdout);
    assert!(
        out.status.success(),
        "gdalinfo -checksum {}: {}",
        path.display(),
        text(&out.stderr)
    );
    let sums: Vec<String> = stdout
        .lines()
        .filter(|l| l.contains("Checksum="))
        .map(|l| l.trim().to_string())
        .collect();
    assert!(!sums.is_empty(), "{stdout}");
    sums
}

fn gdalinfo(path: &Path) -> String {
    let out = Command::new("gdalinfo")
        .arg(path)
        .output()
        .expect("gdalinfo");
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout)
}

/// This host's name as rasterlab puts it into temporary names.
fn host_tag() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").expect("hostname");
    host.trim()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .take(32)
        .collect()
}

// ---------------------------------------------------------------------------------------
// 1. A full disk, on a real (small) file system

/// The runs of the full-disk tests: ndi and product of the whole scene, and k-means of a
/// crop, all writing over the previous output `full/k.tif`.
fn full_disk_runs(crop: &str) -> Vec<Vec<String>> {
    let scene = abs(SCENE);
    let mut ndi_args: Vec<String> = vec!["ndi".into(), scene.clone()];
    ndi_args.extend(NDI.map(String::from));
    [
        ndi_args,
        vec![
            "product".into(),
            scene.clone(),
            "--nodata".into(),
            "0".into(),
        ],
        [
            "cluster",
            crop,
            "--nodata",
            "0",
            "--k",
            "3",
            "--method",
            "kmeans",
            "--max-iter",
            "3",
        ]
        .map(String::from)
        .to_vec(),
    ]
    .into_iter()
    .map(|mut a| {
        a.extend(["--quiet", "-o", "full/k.tif"].map(String::from));
        a
    })
    .collect()
}

/// Runs `args` into the full file system and checks the refusal, and that the previous
/// `k.tif` is intact, byte for byte and for GDAL.
fn fails_full(fs: &Tmpfs, args: &[String], k_checksums: &[String]) {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    refused_watching(
        fs.base(),
        &[&fs.mnt, fs.base()],
        &args,
        &[],
        &[
            "could not write full/k.tif",
            "No space left on device",
            "nothing was written under that name",
        ],
    );
    assert!(debris(&fs.mnt).is_empty(), "{:?}", entries(&fs.mnt));
    assert_eq!(checksums(&fs.mnt.join("k.tif")), k_checksums, "{args:?}");
}

/// A previous output `full/k.tif` (a real 16 x 16 GeoTIFF, not all nodata) and a 600 x 600 crop for the
/// k-means run (its label map is larger than 16 KiB); returns k.tif's checksums.
fn full_disk_setup(fs: &Tmpfs) -> (String, Vec<String>) {
    let k = fs.mnt.join("k.tif");
    crop(&k, 900, 800, 16, 16);
    let small = fs.base().join("crop.tif");
    crop(&small, 700, 600, 600, 600);
    (small.to_string_lossy().into_owned(), checksums(&k))
}

#[test]
fn a_full_disk_fails_cleanly_and_keeps_the_previous_output() {
    let Some(fs) = Tmpfs::mount("a_full_disk_fails_cleanly_and_keeps_the_previous_output") else {
        return;
    };
    let (small, sums) = full_disk_setup(&fs);
    let runs = full_disk_runs(&small);
    // ndi and product of the whole scene need far more than the 2 MiB there are: the
    // disk fills part-way through the save
    for args in &runs[..2] {
        fails_full(&fs, args, &sums);
    }
    // the label map of the crop needs more than the 16 KiB left
    fs.fill_but(16 << 10);
    fails_full(&fs, &runs[2], &sums);
}

#[test]
fn no_space_at_all_fails_cleanly_and_keeps_the_previous_output() {
    let Some(fs) = Tmpfs::mount("no_space_at_all_fails_cleanly_and_keeps_the_previous_output")
    else {
        return;
    };
    let (small, sums) = full_disk_setup(&fs);
    fs.fill();
    for args in &full_disk_runs(&small) {
        fails_full(&fs, args, &sums);
    }
}

#[test]
fn the_library_returns_a_write_error_on_a_full_disk() {
    let Some(fs) = Tmpfs::mount("the_library_returns_a_write_error_on_a_full_disk") else {
        return;
    };
    let scene = Raster::open(data(SCENE))
        .and_then(|r| r.with_band_names(["blue", "green", "red"]))
        .expect("scene");
    let out = fs.mnt.join("ndi.tif");
    let save = |dir: &Path| {
        let before = snapshot(dir);
        let err = scene
            .norm_diff("green", "red")
            .expect("ndi")
            .nodata(0.0)
            .save(&out)
            .progress(ProgressMode::Silent)
            .run()
            .unwrap_err();
        match &err {
            Error::Write { path, cause } => {
                assert_eq!(path, &out);
                assert!(cause.contains("No space left on device"), "{cause}");
            }
            other => panic!("not a write error: {other}"),
        }
        assert_same(&before, &snapshot(dir), "Save::run");
    };
    save(&fs.mnt);
    fs.fill();
    save(&fs.mnt);
}

// ---------------------------------------------------------------------------------------
// 2. An output that is one of the inputs

/// A folder holding `s.tif` (a copy of the scene), `hl.tif` (a hard link to it),
/// single-band crops `b3.tif` and `b4.tif`, the four dated `rgbn_*.tif`, a VRT made by
/// gdalbuildvrt over s.tif and one written by hand (relative to itself, in `sub/`), and a
/// NetCDF file `f.nc` (variable `rain`, two time steps).
fn inputs_folder() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    std::fs::copy(data(SCENE), d.join("s.tif")).expect("copy scene");
    std::fs::hard_link(d.join("s.tif"), d.join("hl.tif")).expect("hard link");
    for (src, name) in [(B3, "b3.tif"), (B4, "b4.tif")] {
        gdal_translate(
            &["-srcwin", "900", "800", "64", "64"],
            &data(src),
            &d.join(name),
        );
    }
    for date in ["20160101", "20160401", "20160517", "20170203"] {
        let name = format!("rgbn_{date}.tif");
        gdal_translate(
            &["-srcwin", "0", "0", "32", "32"],
            &data(&format!("data/{name}")),
            &d.join(name),
        );
    }
    let status = Command::new("gdalbuildvrt")
        .args(["-q", "v.vrt", "s.tif"])
        .current_dir(d)
        .status()
        .expect("gdalbuildvrt");
    assert!(status.success());
    std::fs::create_dir(d.join("sub")).expect("sub");
    let bands: String = (1..=3)
        .map(|b| {
            format!(
                "  <VRTRasterBand dataType=\"UInt16\" band=\"{b}\"><SimpleSource>\
                 <SourceFilename relativeToVRT=\"1\">../s.tif</SourceFilename><SourceBand>{b}</SourceBand>\
                 <SrcRect xOff=\"900\" yOff=\"800\" xSize=\"32\" ySize=\"32\"/><DstRect xOff=\"0\" yOff=\"0\" xSize=\"32\" ySize=\"32\"/>\
                 </SimpleSource></VRTRasterBand>\n"
            )
        })
        .collect();
    std::fs::write(
        d.join("sub/hand.vrt"),
        format!("<VRTDataset rasterXSize=\"32\" rasterYSize=\"32\">\n{bands}</VRTDataset>\n"),
    )
    .expect("vrt");
    let cdl = "netcdf f {\ndimensions:\n  time = 2 ;\n  y = 3 ;\n  x = 4 ;\nvariables:\n  \
               double time(time) ;\n    time:units = \"days since 2020-01-01\" ;\n    time:calendar = \"standard\" ;\n  \
               double y(y) ;\n  double x(x) ;\n  float rain(time, y, x) ;\n    rain:_FillValue = -9999.f ;\n\
               data:\n  time = 0, 5 ;\n  y = 3, 2, 1 ;\n  x = 1, 2, 3, 4 ;\n  \
               rain = 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13 ;\n}\n";
    let cdl_path = d.join("f.cdl");
    std::fs::write(&cdl_path, cdl).expect("cdl");
    let status = Command::new("ncgen")
        .arg("-o")
        .arg(d.join("f.nc"))
        .arg(&cdl_path)
        .status()
        .expect("ncgen (Debian package netcdf-bin)");
    assert!(status.success(), "ncgen");
    dir
}

#[test]
fn an_output_that_is_an_input_is_refused_however_it_is_spelled() {
    let dir = inputs_folder();
    let d = dir.path();
    let s_abs = d.join("s.tif").to_string_lossy().into_owned();
    let parent = d.file_name().expect("name").to_string_lossy().into_owned();
    let via_parent = format!("../{parent}/s.tif");
    let is_input = |out: &str, input: &str| {
        vec![
            format!("refusing to write {out}: it is the input "),
            input.to_string(),
        ]
    };
    let check = |args: Vec<&str>, needles: Vec<String>| {
        let needles: Vec<&str> = needles.iter().map(String::as_str).collect();
        refused(d, &args, &needles);
    };
    // one file, every spelling of it; the hard link is another name for the same inode
    for out in [
        "s.tif",
        "./s.tif",
        s_abs.as_str(),
        "hl.tif",
        via_parent.as_str(),
    ] {
        check(ndi_args("s.tif", &[], out), is_input(out, "s.tif"));
    }
    // the input given through the hard link, the output through the first name
    check(
        ndi_args("hl.tif", &[], "s.tif"),
        is_input("s.tif", "hl.tif"),
    );
    check(
        vec!["product", "s.tif", "--quiet", "-o", "./s.tif"],
        is_input("./s.tif", "s.tif"),
    );
    check(
        vec!["product", "b3.tif", "b4.tif", "--quiet", "-o", "b4.tif"],
        is_input("b4.tif", "b4.tif"),
    );
    check(
        vec!["cluster", "s.tif", "--k", "3", "--quiet", "-o", "s.tif"],
        is_input("s.tif", "s.tif"),
    );
    // one file of a time stack
    let stack = [
        "rgbn_20160101.tif",
        "rgbn_20160401.tif",
        "rgbn_20160517.tif",
        "rgbn_20170203.tif",
    ];
    for out in ["rgbn_20160401.tif", "./rgbn_20170203.tif"] {
        let mut args = vec!["reduce"];
        args.extend(stack);
        args.extend(["--stat", "mean,std", "--quiet", "-o", out]);
        let file = out.trim_start_matches("./");
        check(args, is_input(out, file));
    }
    // the file behind a VRT, and the VRT itself
    check(ndi_args("v.vrt", &[], "s.tif"), is_input("s.tif", "s.tif"));
    check(ndi_args("v.vrt", &[], "v.vrt"), is_input("v.vrt", "v.vrt"));
    check(
        vec!["cluster", "v.vrt", "--k", "2", "--quiet", "-o", "hl.tif"],
        is_input("hl.tif", "s.tif"),
    );
    check(
        ndi_args("sub/hand.vrt", &[], "s.tif"),
        is_input("s.tif", "s.tif"),
    );
    check(
        vec!["product", "sub/hand.vrt", "--quiet", "-o", "./s.tif"],
        is_input("./s.tif", "s.tif"),
    );
    // NetCDF: the file behind the subdataset name, however the variable is given
    let nc = "NETCDF:\"f.nc\":rain";
    check(
        vec!["reduce", nc, "--quiet", "-o", "f.nc"],
        is_input("f.nc", "f.nc"),
    );
    check(
        vec![
            "reduce",
            "f.nc",
            "--variable",
            "rain",
            "--quiet",
            "-o",
            "./f.nc",
        ],
        is_input("./f.nc", "f.nc"),
    );
    check(
        vec!["cluster", nc, "--k", "2", "--quiet", "-o", "f.nc"],
        is_input("f.nc", "f.nc"),
    );
    // the same runs into a new name work (the refusals are about the name, not the input)
    succeeded(d, &ndi_args("sub/hand.vrt", &[], "fine.tif"));
    succeeded(d, &["reduce", nc, "--quiet", "-o", "fine_nc.tif"]);
    assert!(debris(d).is_empty(), "{:?}", entries(d));
}

// ---------------------------------------------------------------------------------------
// 3. --profile is an output as well

#[test]
fn a_profile_path_that_cannot_be_written_is_refused_before_the_run() {
    let dir = inputs_folder();
    let d = dir.path();
    let long = format!("{}.svg", "p".repeat(252));
    let commands: Vec<Vec<&str>> = vec![
        {
            let mut a = vec!["ndi", "s.tif"];
            a.extend(NDI);
            a
        },
        vec!["product", "b3.tif", "b4.tif"],
        vec!["reduce", "rgbn_20160101.tif", "rgbn_20160401.tif"],
        vec!["cluster", "b3.tif", "--k", "2"],
    ];
    for command in &commands {
        let input = command[1];
        for (profile, needles) in [
            // the output itself
            (
                "o.tif",
                vec!["cannot write o.tif", "also the run's output o.tif"],
            ),
            (
                "./o.tif",
                vec!["cannot write ./o.tif", "also the run's output"],
            ),
            // an input, directly and through the hard link
            (input, vec!["refusing to write", "is the input", input]),
            // a missing folder, a name too long for the file system
            (
                "nope/p.svg",
                vec!["cannot write nope/p.svg", "does not exist"],
            ),
            (&long, vec!["File name too long"]),
        ] {
            let mut args = command.clone();
            args.extend(["--quiet", "--profile", profile, "-o", "o.tif"]);
            refused(d, &args, &needles);
        }
        if input == "s.tif" {
            let mut args = command.clone();
            args.extend(["--quiet", "--profile", "hl.tif", "-o", "o.tif"]);
            refused(d, &args, &["refusing to write hl.tif", "is the input"]);
        }
    }
    assert!(!d.join("o.tif").exists());
}

// ---------------------------------------------------------------------------------------
// 4. Special files and planted links

#[test]
fn special_files_at_the_output_path_are_refused_and_left_as_they_are() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let small = d.join("small.tif");
    crop(&small, 900, 800, 64, 64);
    std::fs::write(d.join("precious.txt"), b"precious bytes\n").expect("precious");
    std::os::unix::fs::symlink("precious.txt", d.join("link.tif")).expect("symlink");
    // a link to the input itself: still a link, refused as such
    std::os::unix::fs::symlink("small.tif", d.join("input_link.tif")).expect("symlink");
    std::fs::create_dir(d.join("folder.tif")).expect("folder");
    let status = Command::new("mkfifo")
        .arg(d.join("fifo.tif"))
        .status()
        .expect("mkfifo");
    assert!(status.success());
    // a socket, bound and left behind (the listener is dropped, the entry stays)
    drop(std::os::unix::net::UnixListener::bind(d.join("socket.tif")).expect("socket"));
    let mut cases = vec![
        ("fifo.tif", "FIFO (named pipe)"),
        ("link.tif", "symbolic link"),
        ("input_link.tif", "symbolic link"),
        ("folder.tif", "folder"),
        ("socket.tif", "socket"),
    ];
    let made_device = is_root()
        && Command::new("mknod")
            .arg(d.join("device.tif"))
            .args(["c", "1", "3"])
            .status()
            .is_ok_and(|s| s.success());
    if made_device {
        cases.push(("device.tif", "device"));
    } else {
        eprintln!("SKIPPED (needs root to make a device with mknod): the character-device case");
    }
    let before = snapshot(d);
    for &(name, kind) in &cases {
        let why = format!("it is a {kind}; rasterlab replaces only regular files");
        let head = format!("cannot write {name}");
        for mut args in [
            ndi_args("small.tif", &[], name),
            vec!["product", "small.tif", "--quiet", "-o", name],
            vec!["reduce", "small.tif", "--quiet", "-o", name],
            vec!["cluster", "small.tif", "--k", "2", "--quiet", "-o", name],
        ] {
            refused(d, &args, &[&head, &why]);
            // the profile as the special file
            let n = args.len();
            args[n - 1] = "new.tif";
            args.extend(["--profile", name]);
            refused(d, &args, &[&head, &why]);
        }
    }
    // the entries are what they were: the same kind, the links to the same targets, the
    // file behind the link unchanged
    assert_same(&before, &snapshot(d), "special files");
    assert_eq!(
        std::fs::read(d.join("precious.txt")).expect("precious"),
        b"precious bytes\n"
    );
    assert_eq!(
        entry(&d.join("link.tif")),
        Some(Entry::Link("precious.txt".into()))
    );
}

#[test]
fn debris_cleanup_removes_only_regular_files_of_dead_processes_of_this_host() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let small = d.join("small.tif");
    crop(&small, 900, 800, 64, 64);
    std::fs::write(d.join("precious.txt"), b"precious bytes\n").expect("precious");
    let host = host_tag();
    let me = std::process::id();
    // a pid above Linux's pid_max (4194304) cannot be running
    let planted_link = format!(".x.tif.rasterlab-{host}-99999999-abcdef.tmp");
    let planted_dir_link = format!(".y.tif.rasterlab-{host}-99999998-abcdef.tmp");
    let dead = format!(".ndi.tif.rasterlab-{host}-99999997-ghijkl.tmp");
    let dead_sidecar = format!(".ndi.tif.rasterlab-{host}-99999996-mnopqr.tmp.aux.xml");
    let dead_old_style = ".ndi.tif.rasterlab-99999995-123456789.tmp".to_string();
    let alive = format!(".ndi.tif.rasterlab-{host}-{me}-stuvwx.tmp");
    let other_host = ".ndi.tif.rasterlab-elsewhere-99999994-yzabcd.tmp".to_string();
    let dead_folder = format!(".z.tif.rasterlab-{host}-99999993-efghij.tmp");
    let dead_probe = format!(".probe.rasterlab-{host}-99999992-klmnop.tmp");
    std::os::unix::fs::symlink(d.join("precious.txt"), d.join(&planted_link)).expect("symlink");
    std::os::unix::fs::symlink(d, d.join(&planted_dir_link)).expect("symlink");
    for name in [
        &dead,
        &dead_sidecar,
        &dead_old_style,
        &dead_probe,
        &alive,
        &other_host,
    ] {
        std::fs::write(d.join(name), b"half a tiff").expect("debris");
    }
    std::fs::create_dir(d.join(&dead_folder)).expect("folder");
    let before = snapshot(d);

    succeeded(d, &ndi_args("small.tif", &[], "ndi.tif"));

    let after = snapshot(d);
    // removed: the regular files of dead processes of this host, whatever the naming
    for gone in [&dead, &dead_sidecar, &dead_old_style, &dead_probe] {
        assert!(!after.contains_key(gone.as_str()), "{gone} was kept");
    }
    // kept as they were: links (never followed), a folder, a live process's file, another
    // host's file, and the precious file behind the link
    for kept in [
        &planted_link,
        &planted_dir_link,
        &dead_folder,
        &alive,
        &other_host,
        &"precious.txt".to_string(),
        &"small.tif".to_string(),
    ] {
        assert_eq!(
            after.get(kept.as_str()),
            before.get(kept.as_str()),
            "{kept}"
        );
    }
    assert_eq!(
        entry(&d.join(&planted_link)),
        Some(Entry::Link(d.join("precious.txt")))
    );
    assert_eq!(
        std::fs::read(d.join("precious.txt")).expect("precious"),
        b"precious bytes\n"
    );
    // and nothing else: the new output only
    let mut names: Vec<&String> = after.keys().collect();
    names.retain(|n| !before.contains_key(n.as_str()));
    assert_eq!(names, ["ndi.tif"]);
}

// ---------------------------------------------------------------------------------------
// 5. Signals during a long save

/// Starts the long save (the product of the mosaic, one thread, 256-pixel chunks) into
/// `p.tif` in `dir`, and waits until its temporary file is there and holds at least
/// `min_bytes`.
fn start_long_save(dir: &Path, min_bytes: u64) -> (Child, String) {
    let mut child = Command::new(EXE)
        .args([
            "product",
            "mosaic.vrt",
            "--threads",
            "1",
            "--chunks",
            "256",
            "--quiet",
            "-o",
            "p.tif",
        ])
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let start = Instant::now();
    let tmp = loop {
        // (check_output_path's `.probe.rasterlab-*` comes and goes before it)
        let temp = debris(dir)
            .into_iter()
            .find(|n| n.starts_with(".p.tif.rasterlab-") && n.ends_with(".tmp"));
        if let Some(tmp) = temp
            && std::fs::metadata(dir.join(&tmp)).is_ok_and(|m| m.len() >= min_bytes)
        {
            break tmp;
        }
        if start.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "no temporary file of {min_bytes}+ bytes after 20 s: {:?}",
                entries(dir)
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    (child, tmp)
}

#[test]
fn sigint_sigterm_and_sighup_stop_a_save_and_leave_nothing_behind() {
    let dir = signal_folder();
    let d = dir.path();
    for (signal, code) in [("INT", 130), ("TERM", 143), ("HUP", 129)] {
        let before = snapshot(d);
        let (child, _) = start_long_save(d, 0);
        let (out, _) = signal_and_wait(child, signal);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "SIG{signal}: {stderr}");
        assert_eq!(
            stderr.trim_end(),
            format!("error: cancelled: interrupted by SIG{signal}"),
            "SIG{signal}"
        );
        assert!(out.stdout.is_empty(), "{}", text(&out.stdout));
        // no temporary file, the previous p.tif as it was, nothing new
        assert!(debris(d).is_empty(), "SIG{signal}: {:?}", entries(d));
        assert_same(&before, &snapshot(d), &format!("SIG{signal}"));
    }
}

#[test]
fn sigkill_leaves_debris_that_the_next_run_removes() {
    use std::os::unix::process::ExitStatusExt;
    let dir = signal_folder();
    let d = dir.path();
    let p_before = entry(&d.join("p.tif"));
    // once it has written something
    let (child, tmp) = start_long_save(d, 1);
    let (out, _) = signal_and_wait(child, "KILL");
    assert_eq!(out.status.signal(), Some(9), "{:?}", out.status);
    // nobody could clean up: the temporary file stays, the previous output is intact
    assert_eq!(debris(d), std::slice::from_ref(&tmp), "{:?}", entries(d));
    assert!(
        std::fs::metadata(d.join(&tmp)).expect("debris").len() > 0,
        "the save had started writing"
    );
    assert_eq!(entry(&d.join("p.tif")), p_before);
    // the next run into the folder, a quick one, recognises it and removes it
    succeeded(d, &ndi_args("small.tif", &[], "q.tif"));
    assert!(debris(d).is_empty(), "{:?}", entries(d));
    assert!(d.join("q.tif").is_file());
    assert_eq!(entry(&d.join("p.tif")), p_before);
}

// ---------------------------------------------------------------------------------------
// 6. Bounds: threads and memory

#[test]
fn absurd_thread_counts_are_refused_at_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let small = d.join("small.tif");
    crop(&small, 900, 800, 64, 64);
    let scene = abs(SCENE);
    let commands: Vec<Vec<&str>> = vec![
        {
            let mut a = vec!["ndi", &scene];
            a.extend(NDI);
            a
        },
        vec!["product", &scene],
        vec!["reduce", &scene],
        vec!["cluster", &scene, "--nodata", "0", "--k", "3"],
    ];
    for command in &commands {
        let mut args = command.clone();
        args.extend(["--threads", "40000", "--quiet", "-o", "out.tif"]);
        let (line, took) = refused(
            d,
            &args,
            &[
                "invalid thread count",
                "40000 threads",
                "allowed 1 to ",
                "per usable core",
            ],
        );
        assert!(took < Duration::from_secs(2), "{args:?}: {took:?}");
        let mut args = command.clone();
        args.extend(["--quiet", "-o", "out.tif"]);
        let (env_line, took) = refused_watching(
            d,
            &[d],
            &args,
            &[("RASTERLAB_THREADS", "40000")],
            &[
                "invalid RASTERLAB_THREADS",
                "40000 threads",
                "allowed 1 to ",
            ],
        );
        assert!(took < Duration::from_secs(2), "{args:?}: {took:?}");
        // the same range both ways
        let range = |l: &str| l.split("allowed ").nth(1).map(str::to_string);
        assert_eq!(range(&line), range(&env_line));
    }
}

#[test]
fn cluster_within_a_small_memory_budget_is_refused_or_streamed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let scene = abs(SCENE);
    for method in ["kmeans", "spectral"] {
        let (_, took) = refused(
            d,
            &[
                "cluster", &scene, "--nodata", "0", "--k", "4", "--memory", "16MiB", "--method",
                method, "--quiet", "-o", "out.tif",
            ],
            &["memory budget is 16.0 MiB", "--method minibatch"],
        );
        // reading the 3.2 million valid pixels alone takes longer than this
        assert!(took < Duration::from_secs(2), "{method}: {took:?}");
    }
    // mini-batch k-means streams the scene instead
    let stdout = succeeded(
        d,
        &[
            "cluster",
            &scene,
            "--nodata",
            "0",
            "--k",
            "4",
            "--memory",
            "16MiB",
            "--method",
            "minibatch",
            "--max-iter",
            "1",
            "--quiet",
            "-o",
            "labels.tif",
        ],
    );
    assert!(stdout.contains("(streamed"), "{stdout}");
    assert_eq!(entries(d), ["labels.tif"]);
    let labels = d.join("labels.tif");
    let ds = Dataset::open(&labels).expect("labels");
    let rb = ds.rasterband(1).expect("band");
    let (w, h) = rb.size();
    assert_eq!((w, h), (2041, 1860));
    assert_eq!(rb.no_data_value(), Some(-1.0));
    let got = rb
        .read_as::<i16>((0, 0), (w, h), (w, h), None)
        .expect("read")
        .data()
        .to_vec();
    let bands: Vec<Vec<u16>> = (1..=3).map(|b| read_band_u16(SCENE, b).2).collect();
    let mut valid = 0usize;
    let mut seen = [false; 4];
    for p in 0..w * h {
        let nodata = bands.iter().any(|b| b[p] == 0);
        if nodata {
            assert_eq!(got[p], -1, "pixel {p} is nodata in a band");
        } else {
            assert!((0..4).contains(&got[p]), "pixel {p}: label {}", got[p]);
            seen[got[p] as usize] = true;
            valid += 1;
        }
    }
    assert_eq!(valid, 3_169_229);
    assert!(
        stdout.contains(&format!("samples:    {valid} valid pixels")),
        "{stdout}"
    );
    assert!(
        seen.iter().all(|&s| s),
        "every cluster holds pixels: {seen:?}"
    );
    let info = gdalinfo(&labels);
    assert!(info.contains("Block=256x256 Type=Int16"), "{info}");
    assert!(info.contains("COMPRESSION=LZW"), "{info}");
    assert_eq!(
        ds.metadata_item("COMPRESSION", "IMAGE_STRUCTURE")
            .as_deref(),
        Some("LZW")
    );
}

// ---------------------------------------------------------------------------------------
// 7. Names at the file system's limit, and the files' mode

#[test]
fn names_up_to_255_bytes_work_and_longer_ones_are_refused_up_front() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    crop(&d.join("small.tif"), 900, 800, 64, 64);
    for len in [250, 255] {
        let name = format!("{}.tif", "a".repeat(len - 4));
        assert_eq!(name.len(), len);
        succeeded(d, &ndi_args("small.tif", &[], &name));
        assert!(d.join(&name).is_file(), "{len} bytes");
        assert!(debris(d).is_empty(), "{:?}", entries(d));
        // replacing it works as well
        succeeded(d, &["product", "small.tif", "--quiet", "-o", &name]);
        assert!(debris(d).is_empty(), "{:?}", entries(d));
        std::fs::remove_file(d.join(&name)).expect("remove");
    }
    let long = format!("{}.tif", "a".repeat(252));
    assert_eq!(long.len(), 256);
    for args in [
        ndi_args("small.tif", &[], &long),
        vec!["cluster", "small.tif", "--k", "2", "--quiet", "-o", &long],
        vec!["reduce", "small.tif", "--quiet", "-o", &long],
    ] {
        let (_, took) = refused(
            d,
            &args,
            &[&format!("cannot write {long}"), "File name too long"],
        );
        assert!(took < Duration::from_secs(2), "{took:?}");
    }
    assert_eq!(entries(d), ["small.tif"]);
}

/// The umask of this process (children inherit it).
fn umask() -> u32 {
    let status = std::fs::read_to_string("/proc/self/status").expect("status");
    let value = status
        .lines()
        .find_map(|l| l.strip_prefix("Umask:"))
        .expect("Umask in /proc/self/status");
    u32::from_str_radix(value.trim(), 8).expect("octal")
}

#[test]
fn outputs_get_the_usual_file_mode() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    crop(&d.join("small.tif"), 900, 800, 64, 64);
    succeeded(
        d,
        &ndi_args("small.tif", &["--profile", "p.svg"], "ndi.tif"),
    );
    succeeded(
        d,
        &[
            "cluster",
            "small.tif",
            "--k",
            "2",
            "--quiet",
            "-o",
            "labels.tif",
        ],
    );
    let want = 0o666 & !umask();
    // A replaced output keeps the mode its owner gave it.
    std::fs::set_permissions(d.join("labels.tif"), std::fs::Permissions::from_mode(0o640))
        .expect("chmod");
    succeeded(
        d,
        &[
            "cluster",
            "small.tif",
            "--k",
            "2",
            "--quiet",
            "-o",
            "labels.tif",
        ],
    );
    let kept = std::fs::metadata(d.join("labels.tif"))
        .expect("labels")
        .permissions();
    assert_eq!(
        kept.mode() & 0o777,
        0o640,
        "a replaced output keeps its mode"
    );
    for name in ["ndi.tif", "p.svg", "small.tif"] {
        let mode = std::fs::metadata(d.join(name))
            .expect("output")
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(
            mode, want,
            "{name}: {mode:o}, not {want:o} as a new file gets"
        );
    }
}
