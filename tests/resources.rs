//! Resources detection and the pool plan (the cgroup parsers are unit-tested in
//! `src/runtime/cgroup.rs`).

use rasterlab::Error;
use rasterlab::runtime::resources::{PoolPlan, Resources, parse_bytes};

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

/// A hand-made machine: 2 usable cores, 8 GiB usable.
fn machine() -> Resources {
    Resources {
        usable_cores: 2,
        affinity_cores: Some(2),
        cgroup_cpu_quota: None,
        available_parallelism: 2,
        logical_cores: 4,
        physical_cores: Some(2),
        total_memory: 16 * GIB,
        available_memory: 8 * GIB,
        cgroup_memory_limit: None,
        usable_memory: 8 * GIB,
    }
}

fn invalid_what(err: Error) -> (&'static str, String) {
    match err {
        Error::Invalid { what, reason } => (what, reason),
        other => panic!("expected Error::Invalid, got {other:?}"),
    }
}

// ---- byte sizes ---------------------------------------------------------------------------

#[test]
fn parse_bytes_units() {
    let cases = [
        ("512MiB", 512 * MIB),
        ("512mib", 512 * MIB),
        ("2GB", 2_000_000_000),
        ("2gb", 2_000_000_000),
        ("1.5GiB", 3 * GIB / 2),
        ("1073741824", GIB),
        ("1073741824B", GIB),
        ("64k", 64_000),
        ("64KB", 64_000),
        ("64KiB", 64 * 1024),
        ("3M", 3_000_000),
        (" 10 MiB ", 10 * MIB),
        ("1T", 1_000_000_000_000),
        ("1TiB", 1 << 40),
        ("0", 0),
        (".5KiB", 512),
    ];
    for (text, bytes) in cases {
        assert_eq!(parse_bytes(text).expect(text), bytes, "{text}");
    }
}

#[test]
fn parse_bytes_errors() {
    for text in [
        "",
        "MiB",
        "-1",
        "1.2.3GB",
        "12 parsecs",
        "1e9",
        "5 PiB",
        "99999999999999999999",
        "20000000TiB",
    ] {
        let err = parse_bytes(text).expect_err(text);
        let (what, reason) = invalid_what(err);
        assert_eq!(what, "byte size");
        assert!(reason.contains(&format!("{text:?}")), "{reason}");
    }
}

// ---- detection on this machine ------------------------------------------------------------

#[test]
fn detect_on_this_machine() {
    let res = Resources::detect();
    assert!(res.usable_cores >= 1);
    assert!(res.usable_cores <= res.available_parallelism);
    assert!(res.logical_cores >= 1);
    assert!(res.total_memory > 0);
    assert!(res.available_memory > 0);
    assert!(res.usable_memory > 0);
    assert!(res.usable_memory <= res.available_memory);
    if let Some(n) = res.affinity_cores {
        assert!(res.usable_cores <= n);
    }
    if let Some(q) = res.cgroup_cpu_quota {
        // a fractional quota still lets one more core be kept partly busy
        assert!(res.usable_cores <= (q.ceil() as usize).max(1));
    }
    let text = res.to_string();
    assert!(
        text.contains("usable cores") && text.contains("usable memory"),
        "{text}"
    );
    let html = res.to_html();
    assert!(
        html.contains("affinity cores") && html.contains("cgroup memory limit"),
        "{html}"
    );
}

// ---- pool plan ------------------------------------------------------------------------------

#[test]
fn plan_defaults_from_resources() {
    let plan = PoolPlan::from_resources_with_env(&machine(), None, None).expect("plan");
    assert_eq!(plan.threads(), 2);
    assert_eq!(plan.memory_budget(), 4 * GIB);
    // 4 GiB / (2 x 2) = 1 GiB, capped at 256 MiB.
    assert_eq!(plan.chunk_bytes(), PoolPlan::MAX_CHUNK_BYTES);
    assert!(
        plan.reasons()[0].starts_with("threads = 2 (usable cores"),
        "{:?}",
        plan.reasons()
    );
    assert!(
        plan.reasons()
            .iter()
            .any(|r| r.starts_with("memory budget = 50% of usable 8.0 GiB"))
    );
    let text = plan.to_string();
    assert!(
        text.starts_with("Pool plan") && text.contains("chunk bytes"),
        "{text}"
    );
    assert!(plan.to_html().contains("<td>2</td>"));
}

#[test]
fn plan_overrides() {
    let plan = PoolPlan::from_resources_with_env(&machine(), None, None).expect("plan");
    let plan = plan
        .with_threads(4)
        .expect("threads")
        .with_memory_budget(64 * MIB)
        .expect("budget");
    assert_eq!(plan.threads(), 4);
    assert_eq!(plan.memory_budget(), 64 * MIB);
    assert_eq!(plan.chunk_bytes(), 8 * MIB);
    assert!(
        plan.reasons().iter().any(|r| r.contains("oversubscribe")),
        "{:?}",
        plan.reasons()
    );
    assert_eq!(
        plan.clone()
            .with_memory_budget(1000)
            .expect("tiny")
            .chunk_bytes(),
        PoolPlan::MIN_CHUNK_BYTES
    );

    assert_eq!(
        invalid_what(plan.clone().with_threads(0).expect_err("0 threads")).0,
        "thread count"
    );
    assert_eq!(
        invalid_what(plan.with_memory_budget(0).expect_err("0 bytes")).0,
        "memory budget"
    );
}

#[test]
fn plan_env_values() {
    let res = machine();
    let plan = PoolPlan::from_resources_with_env(&res, Some("3"), Some("512MiB")).expect("plan");
    assert_eq!(plan.threads(), 3);
    assert_eq!(plan.memory_budget(), 512 * MIB);
    assert!(
        plan.reasons()
            .iter()
            .any(|r| r.starts_with("RASTERLAB_MEMORY=512MiB overrides"))
    );
    assert!(
        plan.reasons()
            .iter()
            .any(|r| r.contains("RASTERLAB_THREADS=3"))
    );

    // Empty values count as unset.
    let plan = PoolPlan::from_resources_with_env(&res, Some(""), Some("  ")).expect("plan");
    assert_eq!((plan.threads(), plan.memory_budget()), (2, 4 * GIB));

    for bad in ["0", "-2", "two", "1.5"] {
        let (what, reason) =
            invalid_what(PoolPlan::from_resources_with_env(&res, Some(bad), None).expect_err(bad));
        assert_eq!(what, "RASTERLAB_THREADS");
        assert!(reason.contains(bad), "{reason}");
    }
    for bad in ["lots", "0", "12 parsecs"] {
        let (what, reason) =
            invalid_what(PoolPlan::from_resources_with_env(&res, None, Some(bad)).expect_err(bad));
        assert_eq!(what, "RASTERLAB_MEMORY");
        assert!(reason.contains(bad), "{reason}");
    }

    let over = PoolPlan::from_resources_with_env(&res, None, Some("1TiB")).expect("plan");
    assert!(
        over.reasons()
            .iter()
            .any(|r| r.contains("exceeds usable memory"))
    );
}

#[test]
fn plan_with_unknown_memory_falls_back() {
    let res = Resources {
        usable_memory: 0,
        available_memory: 0,
        ..machine()
    };
    let plan = PoolPlan::from_resources_with_env(&res, None, None).expect("plan");
    assert_eq!(plan.memory_budget(), 256 * MIB);
    assert!(plan.reasons().iter().any(|r| r.contains("unknown")));
}

/// Runs this test binary again with the variables set, since the environment is global.
#[test]
fn env_override_in_child_process() {
    let exe = std::env::current_exe().expect("test binary");
    let run = |threads: &str, memory: &str| {
        std::process::Command::new(&exe)
            .args([
                "--exact",
                "child_reads_env",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("RASTERLAB_THREADS", threads)
            .env("RASTERLAB_MEMORY", memory)
            .env("RASTERLAB_CHILD_EXPECT", format!("{threads}/{memory}"))
            .output()
            .expect("run child")
    };
    let ok = run("3", "1.5GiB");
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stdout)
    );
    assert!(String::from_utf8_lossy(&ok.stdout).contains("1 passed"));
    let bad = run("3", "plenty");
    assert!(
        !bad.status.success(),
        "a bad RASTERLAB_MEMORY must fail the child"
    );
}

#[test]
#[ignore = "run by env_override_in_child_process with the variables set"]
fn child_reads_env() {
    if std::env::var("RASTERLAB_CHILD_EXPECT").is_err() {
        return;
    }
    let plan = PoolPlan::detect().expect("plan from env");
    assert_eq!(plan.threads(), 3);
    assert_eq!(plan.memory_budget(), 3 * GIB / 2);
}

#[test]
fn build_pool_matches_threads() {
    let plan = PoolPlan::from_resources_with_env(&machine(), None, None).expect("plan");
    for n in [1, 3] {
        let plan = plan.clone().with_threads(n).expect("threads");
        let pool = plan.build_pool().expect("pool");
        assert_eq!(pool.current_num_threads(), plan.threads());
        let names: Vec<String> = pool.broadcast(|_| {
            std::thread::current()
                .name()
                .unwrap_or_default()
                .to_string()
        });
        let mut names = names;
        names.sort();
        let expected: Vec<String> = (0..n).map(|i| format!("rasterlab-{i}")).collect();
        assert_eq!(names, expected);
    }
}
