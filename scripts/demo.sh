#!/usr/bin/env bash
# The demo: three echo instances on ipc:// endpoints and the `shoal` command
# calling them: a round trip, which instance answered, an error the caller
# chose, a slow call, a call that misses its deadline; then the cluster they
# formed with no configuration (shoal ls, calls by name, an instance killed
# while the others serve), and a clean shutdown.
# Every command is shown before it runs, with what it printed; the demo
# checks each outcome and exits non-zero if anything behaved unexpectedly.
#
#   scripts/demo.sh
#
# It builds first (scripts/build.sh). To run it against other binaries, set
# SHOAL_ECHO and SHOAL_CMD to their paths; then it does not build.
# Nothing leaves this machine: every endpoint is an ipc:// socket file in a
# fresh temporary directory, removed at exit.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

if [[ -z "${SHOAL_ECHO:-}${SHOAL_CMD:-}" ]]; then
    bash scripts/build.sh
fi
echo_bin=${SHOAL_ECHO:-$root/services/echo/shoal-echo}
shoal_bin=${SHOAL_CMD:-$root/tools/shoal}
for bin in "$echo_bin" "$shoal_bin"; do
    [[ -x "$bin" ]] || { echo "demo: $bin is not built" >&2; exit 1; }
done

# Debian's python3 (the one setup.sh installs) even if another comes first.
python=/usr/bin/python3
[[ -x "$python" ]] || python=python3

instances=3
start_deadline_ms=10000   # for an instance to bind
stop_deadline_ms=10000    # for all instances to exit after SIGTERM

tmp=$(mktemp -d -t shoal-demo.XXXXXX)
# A cluster of the demo's own: its nodes meet in a folder of the demo's own,
# so it never meets anything else running on this machine
export SHOAL_RUNTIME_DIR="$tmp/run" SHOAL_CLUSTER="demo-$$"
unset SHOAL_SEEDS SHOAL_INTERFACE SHOAL_HOST
pids=()
cleanup() {
    local pid deadline
    for pid in "${pids[@]}"; do
        if [[ -n "$pid" ]]; then kill -TERM "$pid" 2>/dev/null || true; fi
    done
    deadline=$(($(now_ms) + 2000))
    for pid in "${pids[@]}"; do
        if [[ -n "$pid" ]] && ! wait_exit "$pid" "$deadline"; then
            kill -KILL "$pid" 2>/dev/null || true
        fi
        if [[ -n "$pid" ]]; then wait "$pid" 2>/dev/null || true; fi
    done
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

problems=0
now_ms() { local t=${EPOCHREALTIME/[.,]/}; echo $((t / 1000)); }
say() { printf '\n== %s\n' "$*"; }
good() { printf '   ok: %s\n' "$*"; }
bad() { printf '   UNEXPECTED: %s\n' "$*"; problems=$((problems + 1)); }

# alive PID: true while PID runs (a zombie, exited but not yet reaped, is not).
alive() {
    local state
    state=$(sed -n 's/^State:[[:space:]]*\([A-Z]\).*/\1/p' "/proc/$1/status" 2>/dev/null) || return 1
    [[ -n "$state" && "$state" != Z && "$state" != X ]]
}

# wait_exit PID DEADLINE: waits until PID has exited, or until now_ms reaches
# DEADLINE. It polls, because bash cannot wait for a child with a deadline;
# the deadline bounds it.
wait_exit() {
    while alive "$1"; do
        (($(now_ms) < $2)) || return 1
        sleep 0.02
    done
}

# shown ARG...: the command as a person would type it, binaries by name.
shown() {
    local out="$" arg
    out+=" $(basename "$1")"
    shift
    for arg in "$@"; do
        if [[ $arg =~ ^[A-Za-z0-9_@%+=:,./-]+$ ]]; then
            out+=" $arg"
        else
            out+=" '${arg//\'/\'\\\'\'}'"
        fi
    done
    printf '%s\n' "$out"
}

# run ARG...: shows the command, runs it, shows its stdout and stderr and,
# if non-zero, its exit code. Leaves $out, $err, $rc and $took_ms.
out="" err="" rc=0 took_ms=0
run() {
    shown "$@"
    local t0
    t0=$(now_ms)
    rc=0
    "$@" >"$tmp/out" 2>"$tmp/err" </dev/null || rc=$?
    took_ms=$(($(now_ms) - t0))
    out=$(cat "$tmp/out")
    err=$(cat "$tmp/err")
    [[ -z "$out" ]] || printf '%s\n' "$out"
    [[ -z "$err" ]] || printf '%s\n' "$err" | sed 's/^/(stderr) /'
    ((rc == 0)) || printf '(exit %d)\n' "$rc"
}

# json_is JSON PYTHON-EXPR: true if the expression holds for d = the parsed
# JSON (false if it does not parse).
json_is() {
    "$python" -c '
import json, sys
try:
    d = json.loads(sys.argv[1])
except ValueError:
    sys.exit(1)
sys.exit(0 if eval(sys.argv[2]) else 1)' "$1" "$2" 2>/dev/null
}

endpoint() { echo "ipc://$tmp/echo-$1"; }

# --- start -----------------------------------------------------------------
say "Starting $instances instances of the echo service, each bound to its own ipc endpoint"
for i in $(seq 1 "$instances"); do
    printf '%s &\n' "$(shown "$echo_bin" --bind "$(endpoint "$i")")"
    "$echo_bin" --bind "$(endpoint "$i")" >"$tmp/echo-$i.out" 2>"$tmp/echo-$i.err" </dev/null &
    pids[i]=$!
done

# An instance is up when its socket file exists (zmq_bind made it) and it
# has printed the endpoint it bound.
for i in $(seq 1 "$instances"); do
    deadline=$(($(now_ms) + start_deadline_ms))
    until [[ -S "$tmp/echo-$i" && -s "$tmp/echo-$i.out" ]]; do
        if ! alive "${pids[i]}"; then
            bad "echo-$i exited before it was up:"
            cat "$tmp/echo-$i.err" "$tmp/echo-$i.out"
            exit 1
        fi
        if (($(now_ms) >= deadline)); then
            bad "echo-$i was not up after ${start_deadline_ms} ms" \
                "(socket file: $([[ -S "$tmp/echo-$i" ]] && echo yes || echo no)," \
                "endpoint printed: $([[ -s "$tmp/echo-$i.out" ]] && echo yes || echo no))"
            cat "$tmp/echo-$i.err"
            exit 1
        fi
        sleep 0.02
    done
    printed=$(head -n 1 "$tmp/echo-$i.out")
    if [[ "$printed" == "$(endpoint "$i")" ]]; then
        good "echo-$i is up (pid ${pids[i]}) and says it serves $printed"
    else
        bad "echo-$i printed '$printed', expected $(endpoint "$i")"
    fi
done

# --- echo --------------------------------------------------------------------
say "A round trip: the echo method answers with the body it was given"
run "$shoal_bin" call --endpoint "$(endpoint 1)" echo echo '{"hello":"shoal"}'
if ((rc == 0)) && json_is "$out" 'd == {"hello": "shoal"}'; then
    good "the same body came back (${took_ms} ms, including starting the command)"
else
    bad "expected {\"hello\":\"shoal\"} and exit 0"
fi

# --- whoami ------------------------------------------------------------------
say "Which instance answered: whoami on each of the three"
whoamis=()
for i in $(seq 1 "$instances"); do
    run "$shoal_bin" call --endpoint "$(endpoint "$i")" echo whoami
    if ((rc == 0)) && json_is "$out" "isinstance(d, dict) and d.get('pid') == ${pids[i]}"; then
        good "answered by echo-$i (pid ${pids[i]})"
        whoamis+=("$out")
    else
        bad "expected a JSON object with \"pid\": ${pids[i]} and exit 0"
    fi
done
if ((${#whoamis[@]} == instances)); then
    distinct=$(printf '%s\n' "${whoamis[@]}" | sort -u | wc -l)
    if ((distinct == instances)); then
        good "three different instances answered"
    else
        bad "only $distinct different answers from $instances instances"
    fi
fi

# --- fail --------------------------------------------------------------------
say "An error of the caller's choosing: fail with NOT_FOUND"
run "$shoal_bin" call --endpoint "$(endpoint 2)" echo fail \
    '{"code":"NOT_FOUND","message":"no such fish"}'
if ((rc != 0)) && [[ -z "$out" && "$err" =~ ^error:\ NOT_FOUND:\  ]]; then
    good "the error line names the status, and the exit code is $rc"
else
    bad "expected 'error: NOT_FOUND: ...' on stderr, nothing on stdout, non-zero exit"
fi

# --- sleep -------------------------------------------------------------------
say "A slow method: sleep 50 ms"
run "$shoal_bin" call --endpoint "$(endpoint 3)" echo sleep '{"ms":50}'
if ((rc == 0)) && json_is "$out" 'd == {"slept": 50}' && ((took_ms >= 50)); then
    good "replied after ${took_ms} ms"
else
    bad "expected {\"slept\":50} and exit 0 after at least 50 ms"
fi

say "A call that misses its deadline: sleep 2000 ms with --timeout 200"
run "$shoal_bin" call --endpoint "$(endpoint 3)" echo sleep '{"ms":2000}' --timeout 200
if ((rc != 0)) && [[ -z "$out" && "$err" =~ ^error:\ DEADLINE_EXCEEDED:\  ]]; then
    good "gave up with DEADLINE_EXCEEDED, exit code $rc"
else
    bad "expected 'error: DEADLINE_EXCEEDED: ...' on stderr and non-zero exit"
fi
if ((took_ms >= 200 && took_ms < 1500)); then
    good "after ${took_ms} ms: at the deadline, not when the reply would have come"
else
    bad "took ${took_ms} ms; expected 200 ms and well under the 2000 ms sleep"
fi

# --- the cluster ---------------------------------------------------------------
say "The cluster: the three processes found each other, with nothing configured"
run "$shoal_bin" ls
listed=$(printf '%s\n' "$out" | grep -c ' up ' || true)
if ((listed == instances)); then
    good "shoal ls lists $listed instances of echo, all up"
else
    bad "shoal ls listed $listed instances up, expected $instances"
fi

say "Calls by name: no endpoint; shoal picks an instance that is up"
answered=()
for n in 1 2 3 4 5 6; do
    run "$shoal_bin" call echo whoami
    if ((rc == 0)); then
        answered+=("$("$python" -c 'import json,sys; print(json.loads(sys.argv[1])["pid"])' "$out")")
    else
        bad "a call by name failed"
    fi
done
distinct=$(printf '%s\n' "${answered[@]}" | sort -u | wc -l)
if ((distinct >= 2)); then
    good "6 calls by name were spread over $distinct instances"
else
    bad "6 calls by name all went to one instance"
fi

say "An instance is killed (SIGKILL, no goodbye); calls by name go on"
printf '$ kill -KILL %d   # echo-1\n' "${pids[1]}"
kill -KILL "${pids[1]}"
wait "${pids[1]}" 2>/dev/null || true
pids[1]=""
failed=0
for n in 1 2 3 4 5; do
    run "$shoal_bin" call echo echo '{"n":'"$n"'}'
    ((rc == 0)) || failed=$((failed + 1))
done
if ((failed == 0)); then
    good "5 calls by name after the kill, none failed"
else
    bad "$failed of 5 calls by name failed after the kill"
fi
run "$shoal_bin" ls
listed=$(printf '%s\n' "$out" | grep -c ' up ' || true)
if ((listed == instances - 1)); then
    good "the killed instance is gone from the cluster: $listed left"
else
    bad "shoal ls lists $listed instances, expected $((instances - 1))"
fi

# --- stop --------------------------------------------------------------------
say "Stopping: SIGTERM to each instance; each finishes what it holds and exits 0"
for i in $(seq 1 "$instances"); do
    [[ -n "${pids[i]}" ]] || continue
    printf '$ kill -TERM %d   # echo-%d\n' "${pids[i]}" "$i"
    kill -TERM "${pids[i]}"
done
deadline=$(($(now_ms) + stop_deadline_ms))
for i in $(seq 1 "$instances"); do
    pid=${pids[i]}
    [[ -n "$pid" ]] || continue
    if ! wait_exit "$pid" "$deadline"; then
        bad "echo-$i (pid $pid) still running ${stop_deadline_ms} ms after SIGTERM"
        continue
    fi
    status=0
    wait "$pid" || status=$?
    pids[i]=""
    if ((status == 0)); then
        good "echo-$i exited with status 0"
    else
        bad "echo-$i exited with status $status"
        sed 's/^/(echo-'"$i"' stderr) /' "$tmp/echo-$i.err"
    fi
done

echo
if ((problems == 0)); then
    echo "demo: everything behaved as expected"
else
    echo "demo: $problems unexpected outcome(s)"
    exit 1
fi
