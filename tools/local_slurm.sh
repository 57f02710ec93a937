#!/usr/bin/env bash
# A real single-node SLURM cluster on this machine, for the SLURM launcher's tests and for trying
# `tools/sweep.py --launcher slurm` without a cluster.
#
#   tools/local_slurm.sh start    # munged, slurmctld, slurmd; prints the SLURM_CONF to export
#   tools/local_slurm.sh status   # up or down (sinfo); exit 0 when up
#   tools/local_slurm.sh stop     # cancels its jobs, stops the daemons; nothing left running
#   tools/local_slurm.sh env      # `export SLURM_CONF=...` (eval "$(tools/local_slurm.sh env)")
#
# Needs Debian's slurm-wlm and munge (apt-get install -y slurm-wlm munge). Everything it writes
# (munge key and socket, slurm.conf, state, spool, logs) is in $KDZOO_SLURM_DIR (default
# /tmp/kdzoo-slurm); nothing in /etc is touched. This host is the only node, with its CPUs and
# memory; a job gets one CPU unless it asks for more. Ports: $KDZOO_SLURM_PORT (slurmctld,
# default 6817) and the next one (slurmd). Each start is a fresh cluster (job ids from 1).
set -euo pipefail

DIR="${KDZOO_SLURM_DIR:-/tmp/kdzoo-slurm}"
PORT="${KDZOO_SLURM_PORT:-6817}"
CONF="$DIR/slurm.conf"
export SLURM_CONF="$CONF"

need_packages() {
    local missing=()
    for cmd in munged slurmctld slurmd sbatch sinfo scontrol; do
        command -v "$cmd" >/dev/null 2>&1 || [ -x "/usr/sbin/$cmd" ] || missing+=("$cmd")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        echo "error: ${missing[*]} not found; install SLURM and munge: apt-get install -y slurm-wlm munge" >&2
        exit 2
    fi
}

sbin() { command -v "$1" 2>/dev/null || echo "/usr/sbin/$1"; }

pid_alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

# the daemons run (checked first: sinfo waits ten seconds for a controller that is gone) and
# the node takes jobs
is_up() {
    pid_alive "$DIR/run/slurmctld.pid" && pid_alive "$DIR/run/slurmd.pid" \
        && sinfo -h -o '%t' 2>/dev/null | grep -qE '^(idle|mix|alloc)'
}

write_conf() {
    local host cpus mem user
    host="$(hostname -s)"
    # what slurmd itself detects (a node configured above it would be drained)
    cpus="$("$(sbin slurmd)" -C | sed -n 's/.*CPUs=\([0-9]*\).*/\1/p' | head -n 1)"
    mem="$("$(sbin slurmd)" -C | sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' | head -n 1)"
    user="$(id -un)"
    cat >"$CONF" <<EOF
# Written by tools/local_slurm.sh: a single-node cluster on $host.
ClusterName=kdzoo
SlurmctldHost=$host(127.0.0.1)
SlurmUser=$user
SlurmdUser=$user
SlurmctldPort=$PORT
SlurmdPort=$((PORT + 1))
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$DIR/munge/munge.socket.2
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/run/slurmctld.pid
SlurmdPidFile=$DIR/run/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
SchedulerParameters=kill_invalid_depend
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MpiDefault=none
ReturnToService=2
MinJobAge=600
KillWait=10
InactiveLimit=0
SlurmctldTimeout=30
SlurmdTimeout=30
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=local Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
}

start() {
    need_packages
    if is_up; then
        echo "local SLURM cluster already up ($CONF)"
        echo "export SLURM_CONF=$CONF"
        return 0
    fi
    stop_daemons quiet
    local t0=$SECONDS
    rm -rf "$DIR/state" "$DIR/spool" "$DIR/run"
    mkdir -p "$DIR"/{munge,state,spool,log,run}
    chmod 700 "$DIR/munge"
    if [ ! -s "$DIR/munge/munge.key" ]; then
        dd if=/dev/urandom of="$DIR/munge/munge.key" bs=1024 count=1 status=none
    fi
    chmod 400 "$DIR/munge/munge.key"
    # --force: the key and socket live under /tmp, whose permissions munged would refuse
    "$(sbin munged)" --force --key-file="$DIR/munge/munge.key" \
        --socket="$DIR/munge/munge.socket.2" --pid-file="$DIR/munge/munged.pid" \
        --log-file="$DIR/log/munged.log" --seed-file="$DIR/munge/munged.seed"
    write_conf
    "$(sbin slurmctld)" -c -f "$CONF"
    "$(sbin slurmd)" -c -f "$CONF" -N "$(hostname -s)"
    for _ in $(seq 1 120); do
        if is_up; then
            echo "local SLURM cluster up in $((SECONDS - t0)) s: $(sinfo -h -o '%P %D node %c CPUs %m MB %t')"
            echo "export SLURM_CONF=$CONF   # for sbatch/squeue in this shell; tools/sweep.py finds it"
            return 0
        fi
        sleep 0.25
    done
    echo "error: the local SLURM cluster did not come up in 30 s; see $DIR/log/" >&2
    exit 1
}

stop_daemons() {
    # cancel every job first: slurmd leaves running jobs' slurmstepd behind when it stops
    if pid_alive "$DIR/run/slurmctld.pid"; then
        scancel -u "$(id -un)" 2>/dev/null || true
        for _ in $(seq 1 80); do
            [ -z "$(squeue -h -t running,completing -o %i 2>/dev/null)" ] && break
            sleep 0.25
        done
        scontrol shutdown >/dev/null 2>&1 || true
    fi
    for pidfile in "$DIR/run/slurmd.pid" "$DIR/run/slurmctld.pid" "$DIR/munge/munged.pid"; do
        if pid_alive "$pidfile"; then
            local pid
            pid="$(cat "$pidfile")"
            kill "$pid" 2>/dev/null || true
            for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
            kill -9 "$pid" 2>/dev/null || true
        fi
        rm -f "$pidfile"
    done
    [ "${1:-}" = quiet ] || echo "local SLURM cluster stopped (logs in $DIR/log)"
}

case "${1:-}" in
    start) start ;;
    stop) stop_daemons ;;
    status)
        if is_up; then
            echo "up: $(sinfo -h -o '%P %D node %c CPUs %m MB %t'), $(squeue -h | wc -l) job(s); export SLURM_CONF=$CONF"
        else
            echo "down (tools/local_slurm.sh start)"
            exit 1
        fi
        ;;
    env) echo "export SLURM_CONF=$CONF" ;;
    *)
        echo "usage: tools/local_slurm.sh start|stop|status|env" >&2
        exit 2
        ;;
esac
