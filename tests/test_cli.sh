#!/usr/bin/env bash
# test_cli - the shoal command and shoal-echo as a user runs them: replies
# as JSON on stdout and exit 0; errors as "error: CODE: message" on stderr
# and a non-zero exit. TAP output, one line per case.
set -uo pipefail
top=${top_builddir:-$(cd "$(dirname "$0")/.." && pwd)}
shoal="$top/tools/shoal"
echo_bin="$top/services/echo/shoal-echo"
work=$(mktemp -d)
# A rendezvous folder and a cluster of our own: this test never meets the
# nodes of other tests, and leaves nothing behind
export SHOAL_RUNTIME_DIR="$work/run"
export SHOAL_CLUSTER="cli-$$"
unset SHOAL_SEEDS SHOAL_INTERFACE SHOAL_HOST
mkdir "$SHOAL_RUNTIME_DIR"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; done
    rm -rf "$work"
}
trap cleanup EXIT

count=0
failed=0
ok() {  # ok CONDITION-EXIT-STATUS NAME
    count=$((count + 1))
    if [ "$1" -eq 0 ]; then echo "ok $count - $2"; else echo "not ok $count - $2"; failed=$((failed + 1)); fi
}

# Milliseconds on a monotonic clock
now_ms() {
    local up
    read -r up _ </proc/uptime
    echo $(( ${up/./} * 10 ))
}

# Prints a JSON document's field (a python expression on `d`), from stdin
json_get() {
    /usr/bin/python3 -c "import json, sys; d = json.load(sys.stdin); print($1)"
}

# Waits for FILE to have LINES lines: polls every 20 ms, up to a deadline
wait_lines() {
    local file=$1 lines=$2 deadline=$((SECONDS + 10))
    while [ "$(wc -l <"$file")" -lt "$lines" ]; do
        [ $SECONDS -ge $deadline ] && return 1
        sleep 0.02
    done
}

: >"$work/endpoints"
"$echo_bin" --bind tcp://127.0.0.1:* --instances 2 >"$work/endpoints" 2>"$work/echo.err" &
pids+=($!)
wait_lines "$work/endpoints" 2
ok $? "shoal-echo prints one endpoint per instance"
endpoint=$(head -n 1 "$work/endpoints")

out=$("$shoal" call --endpoint "$endpoint" echo echo '{"sku":"A-1","qty":2,"tags":["x",null,true],"price":9.5}' 2>"$work/err")
rc=$?
[ $rc -eq 0 ] && [ "$out" = '{"sku":"A-1","qty":2,"tags":["x",null,true],"price":9.5}' ]
ok $? "call echo prints the body back as JSON and exits 0 ($out)"

out=$("$shoal" call --endpoint "$endpoint" echo whoami)
echo "$out" | grep -q '"pid":'
ok $? "whoami without a body answers ($out)"

"$shoal" call --endpoint "$endpoint" echo fail '{"code":"NOT_FOUND","message":"no such cart"}' >"$work/out" 2>"$work/err"
rc=$?
[ $rc -ne 0 ] && [ "$(cat "$work/err")" = "error: NOT_FOUND: no such cart" ] && [ ! -s "$work/out" ]
ok $? "an error prints 'error: NOT_FOUND: no such cart' on stderr, exit $rc"

"$shoal" call --endpoint "$endpoint" echo sleep '{"ms":3000}' --timeout 100 2>"$work/err"
rc=$?
[ $rc -ne 0 ] && grep -q '^error: DEADLINE_EXCEEDED: ' "$work/err"
ok $? "--timeout 100 on a 3 s sleep gives DEADLINE_EXCEEDED"

"$shoal" call --endpoint "$endpoint" echo nosuch 2>"$work/err"
[ $? -ne 0 ] && grep -q '^error: UNIMPLEMENTED: ' "$work/err"
ok $? "an unknown method gives UNIMPLEMENTED"

"$shoal" call --endpoint "$endpoint" echo sleep '{"ms":"soon"}' 2>"$work/err"
[ $? -ne 0 ] && grep -q "^error: INVALID_ARGUMENT: field 'ms' must be an integer" "$work/err"
ok $? "a mistyped field gives INVALID_ARGUMENT naming it"

"$shoal" call --endpoint "$endpoint" echo echo '{"unclosed": ' 2>"$work/err"
rc=$?
[ $rc -ne 0 ] && grep -q '^error: INVALID_ARGUMENT: bad JSON' "$work/err"
ok $? "bad JSON is refused before sending"

"$shoal" call --endpoint "ipc://$work/nobody" echo echo --timeout 200 2>"$work/err"
[ $? -ne 0 ] && grep -Eq '^error: (UNAVAILABLE|DEADLINE_EXCEEDED): ' "$work/err"
ok $? "nobody at the endpoint: UNAVAILABLE within the timeout"

"$shoal" --help >"$work/out" 2>&1
[ $? -eq 0 ] && grep -q 'call' "$work/out"
ok $? "shoal --help lists the commands"

"$shoal" frobnicate >/dev/null 2>&1
[ $? -ne 0 ]
ok $? "an unknown command exits non-zero"

"$echo_bin" --help >"$work/out"
[ $? -eq 0 ] && grep -q 'whoami' "$work/out"
ok $? "shoal-echo --help lists its methods"

"$echo_bin" --bind "$endpoint" >/dev/null 2>"$work/err"
[ $? -ne 0 ] && grep -q 'cannot bind' "$work/err"
ok $? "shoal-echo on a port in use exits non-zero with the reason"

# Calls by name: the cluster finds the instances; no endpoint is given
echo_pid=${pids[0]}
out=$("$shoal" call echo whoami 2>"$work/err")
rc=$?
[ $rc -eq 0 ] && [ "$(echo "$out" | json_get 'd["pid"]')" = "$echo_pid" ]
ok $? "call by name reaches a running echo instance ($out)"

first=$("$shoal" call echo whoami --key cart-42 | json_get 'd["instance"]')
same=0
for i in 1 2 3 4 5; do
    [ "$("$shoal" call echo whoami --key cart-42 | json_get 'd["instance"]')" = "$first" ] || same=1
done
[ -n "$first" ] && [ $same -eq 0 ]
ok $? "--key cart-42 reaches the same instance 5 times ($first)"

"$shoal" call echo echo '{"a":1}' --key k --endpoint "$endpoint" >/dev/null 2>"$work/err"
[ $? -eq 2 ] && grep -q '^error: INVALID_ARGUMENT: ' "$work/err"
ok $? "--key with --endpoint is bad usage"

start=$(now_ms)
"$shoal" ls >"$work/out" 2>"$work/err"
rc=$?
ls_ms=$(( $(now_ms) - start ))
[ $rc -eq 0 ] && [ "$(grep -c '^echo  .* up  ' "$work/out")" -eq 2 ] \
    && head -n 1 "$work/out" | grep -Eq '^SERVICE +VERSION +INSTANCE +NODE +ENDPOINT +STATE +LOAD +LATENCY +CALLS$' \
    && grep -qF "$endpoint" "$work/out"
ok $? "ls lists the 2 echo instances, up, under its header"
[ $ls_ms -lt 1000 ]
ok $? "a fresh ls answers in under a second (${ls_ms} ms)"

"$shoal" ls --json >"$work/out" 2>"$work/err"
rc=$?
[ $rc -eq 0 ] && [ "$(json_get 'len(d["services"]["echo"])' <"$work/out")" = 2 ] \
    && [ "$(json_get 'd["cluster"]' <"$work/out")" = "$SHOAL_CLUSTER" ] \
    && [ "$(json_get 'd["nodes"]' <"$work/out")" = 1 ] \
    && [ "$(json_get '",".join(sorted({i["state"] for i in d["services"]["echo"]}))' <"$work/out")" = up ] \
    && [ "$(json_get '",".join(sorted(i["endpoint"] for i in d["services"]["echo"]))' <"$work/out")" \
         = "$(sort "$work/endpoints" | paste -sd,)" ]
ok $? "ls --json is one document: cluster, 1 node, the 2 echo instances up at their endpoints"

"$shoal" --cluster other ls >"$work/out" 2>"$work/err"
rc=$?
[ $rc -eq 0 ] && [ ! -s "$work/out" ]
ok $? "--cluster other sees no echo (exit $rc, nothing listed)"

out=$("$shoal" ls --json --cluster other)
[ $? -eq 0 ] && [ "$(echo "$out" | json_get 'len(d["services"])')" = 0 ]
ok $? "--cluster after the command works too, and --json shows no services ($out)"

start=$(now_ms)
"$shoal" call nobody hello >"$work/out" 2>"$work/err"
rc=$?
elapsed=$(( $(now_ms) - start ))
[ $rc -eq 1 ] && grep -q '^error: UNAVAILABLE: ' "$work/err" && [ $elapsed -lt 1000 ]
ok $? "a call to a service nobody runs: UNAVAILABLE in ${elapsed} ms"

"$shoal" --cluster 'no spaces' ls >/dev/null 2>"$work/err"
[ $? -eq 2 ] && grep -q '^error: INVALID_ARGUMENT: ' "$work/err"
ok $? "a bad cluster name is bad usage"

# Events: shoal sub prints what shoal pub publishes. Every pub is a node of
# its own that leaves when it exits: a subscriber connects to each one
# anew, and pub --wait-subscribers N waits until N subscribers to the topic
# are connected to it (no sleeping: the cluster says when they are).

# Waits for background process PID to end, polling every 20 ms up to
# SECONDS (default 10); returns its exit status, or 124 if it still runs
wait_exit() {
    local pid=$1 deadline=$((SECONDS + ${2:-10})) state
    while read -r _ _ state _ 2>/dev/null </proc/"$pid"/stat && [ "$state" != Z ]; do
        [ $SECONDS -ge $deadline ] && return 124
        sleep 0.02
    done
    wait "$pid"
}

for i in 1 2 3; do
    "$shoal" sub 'order.*' --count 3 --timeout 10000 >"$work/sub$i.out" 2>"$work/sub$i.err" &
    pids+=($!)
    sub_pids[$i]=$!
done
rc=0
"$shoal" pub order.placed '{"id":1}' --wait-subscribers 3 --timeout 10000 2>"$work/pub.err" || rc=1
"$shoal" pub order.paid '{"id":2}' --wait-subscribers 3 --timeout 10000 2>>"$work/pub.err" || rc=1
# Nobody subscribes to it: nothing to wait for, and nobody must print it
"$shoal" pub stock.changed '{"id":9}' 2>>"$work/pub.err" || rc=1
"$shoal" pub order.placed '{"id":3}' --wait-subscribers 3 --timeout 10000 2>>"$work/pub.err" || rc=1
[ $rc -eq 0 ] && [ ! -s "$work/pub.err" ]
ok $? "pub of 4 events to 3 subscribers exits 0, silent ($(head -c 300 "$work/pub.err"))"
expected=$(printf '%s\n' 'order.placed {"id":1}' 'order.paid {"id":2}' 'order.placed {"id":3}')
for i in 1 2 3; do
    wait_exit "${sub_pids[$i]}"
    rc=$?
    [ $rc -eq 0 ] && [ "$(cat "$work/sub$i.out")" = "$expected" ] && [ ! -s "$work/sub$i.err" ]
    ok $? "sub $i of 3 on 'order.*' printed the 3 order events in order, exit $rc ($(tr '\n' '|' <"$work/sub$i.out"; head -c 300 "$work/sub$i.err"))"
done

"$shoal" pub stock.changed '{"id":9}' --wait-subscribers 1 --timeout 300 >"$work/out" 2>"$work/err"
rc=$?
[ $rc -eq 1 ] && grep -q '^error: UNAVAILABLE: ' "$work/err" && [ ! -s "$work/out" ]
ok $? "pub --wait-subscribers 1 with no subscriber to the topic: UNAVAILABLE, exit $rc"

# Patterns: '**' spans any number of segments (none included), '*' one;
# a subscriber with two patterns matching one event gets it once. (A
# subscriber is waited for only on the topics it matches, so an event it
# must not get is a check only when it is connected in time, as is usual.)
"$shoal" sub 'order.**' --count 3 --timeout 10000 >"$work/deep.out" 2>"$work/deep.err" &
pids+=($!)
deep_pid=$!
"$shoal" sub '*.placed' 'order.*' --count 2 --timeout 10000 >"$work/one.out" 2>"$work/one.err" &
pids+=($!)
one_pid=$!
rc=0
"$shoal" pub order.placed '{"n":1}' --wait-subscribers 2 --timeout 10000 || rc=1
"$shoal" pub order '{"n":2}' --wait-subscribers 1 --timeout 10000 || rc=1
"$shoal" pub order.placed.late '{"n":3}' --wait-subscribers 1 --timeout 10000 || rc=1
"$shoal" pub shipment.placed '{"n":4}' --wait-subscribers 1 --timeout 10000 || rc=1
ok $rc "pub of order.placed, order, order.placed.late, shipment.placed"
wait_exit $deep_pid
rc=$?
[ $rc -eq 0 ] && [ "$(cat "$work/deep.out")" \
    = "$(printf '%s\n' 'order.placed {"n":1}' 'order {"n":2}' 'order.placed.late {"n":3}')" ]
ok $? "'order.**' got order.placed, order and order.placed.late, exit $rc ($(tr '\n' '|' <"$work/deep.out"; head -c 300 "$work/deep.err"))"
wait_exit $one_pid
rc=$?
[ $rc -eq 0 ] && [ "$(cat "$work/one.out")" \
    = "$(printf '%s\n' 'order.placed {"n":1}' 'shipment.placed {"n":4}')" ]
ok $? "'*.placed' 'order.*' got order.placed once and shipment.placed, exit $rc ($(tr '\n' '|' <"$work/one.out"; head -c 300 "$work/one.err"))"

# --json: one object per line. Each pub is a new node: its own publisher
# id, and its numbering of the topic starts at 1
"$shoal" sub 'audit.*' --json --count 2 --timeout 10000 >"$work/json.out" 2>"$work/json.err" &
pids+=($!)
json_pid=$!
rc=0
"$shoal" pub audit.login '{"user":"ann","roles":["a",null,true],"n":-1.5}' --wait-subscribers 1 --timeout 10000 || rc=1
"$shoal" pub audit.logout --wait-subscribers 1 --timeout 10000 || rc=1
wait_exit $json_pid
[ $? -eq 0 ] && [ $rc -eq 0 ] && /usr/bin/python3 - "$work/json.out" <<'PY'
import json, sys
lines = open(sys.argv[1]).read().splitlines()
events = [json.loads(line) for line in lines]
assert len(events) == 2, lines
assert [sorted(e) for e in events] == [["body", "publisher", "replayed", "seq", "topic"]] * 2
assert [e["topic"] for e in events] == ["audit.login", "audit.logout"]
assert [e["body"] for e in events] == [{"user": "ann", "roles": ["a", None, True], "n": -1.5}, None]
assert [e["seq"] for e in events] == [1, 1]
assert [e["replayed"] for e in events] == [False, False]
publishers = [e["publisher"] for e in events]
assert all(isinstance(p, str) and p for p in publishers) and publishers[0] != publishers[1]
PY
ok $? "sub --json prints topic, publisher, seq 1, replayed false and the body ($(tr '\n' '|' <"$work/json.out"; head -c 300 "$work/json.err"))"

# Bad input is refused before joining: no node is made for nothing
refused() {  # refused ARGS...: shoal ARGS exits 2 with INVALID_ARGUMENT
    "$shoal" "$@" >"$work/out" 2>"$work/err"
    local rc=$?
    [ $rc -eq 2 ] && grep -q '^error: INVALID_ARGUMENT: ' "$work/err" && [ ! -s "$work/out" ]
    ok $? "shoal $(echo "$*" | cut -c 1-40) is refused: INVALID_ARGUMENT, exit $rc"
}
long=$(printf 'a%.0s' {1..300})
refused pub bad..topic '{}'
refused pub order.x '{bad json'
refused pub order.x '{}' extra
refused sub 'ord*'
refused sub 'order.*' bad..pattern
refused pub "$long" '{}'
refused sub "$long"
refused sub
refused sub x --count 0

start=$(now_ms)
"$shoal" sub nothing.here --count 1 --timeout 300 >"$work/out" 2>"$work/err"
rc=$?
elapsed=$(( $(now_ms) - start ))
[ $rc -eq 1 ] && grep -q '^error: DEADLINE_EXCEEDED: got 0 of 1 events$' "$work/err" \
    && [ ! -s "$work/out" ] && [ $elapsed -lt 2000 ]
ok $? "sub --count 1 --timeout 300 with no publisher: DEADLINE_EXCEEDED in ${elapsed} ms"

# SIGTERM ends a sub that has no --count at once, and cleanly: it is seen
# receiving first, so that the signal finds it in its loop
"$shoal" sub ping >"$work/ping.out" 2>"$work/ping.err" &
pids+=($!)
ping_pid=$!
"$shoal" pub ping '"hello"' --wait-subscribers 1 --timeout 10000
wait_lines "$work/ping.out" 1
ok $? "sub with no --count prints the event at once ($(cat "$work/ping.out"))"
start=$(now_ms)
kill -TERM $ping_pid
wait_exit $ping_pid 5
rc=$?
elapsed=$(( $(now_ms) - start ))
[ $rc -eq 0 ] && [ $elapsed -lt 2000 ] && [ "$(cat "$work/ping.out")" = 'ping "hello"' ] \
    && [ ! -s "$work/ping.err" ]
ok $? "SIGTERM ends sub in ${elapsed} ms with exit $rc ($(head -c 300 "$work/ping.err"))"

kill -TERM "${pids[0]}"
wait "${pids[0]}"
ok $? "shoal-echo exits 0 on SIGTERM"
# Every other process has ended (and been waited for) by now
pids=()

# Every node has left: nobody's file is left in the rendezvous folder
[ -z "$(find "$SHOAL_RUNTIME_DIR" -type f)" ]
ok $? "every node removed its file from the rendezvous folder"

echo "1..$count"
