//! What this process may really use: CPU affinity, cgroup quotas and limits, and the
//! host's figures ([`Resources::detect`]).

use std::fmt;
use std::num::NonZeroUsize;

use super::{PoolPlan, write_aligned};
use crate::core::fmt::{html_table, human_bytes};
use crate::error::Result;
use crate::runtime::cgroup;

/// What this process may really use.
///
/// Every field is filled by [`Resources::detect`]; fields that cannot be read on this
/// platform (no `/proc`, no cgroup) are `None`.
///
/// ```
/// let res = rasterlab::runtime::resources::Resources::detect();
/// assert!(res.usable_cores >= 1);
/// println!("{res}");
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Resources {
    /// Cores this process can keep busy: the minimum of the affinity set, the cgroup
    /// quota rounded up and `available_parallelism`; at least 1.
    pub usable_cores: usize,
    /// Size of the CPU affinity set (`Cpus_allowed_list` in `/proc/self/status`).
    pub affinity_cores: Option<usize>,
    /// cgroup CPU quota in cores (v2 `cpu.max`, v1 `cpu.cfs_quota_us / cpu.cfs_period_us`),
    /// the tightest along the path to the root; `None` when unlimited.
    pub cgroup_cpu_quota: Option<f64>,
    /// `std::thread::available_parallelism()`.
    pub available_parallelism: usize,
    /// Logical cores of the host (sysinfo).
    pub logical_cores: usize,
    /// Physical cores of the host (sysinfo), when known.
    pub physical_cores: Option<usize>,
    /// Host RAM in bytes (sysinfo).
    pub total_memory: u64,
    /// Host memory available for reuse in bytes (sysinfo, `MemAvailable`).
    pub available_memory: u64,
    /// cgroup memory limit in bytes (v2 `memory.max`, v1 `memory.limit_in_bytes`), the
    /// tightest along the path to the root; `None` when unlimited.
    pub cgroup_memory_limit: Option<u64>,
    /// Bytes this process can still allocate: `available_memory`, capped by the cgroup
    /// limit minus the cgroup's current working set when a limit is known.
    pub usable_memory: u64,
}

impl Resources {
    /// Reads affinity, cgroup limits and host figures. Never fails: what cannot be read is
    /// `None` (or falls back to `available_parallelism` for core counts).
    ///
    /// ```
    /// let res = rasterlab::runtime::resources::Resources::detect();
    /// assert!(res.usable_cores <= res.available_parallelism);
    /// ```
    pub fn detect() -> Resources {
        let available_parallelism =
            std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
        let affinity_cores = std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|status| cgroup::parse_status_cpus_allowed(&status));
        let limits = cgroup::detect();
        let host = host_figures();

        let usable_cores = usable_cores(affinity_cores, limits.cpu_quota, available_parallelism);
        let logical_cores = if host.logical_cores == 0 {
            available_parallelism
        } else {
            host.logical_cores
        };
        // An unreadable MemAvailable (0) must not hide a known cgroup headroom.
        let usable_memory = match (host.available_memory, limits.memory_headroom) {
            (0, Some(headroom)) => headroom,
            (available, Some(headroom)) => available.min(headroom),
            (available, None) => available,
        };
        Resources {
            usable_cores,
            affinity_cores,
            cgroup_cpu_quota: limits.cpu_quota,
            available_parallelism,
            logical_cores,
            physical_cores: host.physical_cores,
            total_memory: host.total_memory,
            available_memory: host.available_memory,
            cgroup_memory_limit: limits.memory_limit,
            usable_memory,
        }
    }

    /// The suggested pool for these resources; same as [`PoolPlan::from_resources`].
    ///
    /// ```
    /// # fn main() -> rasterlab::Result<()> {
    /// let plan = rasterlab::runtime::resources::Resources::detect().plan()?;
    /// assert!(plan.threads() >= 1);
    /// # Ok(())
    /// # }
    /// ```
    pub fn plan(&self) -> Result<PoolPlan> {
        PoolPlan::from_resources(self)
    }

    /// An HTML table of the figures, the reasoning behind the usable ones and the
    /// suggested pool.
    ///
    /// ```
    /// let html = rasterlab::runtime::resources::Resources::detect().to_html();
    /// assert!(html.contains("usable cores"));
    /// ```
    pub fn to_html(&self) -> String {
        html_table("Resources", &self.rows())
    }

    /// `(name, value)` rows shared by the HTML and terminal renderings.
    fn rows(&self) -> Vec<(&'static str, String)> {
        let mut rows = vec![
            (
                "usable cores",
                format!("{} ({})", self.usable_cores, self.core_reason()),
            ),
            (
                "affinity cores",
                self.affinity_cores.map_or_else(
                    || "unknown".to_string(),
                    |n| format!("{n} (Cpus_allowed_list)"),
                ),
            ),
            (
                "cgroup cpu quota",
                self.cgroup_cpu_quota
                    .map_or_else(|| "none".to_string(), |q| format!("{q} cores")),
            ),
            (
                "available parallelism",
                self.available_parallelism.to_string(),
            ),
            ("logical cores", format!("{} (host)", self.logical_cores)),
            (
                "physical cores",
                self.physical_cores
                    .map_or_else(|| "unknown".to_string(), |n| format!("{n} (host)")),
            ),
            (
                "total memory",
                format!("{} (host)", human_bytes(self.total_memory)),
            ),
            ("available memory", human_bytes(self.available_memory)),
            (
                "cgroup memory limit",
                self.cgroup_memory_limit
                    .map_or_else(|| "none".to_string(), human_bytes),
            ),
            (
                "usable memory",
                format!(
                    "{} ({})",
                    human_bytes(self.usable_memory),
                    self.memory_reason()
                ),
            ),
        ];
        match self.plan() {
            Ok(plan) => {
                rows.push(("suggested threads", plan.threads().to_string()));
                rows.push(("suggested memory budget", human_bytes(plan.memory_budget())));
                rows.push(("suggested chunk bytes", human_bytes(plan.chunk_bytes())));
            }
            Err(err) => rows.push(("suggested plan", err.to_string())),
        }
        rows
    }

    /// Why `usable_cores` has its value, e.g. `min of affinity 2, quota 1.5 -> 2, available_parallelism 2`.
    pub(super) fn core_reason(&self) -> String {
        let affinity = self
            .affinity_cores
            .map_or_else(|| "unknown".to_string(), |n| n.to_string());
        let quota = self.cgroup_cpu_quota.map_or_else(
            || "none".to_string(),
            |q| format!("{q} -> {}", cgroup::cores_for_quota(q)),
        );
        format!(
            "min of affinity {affinity}, cgroup quota {quota}, available_parallelism {}",
            self.available_parallelism
        )
    }

    /// Why `usable_memory` has its value.
    pub(super) fn memory_reason(&self) -> String {
        match self.cgroup_memory_limit {
            Some(limit) => format!(
                "available memory capped by cgroup limit {} minus its usage",
                human_bytes(limit)
            ),
            None => "available memory, no cgroup limit".to_string(),
        }
    }
}

crate::core::fmt::html_repr!(Resources);

impl fmt::Display for Resources {
    /// A multi-line, aligned report for the terminal.
    ///
    /// ```
    /// let text = rasterlab::runtime::resources::Resources::detect().to_string();
    /// assert!(text.starts_with("Resources"));
    /// ```
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_aligned(f, "Resources", &self.rows())
    }
}

/// Host figures from sysinfo; zeros when sysinfo cannot read them.
struct HostFigures {
    logical_cores: usize,
    physical_cores: Option<usize>,
    total_memory: u64,
    available_memory: u64,
}

fn host_figures() -> HostFigures {
    use sysinfo::{CpuRefreshKind, MemoryRefreshKind, RefreshKind, System};

    let kind = RefreshKind::nothing()
        .with_cpu(CpuRefreshKind::nothing())
        .with_memory(MemoryRefreshKind::nothing().with_ram());
    match System::new_with_specifics(kind) {
        Ok(sys) => HostFigures {
            logical_cores: sys.cpus().len(),
            physical_cores: System::physical_core_count().ok().filter(|&n| n > 0),
            total_memory: sys.total_memory(),
            available_memory: sys.available_memory(),
        },
        Err(_) => HostFigures {
            logical_cores: 0,
            physical_cores: None,
            total_memory: 0,
            available_memory: 0,
        },
    }
}

/// `min(affinity, ceil(quota), available_parallelism)`, at least 1.
fn usable_cores(
    affinity: Option<usize>,
    quota: Option<f64>,
    available_parallelism: usize,
) -> usize {
    let mut cores = available_parallelism;
    if let Some(n) = affinity {
        cores = cores.min(n);
    }
    if let Some(q) = quota {
        cores = cores.min(cgroup::cores_for_quota(q));
    }
    cores.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usable_cores_takes_the_tightest_fence() {
        assert_eq!(usable_cores(Some(7), Some(1.5), 16), 2);
        assert_eq!(usable_cores(Some(1), None, 16), 1);
        assert_eq!(usable_cores(None, None, 4), 4);
        assert_eq!(usable_cores(None, Some(0.5), 4), 1);
        assert_eq!(usable_cores(Some(0), None, 0), 1);
    }
}
