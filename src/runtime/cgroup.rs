//! Linux CPU affinity and cgroup (v1 and v2) limits, as small parsers over file text.
//!
//! The parsers take the text of one file so they can be tested with fixtures;
//! [`detect`] and [`limits_from`] glue them to the
//! files of the running process.

use std::path::{Path, PathBuf};

/// Limits found along a process's cgroup path, the tightest of all levels.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CgroupLimits {
    /// CPU quota in cores; `None` when unlimited.
    pub cpu_quota: Option<f64>,
    /// Memory limit in bytes; `None` when unlimited.
    pub memory_limit: Option<u64>,
    /// Smallest `limit - working set` over the levels with a limit (the limit itself
    /// when the usage cannot be read); `None` when unlimited.
    pub memory_headroom: Option<u64>,
}

/// Reads `/proc/self/cgroup` and `/proc/self/mountinfo` and the limit files they point
/// to; all `None` where those files do not exist (not Linux, no cgroup).
pub fn detect() -> CgroupLimits {
    let Ok(proc_cgroup) = std::fs::read_to_string("/proc/self/cgroup") else {
        return CgroupLimits::default();
    };
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    limits_from(&proc_cgroup, &mountinfo)
}

/// The limits for a process whose `/proc/<pid>/cgroup` and `/proc/<pid>/mountinfo`
/// have the given text, reading the limit files under the mount points named there.
///
/// Each cgroup path is resolved against its mount (the mount's root is stripped, as
/// in a container without a cgroup namespace; a path that does not exist falls back
/// to the mount point) and walked up to the mount point, keeping the tightest limit.
/// Without cgroup mounts in `mountinfo`, the usual `/sys/fs/cgroup` layout is assumed.
pub fn limits_from(proc_cgroup: &str, mountinfo: &str) -> CgroupLimits {
    let mut mounts = parse_mountinfo(mountinfo);
    if mounts.is_empty() {
        mounts = default_mounts();
    }
    let mut limits = CgroupLimits::default();
    for line in proc_cgroup.lines() {
        let mut fields = line.splitn(3, ':');
        let (Some(id), Some(controllers), Some(path)) =
            (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        if id == "0" && controllers.is_empty() {
            if let Some(mount) = mounts.iter().find(|m| m.v2) {
                for dir in levels(mount, path) {
                    read_v2_level(&dir, &mut limits);
                }
            }
            continue;
        }
        for controller in controllers.split(',') {
            if controller != "cpu" && controller != "memory" {
                continue;
            }
            let Some(mount) = mounts
                .iter()
                .find(|m| !m.v2 && m.controllers.iter().any(|c| c == controller))
            else {
                continue;
            };
            for dir in levels(mount, path) {
                if controller == "cpu" {
                    read_v1_cpu_level(&dir, &mut limits);
                } else {
                    read_v1_memory_level(&dir, &mut limits);
                }
            }
        }
    }
    limits
}

/// Counts the CPUs in a kernel CPU list such as `0-3,8,10-11` (7); `None` when empty
/// or malformed.
pub fn parse_cpu_list(s: &str) -> Option<usize> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    let mut count = 0usize;
    for part in s.split(',') {
        let part = part.trim();
        match part.split_once('-') {
            Some((lo, hi)) => {
                let lo: usize = lo.trim().parse().ok()?;
                let hi: usize = hi.trim().parse().ok()?;
                count = count.checked_add(hi.checked_sub(lo)? + 1)?;
            }
            None => {
                part.parse::<usize>().ok()?;
                count += 1;
            }
        }
    }
    Some(count)
}

/// The size of the affinity set from the text of `/proc/self/status`
/// (`Cpus_allowed_list:` line).
pub fn parse_status_cpus_allowed(status: &str) -> Option<usize> {
    status
        .lines()
        .find_map(|line| line.strip_prefix("Cpus_allowed_list:"))
        .and_then(parse_cpu_list)
}

/// Cores allowed by a cgroup v2 `cpu.max` (`"$QUOTA $PERIOD"`, `max` = unlimited).
pub fn parse_cpu_max_v2(s: &str) -> Option<f64> {
    let mut fields = s.split_whitespace();
    let quota: u64 = fields.next()?.parse().ok()?; // "max" fails here: unlimited
    // The kernel always prints the period; 100 ms is its default if it were missing.
    let period: u64 = fields.next().map_or(Some(100_000), |p| p.parse().ok())?;
    (quota > 0 && period > 0).then(|| quota as f64 / period as f64)
}

/// Cores allowed by cgroup v1 `cpu.cfs_quota_us` and `cpu.cfs_period_us` (quota `-1`
/// = unlimited).
pub fn parse_cfs_v1(quota: &str, period: &str) -> Option<f64> {
    let quota: i64 = quota.trim().parse().ok()?;
    let period: u64 = period.trim().parse().ok()?;
    (quota > 0 && period > 0).then(|| quota as f64 / period as f64)
}

/// Bytes allowed by cgroup v2 `memory.max` (`max` = unlimited).
pub fn parse_memory_max_v2(s: &str) -> Option<u64> {
    s.trim().parse().ok()
}

/// Bytes allowed by cgroup v1 `memory.limit_in_bytes`.
///
/// v1 has no "max": unlimited reads back as `i64::MAX` rounded down to a page
/// (`9223372036854771712`), so anything from 2^62 up, or negative, is `None`.
pub fn parse_memory_limit_v1(s: &str) -> Option<u64> {
    let value: i64 = s.trim().parse().ok()?;
    u64::try_from(value).ok().filter(|&v| v < 1 << 62)
}

/// The value of `key` in a cgroup `memory.stat` (`"key value"` lines).
pub fn parse_memory_stat(stat: &str, key: &str) -> Option<u64> {
    stat.lines().find_map(|line| {
        let (k, v) = line.split_once(' ')?;
        if k == key {
            v.trim().parse().ok()
        } else {
            None
        }
    })
}

/// Whole cores for a quota: rounded up (1.5 cores of time keep 2 threads busy part of
/// the time), at least 1.
pub fn cores_for_quota(quota: f64) -> usize {
    if quota.is_finite() && quota > 0.0 {
        (quota.ceil() as usize).max(1)
    } else {
        1
    }
}

/// One cgroup filesystem mounted somewhere.
#[derive(Debug)]
struct Mount {
    /// The cgroup path shown at the mount point (`/` unless mounted from inside).
    root: String,
    point: PathBuf,
    v2: bool,
    /// v1 super options, which name the controllers (`rw,cpu,cpuacct`).
    controllers: Vec<String>,
}

fn default_mounts() -> Vec<Mount> {
    let mount = |point: &str, v2: bool, controllers: &[&str]| Mount {
        root: "/".to_string(),
        point: PathBuf::from(point),
        v2,
        controllers: controllers.iter().map(|c| c.to_string()).collect(),
    };
    vec![
        mount("/sys/fs/cgroup", true, &[]),
        mount("/sys/fs/cgroup/cpu,cpuacct", false, &["cpu", "cpuacct"]),
        mount("/sys/fs/cgroup/memory", false, &["memory"]),
    ]
}

/// cgroup mounts from `/proc/self/mountinfo`:
/// `id parent major:minor root point options [optional...] - fstype source superoptions`.
fn parse_mountinfo(text: &str) -> Vec<Mount> {
    text.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let left: Vec<&str> = left.split(' ').collect();
            let mut right = right.split(' ');
            let fstype = right.next()?;
            let super_options = right.nth(1).unwrap_or("");
            let v2 = match fstype {
                "cgroup2" => true,
                "cgroup" => false,
                _ => return None,
            };
            Some(Mount {
                root: unescape(left.get(3)?),
                point: PathBuf::from(unescape(left.get(4)?)),
                v2,
                controllers: super_options.split(',').map(str::to_string).collect(),
            })
        })
        .collect()
}

/// Undoes mountinfo's octal escapes (`\040` for a space).
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let code = bytes.get(i + 1..i + 4).and_then(|d| {
            let d = std::str::from_utf8(d).ok()?;
            u8::from_str_radix(d, 8).ok()
        });
        match (bytes[i], code) {
            (b'\\', Some(c)) => {
                out.push(c);
                i += 4;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Directories from the process's cgroup up to the mount point, innermost first.
fn levels(mount: &Mount, path: &str) -> Vec<PathBuf> {
    let root = mount.root.trim_end_matches('/');
    let relative = match path.strip_prefix(root) {
        Some(rest) if root.is_empty() || rest.is_empty() || rest.starts_with('/') => rest,
        _ => path,
    };
    let mut dir = mount.point.join(relative.trim_start_matches('/'));
    // `..` appears when the cgroup lies outside this namespace's view: use the mount.
    if relative.split('/').any(|part| part == "..") || !dir.is_dir() {
        dir = mount.point.clone();
    }
    let mut out = Vec::new();
    let mut current: &Path = &dir;
    loop {
        out.push(current.to_path_buf());
        match current.parent() {
            Some(parent) if current != mount.point && parent.starts_with(&mount.point) => {
                current = parent;
            }
            _ => break,
        }
    }
    out
}

fn read(dir: &Path, file: &str) -> Option<String> {
    std::fs::read_to_string(dir.join(file)).ok()
}

fn tighter<T: PartialOrd>(current: Option<T>, new: Option<T>) -> Option<T> {
    match (current, new) {
        (Some(a), Some(b)) => Some(if b < a { b } else { a }),
        (a, b) => a.or(b),
    }
}

/// Records a memory limit and the headroom under it at one level.
fn record_memory(
    limits: &mut CgroupLimits,
    limit: u64,
    usage: Option<u64>,
    inactive_file: Option<u64>,
) {
    // Inactive page cache is reclaimed before the OOM killer runs, so it counts as free
    // (the "working set" docker and the kubelet report).
    let working_set = usage.map(|u| u.saturating_sub(inactive_file.unwrap_or(0)));
    let headroom = limit.saturating_sub(working_set.unwrap_or(0));
    limits.memory_limit = tighter(limits.memory_limit, Some(limit));
    limits.memory_headroom = tighter(limits.memory_headroom, Some(headroom));
}

fn read_v2_level(dir: &Path, limits: &mut CgroupLimits) {
    let quota = read(dir, "cpu.max").and_then(|s| parse_cpu_max_v2(&s));
    limits.cpu_quota = tighter(limits.cpu_quota, quota);
    if let Some(limit) = read(dir, "memory.max").and_then(|s| parse_memory_max_v2(&s)) {
        let usage = read(dir, "memory.current").and_then(|s| s.trim().parse().ok());
        let inactive =
            read(dir, "memory.stat").and_then(|s| parse_memory_stat(&s, "inactive_file"));
        record_memory(limits, limit, usage, inactive);
    }
}

fn read_v1_cpu_level(dir: &Path, limits: &mut CgroupLimits) {
    let quota = match (
        read(dir, "cpu.cfs_quota_us"),
        read(dir, "cpu.cfs_period_us"),
    ) {
        (Some(q), Some(p)) => parse_cfs_v1(&q, &p),
        _ => None,
    };
    limits.cpu_quota = tighter(limits.cpu_quota, quota);
}

fn read_v1_memory_level(dir: &Path, limits: &mut CgroupLimits) {
    if let Some(limit) = read(dir, "memory.limit_in_bytes").and_then(|s| parse_memory_limit_v1(&s))
    {
        let usage = read(dir, "memory.usage_in_bytes").and_then(|s| s.trim().parse().ok());
        let inactive = read(dir, "memory.stat").and_then(|s| {
            parse_memory_stat(&s, "total_inactive_file")
                .or_else(|| parse_memory_stat(&s, "inactive_file"))
        });
        record_memory(limits, limit, usage, inactive);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    const MIB: u64 = 1 << 20;
    const GIB: u64 = 1 << 30;

    // ---- parsers on fixture text -------------------------------------------------------------

    #[test]
    fn cpu_max_v2_fixtures() {
        assert_eq!(parse_cpu_max_v2("max 100000"), None);
        assert_eq!(parse_cpu_max_v2("max 100000\n"), None);
        assert_eq!(parse_cpu_max_v2("150000 100000"), Some(1.5));
        assert_eq!(cores_for_quota(1.5), 2);
        assert_eq!(parse_cpu_max_v2("200000 100000\n"), Some(2.0));
        assert_eq!(parse_cpu_max_v2(""), None);
        assert_eq!(parse_cpu_max_v2("garbage"), None);
        assert_eq!(parse_cpu_max_v2("0 100000"), None);
    }

    #[test]
    fn cfs_v1_fixtures() {
        assert_eq!(parse_cfs_v1("-1", "100000"), None);
        assert_eq!(parse_cfs_v1("-1\n", "100000\n"), None);
        assert_eq!(parse_cfs_v1("50000", "100000"), Some(0.5));
        assert_eq!(cores_for_quota(0.5), 1);
        assert_eq!(parse_cfs_v1("250000\n", "100000\n"), Some(2.5));
        assert_eq!(parse_cfs_v1("50000", "0"), None);
        assert_eq!(parse_cfs_v1("x", "100000"), None);
    }

    #[test]
    fn memory_limit_fixtures() {
        assert_eq!(parse_memory_max_v2("max\n"), None);
        assert_eq!(parse_memory_max_v2("536870912\n"), Some(512 * MIB));
        assert_eq!(parse_memory_limit_v1("9223372036854771712"), None);
        assert_eq!(parse_memory_limit_v1("9223372036854771712\n"), None);
        assert_eq!(parse_memory_limit_v1("-1"), None);
        assert_eq!(parse_memory_limit_v1("2147483648\n"), Some(2 * GIB));
        assert_eq!(
            parse_memory_stat("anon 1\ninactive_file 42\n", "inactive_file"),
            Some(42)
        );
        assert_eq!(
            parse_memory_stat("total_inactive_file 7\n", "inactive_file"),
            None
        );
    }

    #[test]
    fn cpu_list_fixtures() {
        assert_eq!(parse_cpu_list("0-3,8,10-11"), Some(7));
        assert_eq!(parse_cpu_list("0-3,8,10-11\n"), Some(7));
        assert_eq!(parse_cpu_list("0"), Some(1));
        assert_eq!(parse_cpu_list("0-1"), Some(2));
        assert_eq!(parse_cpu_list(""), None);
        assert_eq!(parse_cpu_list("a-b"), None);
        assert_eq!(parse_cpu_list("5-2"), None);
        let status =
            "Name:\tbash\nCpus_allowed:\tf0f\nCpus_allowed_list:\t0-3,8,10-11\nMems_allowed:\t1\n";
        assert_eq!(parse_status_cpus_allowed(status), Some(7));
        assert_eq!(parse_status_cpus_allowed("Name:\tbash\n"), None);
    }

    // ---- cgroup hierarchy walking on a fake /sys/fs/cgroup ----------------------------------

    fn write(dir: &Path, file: &str, text: &str) {
        fs::create_dir_all(dir).expect("create fixture dir");
        fs::write(dir.join(file), text).expect("write fixture");
    }

    #[test]
    fn v2_walks_up_and_keeps_the_tightest_limits() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let root = tmp.path().join("unified");
        let parent = root.join("user.slice");
        let leaf = parent.join("kernel.scope");
        write(&parent, "cpu.max", "150000 100000\n");
        write(&parent, "memory.max", "1073741824\n");
        write(&parent, "memory.current", "104857600\n");
        write(&leaf, "cpu.max", "max 100000\n");
        write(&leaf, "memory.max", "536870912\n");
        write(&leaf, "memory.current", "209715200\n");
        write(&leaf, "memory.stat", "anon 1\ninactive_file 104857600\n");

        let mountinfo = format!(
            "30 1 0:26 / {} rw,nosuid shared:4 - cgroup2 cgroup2 rw,nsdelegate\n",
            root.display()
        );
        let limits = limits_from("0::/user.slice/kernel.scope\n", &mountinfo);
        assert_eq!(limits.cpu_quota, Some(1.5));
        assert_eq!(limits.memory_limit, Some(512 * MIB));
        // leaf: 512 MiB - (200 MiB - 100 MiB inactive file) = 412 MiB; parent: 1 GiB - 100 MiB.
        assert_eq!(limits.memory_headroom, Some(412 * MIB));
    }

    #[test]
    fn v1_controllers_and_container_mount_root() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let cpu = tmp.path().join("cpu,cpuacct");
        let memory = tmp.path().join("memory");
        write(&cpu, "cpu.cfs_quota_us", "-1\n");
        write(&cpu, "cpu.cfs_period_us", "100000\n");
        write(&memory, "memory.limit_in_bytes", "9223372036854771712\n");
        let group = memory.join("job");
        write(&cpu.join("job"), "cpu.cfs_quota_us", "50000\n");
        write(&cpu.join("job"), "cpu.cfs_period_us", "100000\n");
        write(&group, "memory.limit_in_bytes", "2147483648\n");
        write(&group, "memory.usage_in_bytes", "1073741824\n");
        write(
            &group,
            "memory.stat",
            "cache 0\ntotal_inactive_file 536870912\n",
        );

        // The memory hierarchy is mounted from /docker/abc (no cgroup namespace): its root is
        // stripped from the path in /proc/self/cgroup.
        let mountinfo = format!(
            "32 31 0:29 / {} rw - cgroup cgroup rw,cpu,cpuacct\n\
             35 31 0:32 /docker/abc {} rw - cgroup cgroup rw,memory\n\
             41 31 0:38 / {} rw - cgroup2 cgroup2 rw\n",
            cpu.display(),
            memory.display(),
            tmp.path().join("unified").display()
        );
        let proc_cgroup = "9:name=systemd:/\n4:memory:/docker/abc/job\n2:cpu,cpuacct:/job\n0::/\n";
        let limits = limits_from(proc_cgroup, &mountinfo);
        assert_eq!(limits.cpu_quota, Some(0.5));
        assert_eq!(limits.memory_limit, Some(2 * GIB));
        assert_eq!(limits.memory_headroom, Some(2 * GIB - (GIB - 512 * MIB)));
    }

    #[test]
    fn no_cgroup_files_means_no_limits() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let mountinfo = format!(
            "41 31 0:38 / {} rw - cgroup2 cgroup2 rw\n",
            tmp.path().display()
        );
        let limits = limits_from("0::/missing\n", &mountinfo);
        assert_eq!(limits, Default::default());
        assert_eq!(limits_from("", ""), Default::default());
    }

    /// Formerly a doc example; the module is crate-private now.
    #[test]
    fn example_cgrouplimits() {
        let limits = detect();
        assert!(limits.cpu_quota.is_none_or(|q| q > 0.0));
    }

    /// Formerly a doc example; the module is crate-private now.
    #[test]
    fn example_detect() {
        let limits = detect();
        println!("{limits:?}");
    }

    /// Formerly a doc example; the module is crate-private now.
    #[test]
    fn example_limits_from() {
        // No cgroup mounts and a v2 path that has no limit files: unlimited.
        let limits = limits_from("0::/no/such/group\n", "");
        assert_eq!(limits.memory_limit, None);
    }

    /// Formerly a doc example; the module is crate-private now.
    #[test]
    fn example_parse_cpu_list() {
        assert_eq!(parse_cpu_list("0-3,8,10-11\n"), Some(7));
        assert_eq!(parse_cpu_list("0"), Some(1));
        assert_eq!(parse_cpu_list("3-1"), None);
    }

    /// Formerly a doc example; the module is crate-private now.
    #[test]
    fn example_parse_status_cpus_allowed() {
        let status = "Name:\tcat\nCpus_allowed:\t3\nCpus_allowed_list:\t0-1\n";
        assert_eq!(parse_status_cpus_allowed(status), Some(2));
    }

    /// Formerly a doc example; the module is crate-private now.
    #[test]
    fn example_parse_cpu_max_v2() {
        assert_eq!(parse_cpu_max_v2("max 100000\n"), None);
        assert_eq!(parse_cpu_max_v2("150000 100000"), Some(1.5));
    }

    /// Formerly a doc example; the module is crate-private now.
    #[test]
    fn example_parse_cfs_v1() {
        assert_eq!(parse_cfs_v1("-1\n", "100000\n"), None);
        assert_eq!(parse_cfs_v1("50000", "100000"), Some(0.5));
    }

    /// Formerly a doc example; the module is crate-private now.
    #[test]
    fn example_parse_memory_max_v2() {
        assert_eq!(parse_memory_max_v2("max\n"), None);
        assert_eq!(parse_memory_max_v2("536870912\n"), Some(512 << 20));
    }

    /// Formerly a doc example; the module is crate-private now.
    #[test]
    fn example_parse_memory_limit_v1() {
        assert_eq!(parse_memory_limit_v1("9223372036854771712\n"), None);
        assert_eq!(parse_memory_limit_v1("1073741824"), Some(1 << 30));
    }

    /// Formerly a doc example; the module is crate-private now.
    #[test]
    fn example_parse_memory_stat() {
        let stat = "anon 4096\ninactive_file 8192\nactive_file 0\n";
        assert_eq!(parse_memory_stat(stat, "inactive_file"), Some(8192));
        assert_eq!(parse_memory_stat(stat, "file"), None);
    }

    /// Formerly a doc example; the module is crate-private now.
    #[test]
    fn example_cores_for_quota() {
        assert_eq!(cores_for_quota(1.5), 2);
        assert_eq!(cores_for_quota(0.5), 1);
        assert_eq!(cores_for_quota(2.0), 2);
    }

    #[test]
    fn mountinfo_keeps_cgroup_mounts_and_unescapes() {
        let text = "32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n\
                    41 31 0:38 /a\\040b /mnt/c\\040g rw shared:1 - cgroup2 cgroup2 rw\n\
                    22 1 8:1 / / rw - ext4 /dev/sda1 rw\n";
        let mounts = parse_mountinfo(text);
        assert_eq!(mounts.len(), 2);
        assert_eq!((mounts[0].root.as_str(), mounts[0].v2), ("/", false));
        assert!(mounts[0].controllers.iter().any(|c| c == "cpu"));
        assert_eq!(mounts[1].root, "/a b");
        assert_eq!(mounts[1].point, PathBuf::from("/mnt/c g"));
        assert!(mounts[1].v2);
    }

    #[test]
    fn levels_strip_the_mount_root_and_stop_at_the_mount_point() {
        let dir = std::env::temp_dir().join(format!("rasterlab-levels-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("a/b")).expect("temp dir");
        let mount = Mount {
            root: "/docker/x".to_string(),
            point: dir.clone(),
            v2: true,
            controllers: Vec::new(),
        };
        let got = levels(&mount, "/docker/x/a/b");
        assert_eq!(got, vec![dir.join("a/b"), dir.join("a"), dir.clone()]);
        // A path that does not exist under the mount falls back to the mount point.
        assert_eq!(levels(&mount, "/elsewhere"), vec![dir.clone()]);
        assert_eq!(levels(&mount, "/docker/x/../.."), vec![dir.clone()]);
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }
}
