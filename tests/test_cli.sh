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

kill -TERM "${pids[0]}"
wait "${pids[0]}"
ok $? "shoal-echo exits 0 on SIGTERM"
pids=()

# Every node has left: nobody's file is left in the rendezvous folder
[ -z "$(find "$SHOAL_RUNTIME_DIR" -type f)" ]
ok $? "every node removed its file from the rendezvous folder"

echo "1..$count"
