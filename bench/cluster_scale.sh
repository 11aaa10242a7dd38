#!/usr/bin/env bash
# cluster_scale.sh - a cluster of N shoal-echo processes on this host, each
# its own node, in a cluster of its own (unique name, private
# SHOAL_RUNTIME_DIR, nothing configured that leaves the host), measuring:
#
#   a. convergence: from starting the last process until a long-lived
#      observer (a node that was there first: every old node learns of a
#      new one the same way) and a fresh `shoal ls --json` (a new node
#      learning of the old ones) list all N instances;
#   b. idle cost per node over IDLE seconds: CPU (utime+stime from
#      /proc/PID/stat, in % of one core) and memory (VmRSS), median and max;
#   c. failure detection: SIGKILL one instance, time until the observer no
#      longer lists it (KILLS - 1 times), then once more until a fresh
#      `shoal ls` does not (default KILLS 6);
#   d. joining: start one more shoal-echo, time until it is listed, and
#      until it answers at its endpoint (JOINS times).
#
#   bench/cluster_scale.sh [-n N] [--idle SECONDS] [--kills K] [--joins J] [--json]
#
# The observer is bench/cluster-watch (a small program of this folder); if
# it is not built, the figures come from `shoal ls` alone. Binaries are
# taken from the build tree (their .libs/ copies, so that pids and
# /proc figures are those of the real processes); override with
# SHOAL_ECHO=, SHOAL_CLI=, CLUSTER_WATCH=. Every wait is bounded; the whole
# run is bounded by --budget (default 110 s) and ends with every process it
# started killed and reaped, and its temporary folder removed (trap EXIT).
# Progress goes to stderr; the summary (or JSON) to stdout. Exit code 0, 1
# if something did not happen in time, 2 on a bad command line.
set -uo pipefail

n=50
idle=10
kills=6
joins=3
json=false
budget=110
usage() {
    sed -n '2,/^set -uo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
}
while [ $# -gt 0 ]; do
    case $1 in
    -n) n=${2:-}; shift 2 ;;
    --idle) idle=${2:-}; shift 2 ;;
    --kills) kills=${2:-}; shift 2 ;;
    --joins) joins=${2:-}; shift 2 ;;
    --budget) budget=${2:-}; shift 2 ;;
    --json) json=true; shift ;;
    -h | --help) usage; exit 0 ;;
    *) echo "cluster_scale: unknown option '$1'" >&2; usage >&2; exit 2 ;;
    esac
done
for value in "$n" "$idle" "$kills" "$joins" "$budget"; do
    if ! [[ $value =~ ^[0-9]+$ ]]; then
        echo "cluster_scale: numbers only, got '$value'" >&2
        exit 2
    fi
done
if [ "$n" -lt 2 ] || [ "$n" -gt 200 ] || [ "$kills" -ge "$n" ] || [ "$idle" -lt 1 ] \
    || [ "$idle" -gt 60 ] || [ "$joins" -gt 10 ] || [ "$budget" -gt 600 ]; then
    echo "cluster_scale: -n takes 2..200, --kills less than N, --idle 1..60," \
        "--joins 0..10, --budget up to 600" >&2
    exit 2
fi

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# The real binary behind a libtool wrapper, if there is one
real() {
    local dir=${1%/*} base=${1##*/}
    if [ -x "$dir/.libs/$base" ]; then echo "$dir/.libs/$base"; else echo "$1"; fi
}
echo_bin=${SHOAL_ECHO:-$(real "$root/services/echo/shoal-echo")}
cli_bin=${SHOAL_CLI:-$(real "$root/tools/shoal")}
watch_bin=${CLUSTER_WATCH:-$(real "$root/bench/cluster-watch")}
if [ -d "$root/lib/.libs" ]; then
    export LD_LIBRARY_PATH="$root/lib/.libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi
for bin in "$echo_bin" "$cli_bin"; do
    if [ ! -x "$bin" ]; then
        echo "cluster_scale: $bin is not built (make)" >&2
        exit 1
    fi
done
have_watch=true
if [ ! -x "$watch_bin" ]; then
    have_watch=false
    echo "cluster_scale: no observer ($watch_bin not built): shoal ls figures only" >&2
fi
command -v jq >/dev/null || { echo "cluster_scale: needs jq" >&2; exit 1; }

# Nothing that leaves the host: no seeds, no LAN interface
unset SHOAL_SEEDS SHOAL_INTERFACE SHOAL_HOST SHOAL_CLUSTER
tmp=$(mktemp -d /tmp/cluster-scale.XXXXXX)
export SHOAL_RUNTIME_DIR="$tmp/rendezvous"
mkdir -m 700 "$SHOAL_RUNTIME_DIR"
cluster="scale-$$-$RANDOM"
pids=()        # every echo started, killed or not
declare -A endpoint_of=()
watch_pid=""

cleanup() {
    local rc=$? pid left=()
    trap - EXIT INT TERM
    # SIGTERM first (each drains and says goodbye), SIGKILL what is left
    # after 10 s; reap everything
    for pid in "${pids[@]}" $watch_pid; do
        kill -TERM "$pid" 2>/dev/null && left+=("$pid")
    done
    local deadline=$((SECONDS + 10))
    while [ ${#left[@]} -gt 0 ] && [ $SECONDS -lt $deadline ]; do
        local still=()
        for pid in "${left[@]}"; do
            kill -0 "$pid" 2>/dev/null && still+=("$pid")
        done
        left=("${still[@]}")
        [ ${#left[@]} -gt 0 ] && sleep 0.05
    done
    for pid in "${left[@]}"; do
        echo "cluster_scale: $pid did not stop on SIGTERM in 10 s: SIGKILL" >&2
        kill -KILL "$pid" 2>/dev/null
    done
    wait 2>/dev/null
    rm -rf "$tmp"
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { echo "cluster_scale: $*" >&2; }
fail() { log "error: $*"; exit 1; }
now() { echo "$EPOCHREALTIME"; }
# ms between two $EPOCHREALTIME stamps
ms() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.0f", (b - a) * 1000 }'; }
budget_end=$((SECONDS + budget))
check_budget() { [ $SECONDS -lt $budget_end ] || fail "over the budget of $budget s"; }

# The first observer line after time T whose instance count satisfies the
# awk condition COND on $4 (instances); prints its time, waits up to MS
watch_until() {
    local after=$1 cond=$2 limit=$3 end line
    end=$((SECONDS + (limit + 999) / 1000))
    while [ $SECONDS -le $end ]; do
        check_budget
        line=$(awk -v t="$after" '$1 == "view" && $2 >= t && ('"$cond"') { print $2; exit }' \
            "$tmp/watch.log")
        [ -n "$line" ] && { echo "$line"; return 0; }
        sleep 0.02
    done
    return 1
}

# `shoal ls --json`, from a fresh node; the JSON in $tmp/ls.json
ls_json() {
    timeout 10 "$cli_bin" ls --json --cluster "$cluster" >"$tmp/ls.json" 2>>"$tmp/ls.err"
}
ls_count() { jq '.services.echo // [] | length' "$tmp/ls.json" 2>/dev/null || echo -1; }
ls_has() { jq -e --arg e "$1" '[.services.echo // [] | .[] | .endpoint] | index($e) != null' \
    "$tmp/ls.json" >/dev/null 2>&1; }

# Starts one shoal-echo; its pid in $started; endpoint read later
start_echo() {
    local index=$1
    "$echo_bin" --cluster "$cluster" >"$tmp/echo.$index.out" 2>"$tmp/echo.$index.err" &
    started=$!
    pids+=("$started")
}
# When echo INDEX wrote its endpoint (its output file's modification time,
# which the process set itself, as $EPOCHREALTIME)
bound_at() { stat -c '%.6Y' "$tmp/echo.$1.out"; }
# Waits (up to 10 s) for echo INDEX to print its endpoint; sets endpoint_of
wait_endpoint() {
    local index=$1 end=$((SECONDS + 10)) line=""
    while [ $SECONDS -le $end ]; do
        line=$(head -n 1 "$tmp/echo.$index.out" 2>/dev/null)
        [[ $line == tcp://* ]] && { endpoint_of[$index]=$line; return 0; }
        sleep 0.01
    done
    return 1
}

median() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) { print "null"; exit }
    if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
maximum() { sort -g | tail -n 1 | awk '{ print $1 } END { if (NR == 0) print "null" }'; }
# The last of the words given, or n/a
last() { if [ $# -gt 0 ]; then echo "${!#}"; else echo n/a; fi; }
# A JSON array of the words given
json_list() { local IFS=,; echo "[$*]"; }

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
log "cluster '$cluster', $n shoal-echo processes, load average $load_before"

# ---------------------------------------------------------------------------
# The observer, first: an old member of the cluster
if $have_watch; then
    "$watch_bin" --cluster "$cluster" --max-seconds "$budget" >"$tmp/watch.log" \
        2>"$tmp/watch.err" &
    watch_pid=$!
    end=$((SECONDS + 10))
    until grep -q '^ready' "$tmp/watch.log" 2>/dev/null; do
        [ $SECONDS -le $end ] || fail "the observer did not start: $(cat "$tmp/watch.err")"
        sleep 0.01
    done
fi

# ---------------------------------------------------------------------------
# a. Convergence
t_first=$(now)
for ((index = 1; index <= n; index++)); do
    [ $index -eq "$n" ] && t_last=$(now)
    start_echo "$index"
done

# At once, a fresh `shoal ls` until it lists all N (each run is a new node:
# joins, settles, prints); the time counted is when the run that saw them
# ended
ls_runs=0
ls_all=""
ls_durations=()
end=$((SECONDS + 30))
while [ $SECONDS -le $end ]; do
    check_budget
    t0=$(now)
    ls_json
    t1=$(now)
    ls_runs=$((ls_runs + 1))
    ls_durations+=("$(ms "$t0" "$t1")")
    if [ "$(ls_count)" -eq "$n" ]; then
        ls_all=$t1
        break
    fi
    sleep 0.02
done
[ -n "$ls_all" ] || fail "shoal ls never listed all $n instances in 30 s (last: $(ls_count))"
conv_ls=$(ms "$t_last" "$ls_all")
ls_nodes=$(jq '.nodes' "$tmp/ls.json")
# When each process had bound its instance and printed its endpoint
t_endpoints=0
for ((index = 1; index <= n; index++)); do
    wait_endpoint "$index" || fail "shoal-echo $index printed no endpoint in 10 s: $(cat "$tmp/echo.$index.err")"
    t_endpoints=$(awk -v a="$t_endpoints" -v b="$(bound_at "$index")" 'BEGIN { printf "%.6f", (b > a ? b : a) }')
done
log "$n launched in $(ms "$t_first" "$t_last") ms; all bound $(ms "$t_last" "$t_endpoints") ms after the last launch"
log "shoal ls lists all $n ${conv_ls} ms after the last launch ($ls_runs runs; nodes $ls_nodes)"

conv_watch=null
conv_watch_nodes=null
if $have_watch; then
    t=$(watch_until "$t_first" "\$4 >= $n && \$5 >= $n" 30000) \
        || fail "the observer never saw all $n instances up in 30 s"
    conv_watch=$(ms "$t_last" "$t")
    # and all nodes: the N echoes, itself (and any shoal ls still counted)
    t=$(watch_until "$t_first" "\$3 >= $n + 1" 30000) \
        || fail "the observer never heard from $n nodes"
    conv_watch_nodes=$(ms "$t_last" "$t")
    log "the observer saw all $n instances ${conv_watch} ms after the last started" \
        "(all nodes: ${conv_watch_nodes} ms)"
fi

# ---------------------------------------------------------------------------
# b. Idle cost: CPU over $idle seconds, resident memory
cpu_ticks() { # utime + stime of PID, in clock ticks (fields 14 and 15)
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || { echo -1; return; }
    stat=${stat##*) }           # after the command name
    awk '{ print $12 + $13 }' <<<"$stat"
}
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null; }
threads() { awk '/^Threads:/ { print $2 }' "/proc/$1/status" 2>/dev/null; }
check_budget
sleep 1                          # start-up work done, gossip in its steady beat
hz=$(getconf CLK_TCK)
idle_pids=("${pids[@]}")
declare -A ticks0=()
for pid in "${idle_pids[@]}"; do ticks0[$pid]=$(cpu_ticks "$pid"); done
watch_ticks0=$([ -n "$watch_pid" ] && cpu_ticks "$watch_pid" || echo 0)
t0=$(now)
sleep "$idle"
t1=$(now)
cpus=()
rss=()
for pid in "${idle_pids[@]}"; do
    ticks=$(cpu_ticks "$pid")
    [ "$ticks" -ge 0 ] || fail "shoal-echo $pid died while idle"
    cpus+=("$(awk -v d="$((ticks - ticks0[$pid]))" -v hz="$hz" -v a="$t0" -v b="$t1" \
        'BEGIN { printf "%.2f", d / hz / (b - a) * 100 }')")
    rss+=("$(rss_kb "$pid")")
done
thread_count=$(threads "${idle_pids[0]}")
cpu_median=$(printf '%s\n' "${cpus[@]}" | median)
cpu_max=$(printf '%s\n' "${cpus[@]}" | maximum)
cpu_total=$(printf '%s\n' "${cpus[@]}" | awk '{ s += $1 } END { printf "%.1f", s }')
rss_median=$(printf '%s\n' "${rss[@]}" | median)
rss_max=$(printf '%s\n' "${rss[@]}" | maximum)
watch_cpu=null
if [ -n "$watch_pid" ]; then
    watch_cpu=$(awk -v d="$(($(cpu_ticks "$watch_pid") - watch_ticks0))" -v hz="$hz" -v a="$t0" \
        -v b="$t1" 'BEGIN { printf "%.2f", d / hz / (b - a) * 100 }')
fi
log "idle ${idle} s: CPU per node median ${cpu_median} %, max ${cpu_max} %, all $n: ${cpu_total} %" \
    "of one core; VmRSS median ${rss_median} kB, max ${rss_max} kB; $thread_count threads each"

# ---------------------------------------------------------------------------
# c. Failure detection: SIGKILL one, time until it is no longer listed.
# The observer is left alone for this (no shoal ls meanwhile: a fresh node
# scanning the rendezvous folder would take the dead node's file away
# first, and the observer would be measured on another path). Then one more
# kill, with shoal ls run after run until it no longer lists the dead one.
alive=$n
detect_watch=()
detect_ls=()
kill_one() { # kills victim number $1 of the start order; sets t_kill, victim_endpoint
    local victim=$1 victim_pid=${pids[$1 - 1]}
    victim_endpoint=${endpoint_of[$victim]}
    t_kill=$(now)
    kill -KILL "$victim_pid"
    wait "$victim_pid" 2>/dev/null
    alive=$((alive - 1))
}
for ((kill_index = 1; kill_index <= kills; kill_index++)); do
    check_budget
    victim=$((kill_index * n / (kills + 1)))  # spread over the start order
    [ "$victim" -ge 1 ] || victim=1
    kill_one "$victim"
    # With the observer, the last kill is shoal ls's (unless there is only one)
    if $have_watch && { [ "$kill_index" -lt "$kills" ] || [ "$kills" -eq 1 ]; }; then
        t=$(watch_until "$t_kill" "\$4 <= $alive" 10000) \
            || fail "the observer still lists the killed instance 10 s later"
        detect_watch+=("$(ms "$t_kill" "$t")")
        log "killed $victim_endpoint: the observer dropped it after $(last "${detect_watch[@]}") ms"
    else
        # A fresh shoal ls, run after run: counted until the end of the
        # first run that does not list it (so this includes one run)
        end=$((SECONDS + 10))
        gone=""
        while [ $SECONDS -le $end ]; do
            check_budget
            ls_json
            if [ "$(ls_count)" -ge 0 ] && ! ls_has "$victim_endpoint"; then
                gone=$(now)
                break
            fi
        done
        [ -n "$gone" ] || fail "shoal ls still lists the killed instance 10 s later"
        detect_ls+=("$(ms "$t_kill" "$gone")")
        detect_note=""
        if $have_watch; then
            t=$(watch_until "$t_kill" "\$4 <= $alive" 10000) \
                || fail "the observer still lists the killed instance 10 s later"
            detect_watch_after_ls=$(ms "$t_kill" "$t")
            detect_note=" (the observer, with shoal ls scanning first: $detect_watch_after_ls ms)"
        fi
        log "killed $victim_endpoint: shoal ls no longer lists it $(last "${detect_ls[@]}") ms later$detect_note"
    fi
    # A pause of random length, so that the next kill does not fall at the
    # same point of the observer's beat (200 ms) as this one was detected
    sleep "0.$((300 + RANDOM % 400))"
done
detect_watch_after_ls=${detect_watch_after_ls:-null}

# ---------------------------------------------------------------------------
# d. Joining: one more shoal-echo, time until it is listed and answers
join_watch=()
join_ls=()
join_bound=()
join_ping=()
for ((join_index = 1; join_index <= joins; join_index++)); do
    check_budget
    index=$((n + join_index))
    t_start=$(now)
    start_echo "$index"
    wait_endpoint "$index" || fail "the joining shoal-echo printed no endpoint"
    join_bound+=("$(ms "$t_start" "$(bound_at "$index")")")
    alive=$((alive + 1))
    # Answers at its endpoint (a by-endpoint call, from a fresh process)
    # shellcheck disable=SC2016 # $ping is the built-in's name, not a variable
    timeout 10 "$cli_bin" call --endpoint "${endpoint_of[$index]}" echo '$ping' \
        >/dev/null 2>>"$tmp/call.err" || fail "the new instance does not answer \$ping"
    join_ping+=("$(ms "$t_start" "$(now)")")
    end=$((SECONDS + 10))
    listed=""
    while [ $SECONDS -le $end ]; do
        check_budget
        ls_json
        if ls_has "${endpoint_of[$index]}"; then
            listed=$(now)
            break
        fi
    done
    [ -n "$listed" ] || fail "shoal ls never listed the new instance"
    join_ls+=("$(ms "$t_start" "$listed")")
    if $have_watch; then
        t=$(watch_until "$t_start" "\$4 >= $alive && \$5 >= $alive" 10000) \
            || fail "the observer never listed the new instance"
        join_watch+=("$(ms "$t_start" "$t")")
    fi
    log "joined ${endpoint_of[$index]}: bound $(last "${join_bound[@]}") ms, answers \$ping" \
        "$(last "${join_ping[@]}") ms, observer $(last "${join_watch[@]}") ms, shoal ls $(last "${join_ls[@]}") ms"
    sleep 0.3
done

# ---------------------------------------------------------------------------
# Summary
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
ls_median=$(printf '%s\n' "${ls_durations[@]}" | median)
med_max() { # median and max of the words given, as "M / X"
    [ $# -eq 0 ] && { echo "n/a"; return; }
    echo "$(printf '%s\n' "$@" | median) / $(printf '%s\n' "$@" | maximum)"
}
if $json; then
    cat <<EOF
{
  "benchmark": "cluster_scale",
  "nodes": $n, "cluster": "$cluster", "nproc": $(nproc),
  "load_before": "$load_before", "load_after": "$load_after",
  "observer": $have_watch,
  "start": {"launch_ms": $(ms "$t_first" "$t_last"), "all_bound_ms": $(ms "$t_last" "$t_endpoints")},
  "convergence_ms": {"observer_instances": $conv_watch, "observer_nodes": $conv_watch_nodes,
                     "shoal_ls": $conv_ls, "shoal_ls_runs": $ls_runs, "shoal_ls_run_ms_median": $ls_median},
  "idle": {"seconds": $idle, "cpu_percent_median": $cpu_median, "cpu_percent_max": $cpu_max,
           "cpu_percent_all_nodes": $cpu_total, "observer_cpu_percent": $watch_cpu,
           "rss_kb_median": $rss_median, "rss_kb_max": $rss_max, "threads": ${thread_count:-null},
           "cpu_percent": $(json_list "${cpus[@]}")},
  "detection_ms": {"observer": $(json_list "${detect_watch[@]}"), "shoal_ls": $(json_list "${detect_ls[@]}"),
                   "observer_with_shoal_ls": $detect_watch_after_ls},
  "join_ms": {"bound": $(json_list "${join_bound[@]}"), "answers_ping": $(json_list "${join_ping[@]}"),
              "observer": $(json_list "${join_watch[@]}"), "shoal_ls": $(json_list "${join_ls[@]}")}
}
EOF
else
    # In text, what was not measured reads n/a
    [ "$watch_cpu" = null ] && watch_cpu=n/a
    [ "$conv_watch" = null ] && conv_watch=n/a
    [ "$conv_watch_nodes" = null ] && conv_watch_nodes=n/a
    [ "$detect_watch_after_ls" = null ] && detect_watch_after_ls=n/a
    cat <<EOF
cluster_scale: $n shoal-echo nodes on one host ($(nproc) CPUs), cluster '$cluster'
load average before: $load_before, after: $load_after

start       launching all $n: $(ms "$t_first" "$t_last") ms; all bound: $(ms "$t_last" "$t_endpoints") ms after the last launch
convergence after the last launch, all $n listed by:
              the observer (an old node)      ${conv_watch} ms (all nodes heard: ${conv_watch_nodes} ms)
              a fresh shoal ls (a new node)   ${conv_ls} ms ($ls_runs runs of shoal ls, median run $ls_median ms)
idle node   over ${idle} s: CPU median ${cpu_median} %, max ${cpu_max} % of one core (all $n: ${cpu_total} %)
              VmRSS median ${rss_median} kB, max ${rss_max} kB; ${thread_count} threads per process
              (the observer, polling its view every 2 ms: ${watch_cpu} %)
detection   SIGKILL until no longer listed, median / max (ms):
              the observer, alone             $(med_max "${detect_watch[@]}") (${#detect_watch[@]} kills)
              a fresh shoal ls (incl. its run) $(med_max "${detect_ls[@]}") (${#detect_ls[@]} kills;
              the observer, that time: ${detect_watch_after_ls} ms)
join        one more shoal-echo, from launch, median / max of $joins (ms):
              bound (endpoint printed)        $(med_max "${join_bound[@]}")
              answers \$ping at its endpoint   $(med_max "${join_ping[@]}")
              listed by the observer          $(med_max "${join_watch[@]}")
              listed by a fresh shoal ls      $(med_max "${join_ls[@]}")
EOF
fi
