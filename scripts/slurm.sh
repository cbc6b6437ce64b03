#!/usr/bin/env bash
# A real single-node Slurm for the tests, all state under one folder, no systemd.
#
#   scripts/slurm.sh start DIR   start munged, slurmctld and slurmd; writes DIR/env
#                                (source it: SLURM_CONF and the munge socket for clients)
#   scripts/slurm.sh stop DIR    stop them (the folder stays for the caller to remove)
#
# Debian's slurmctld, slurmd, slurm-client and munge packages (scripts/setup.sh installs
# them). Needs root: slurmd starts jobs as their user. Ports are picked free at start, so
# two test runs on one machine do not meet. Without slurmdbd there is no `sacct`;
# jobcomp/filetxt records every finished job's state and exit code in DIR/jobcomp.txt.
set -euo pipefail

cmd="${1:-}"
dir="${2:-}"
[[ -n "$cmd" && -n "$dir" ]] || { echo "usage: $0 start|stop DIR" >&2; exit 2; }

die() { echo "slurm.sh: $*" >&2; exit 1; }

free_port() {
    python3 - <<'EOF'
import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()
EOF
}

stop() {
    local d="$1"
    for name in slurmd slurmctld munged; do
        local pidfile="$d/run/$name.pid"
        [[ -f "$pidfile" ]] || continue
        local pid
        pid="$(cat "$pidfile" 2>/dev/null || true)"
        [[ "$pid" =~ ^[0-9]+$ ]] || continue
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 1 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -9 "$pid" 2>/dev/null || true
        rm -f "$pidfile"
    done
}

case "$cmd" in
stop)
    stop "$dir"
    exit 0
    ;;
start) ;;
*) die "unknown command $cmd (start|stop)" ;;
esac

[[ "$(id -u)" == 0 ]] || die "needs root (slurmd runs jobs as their user)"
for tool in munged slurmctld slurmd sbatch scontrol; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool not found: run scripts/setup.sh (Debian packages slurmctld slurmd slurm-client munge)"
done

mkdir -p "$dir"
dir="$(cd "$dir" && pwd)"
# munged insists on a folder only its user can write into and a 0400 key
mkdir -p "$dir/run" "$dir/log" "$dir/state" "$dir/spool" "$dir/munge"
chmod 755 "$dir" "$dir/munge"
head -c 1024 /dev/urandom >"$dir/munge/munge.key"
chmod 400 "$dir/munge/munge.key"
socket="$dir/munge/munge.socket"
munged --force --socket="$socket" --key-file="$dir/munge/munge.key" \
    --pid-file="$dir/run/munged.pid" --log-file="$dir/log/munged.log" \
    --seed-file="$dir/munge/seed" ||
    die "munged did not start (see $dir/log/munged.log)"

host="$(hostname -s)"
cpus="$(nproc)"
mem_mb="$(awk '/MemTotal/ {print int($2 / 1024 * 0.9)}' /proc/meminfo)"
ctld_port="$(free_port)"
slurmd_port="$(free_port)"
cat >"$dir/slurm.conf" <<EOF
ClusterName=rasterlab-test
SlurmctldHost=$host
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$socket
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/run/slurmctld.pid
SlurmdPidFile=$dir/run/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
MpiDefault=none
ReturnToService=2
JobCompType=jobcomp/filetxt
JobCompLoc=$dir/jobcomp.txt
MinJobAge=3600
NodeName=$host CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP OverSubscribe=YES
EOF
cat >"$dir/env" <<EOF
export SLURM_CONF=$dir/slurm.conf
EOF
export SLURM_CONF="$dir/slurm.conf"

slurmctld -f "$dir/slurm.conf" || { stop "$dir"; die "slurmctld did not start (see $dir/log/slurmctld.log)"; }
slurmd -f "$dir/slurm.conf" || { stop "$dir"; die "slurmd did not start (see $dir/log/slurmd.log)"; }

# Ready when the node accepts jobs.
for _ in $(seq 1 100); do
    state="$(sinfo -h -o %T 2>/dev/null | head -1 || true)"
    case "$state" in
    idle* | mixed* | allocated*)
        echo "slurm.sh: up in $dir (node $host, $cpus CPUs, ports $ctld_port/$slurmd_port)"
        exit 0
        ;;
    esac
    sleep 0.1
done
stop "$dir"
die "the node did not become idle (state '${state:-none}'; see $dir/log/)"
