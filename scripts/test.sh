#!/usr/bin/env bash
# The test command: builds, runs `make check`, and ends with one line
#
#     N passed, N failed[, N skipped]
#
# counted from automake's test-suite.log (C tests speak TAP, so each case
# counts). Exit 0 only if nothing failed.
#
#   scripts/test.sh              build in the tree, make check
#   scripts/test.sh --asan       instead: ASan+UBSan build in _build/asan, check there
#   scripts/test.sh --memcheck   also: make memcheck (the C tests under valgrind)
#   CI=true scripts/test.sh      all three: check, ASan check, memcheck
#
# Time limits per stage (seconds, env): SHOAL_CHECK_TIMEOUT (default 300),
# SHOAL_ASAN_TIMEOUT (360), SHOAL_MEMCHECK_TIMEOUT (360); together with the
# two builds they keep a CI run under about 20 minutes even when something
# hangs, and a stage that hits its limit counts as failed.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
jobs=$(nproc 2>/dev/null || echo 2)

usage() { sed -n '2,18s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"; }

run_plain=1 run_asan=0 run_memcheck=0
for arg in "$@"; do
    case $arg in
        --asan) run_asan=1 run_plain=0 ;;
        --memcheck) run_memcheck=1 ;;
        -h | --help) usage; exit 0 ;;
        *) echo "test: unknown option $arg" >&2; usage >&2; exit 2 ;;
    esac
done
if [[ "${CI:-}" == true ]]; then
    run_plain=1 run_asan=1 run_memcheck=1
fi

passed=0 failed=0 skipped=0
# Only .trs files written after this stamp belong to this run.
stamp=$(mktemp)
trap 'rm -f "$stamp"' EXIT
failures=()   # what failed, for the summary before the final line

# count_suite TREE: adds TREE's test-suite.log counts to the totals and shows
# the tail of every failing test's log. No test-suite.log: one failure.
count_suite() {
    local tree=$1 log=$1/test-suite.log
    if [[ ! -f "$log" ]]; then
        echo "test: no $log (the build or the test run did not finish)"
        failed=$((failed + 1))
        failures+=("$tree: no test-suite.log")
        return
    fi
    local key value
    local -A n=([PASS]=0 [XFAIL]=0 [FAIL]=0 [XPASS]=0 [ERROR]=0 [SKIP]=0)
    while read -r key value; do
        n[$key]=$value
    done < <(sed -n 's/^# \(PASS\|XFAIL\|FAIL\|XPASS\|ERROR\|SKIP\): *\([0-9][0-9]*\)$/\1 \2/p' "$log")
    passed=$((passed + n[PASS] + n[XFAIL]))
    failed=$((failed + n[FAIL] + n[XPASS] + n[ERROR]))
    skipped=$((skipped + n[SKIP]))

    # A test's .trs says how the whole test went; only this run's count.
    local trs result name
    while IFS= read -r -d '' trs; do
        result=$(sed -n 's/^:global-test-result: //p' "$trs")
        case $result in
            FAIL | XPASS | ERROR)
                name=${trs%.trs}
                name=${name#"$root"/}
                failures+=("$result: $name")
                echo
                echo "==== $result: $name.log (last 40 lines)"
                tail -n 40 "${trs%.trs}.log" 2>/dev/null || true
                ;;
        esac
    done < <(find "$tree" -path "$tree/_build" -prune -o \
        -name '*.trs' -newer "$stamp" -print0 2>/dev/null)
}

# run_check TREE TIMEOUT: make check in TREE (a failure does not stop us).
# Running out of time counts as one failure: everything is killed (KILL, so
# make cannot delete the partial logs) and the unfinished tests are named.
run_check() {
    local tree=$1 limit=$2 rc=0 log name
    rm -f "$tree/test-suite.log"
    touch "$stamp"
    echo "test: make check in $tree (limit ${limit}s)"
    timeout -s KILL "$limit" make -C "$tree" -j"$jobs" --no-print-directory check || rc=$?
    if ((rc == 124 || rc == 137)); then
        echo "test: make check in $tree hit its ${limit}s limit"
        failed=$((failed + 1))
        failures+=("$tree: make check timed out")
        while IFS= read -r -d '' log; do
            [[ -e "${log%.log}.trs" ]] && continue
            name=${log#"$root"/}
            failures+=("unfinished: ${name%.log}")
            echo
            echo "==== unfinished: $name (last 40 lines)"
            tail -n 40 "$log"
        done < <(find "$tree" -path "$tree/_build" -prune -o -name '*.log' \
            ! -name test-suite.log ! -name config.log -newer "$stamp" -print0)
        return
    fi
    count_suite "$tree"
}

# sync_asan_tree DIR: a copy of the sources (what git lists: tracked files
# and new ones it does not ignore) in DIR, mtimes kept so make stays
# incremental. Why a copy, not a VPATH build off the repository: configure
# refuses to build out of a source tree that is itself configured, and
# build.sh configures the tree in place.
sync_asan_tree() {
    local dir=$1 list old
    mkdir -p "$dir"
    list=$(mktemp)
    (cd "$root" && git ls-files -z --cached --others --exclude-standard) |
        (cd "$root" && while IFS= read -r -d '' f; do
            [[ -f "$f" ]] && printf '%s\0' "$f"
        done) >"$list"
    # Files gone from the tree since the last copy go from the copy too.
    old=$dir/.shoal-files
    if [[ -f "$old" ]]; then
        comm -z -23 <(sort -z "$old") <(sort -z "$list") |
            (cd "$dir" && xargs -0 -r rm -f --)
    fi
    (cd "$root" && tar --null -T "$list" -cf -) | (cd "$dir" && tar -xpf -)
    mv "$list" "$old"
}

build_ok=0
if ((run_plain || run_memcheck)); then
    if bash scripts/build.sh; then
        build_ok=1
    else
        echo "test: build failed"
    fi
fi

if ((run_plain)); then
    if ((build_ok)); then
        run_check "$root" "${SHOAL_CHECK_TIMEOUT:-300}"
    else
        rm -f "$root/test-suite.log"
        count_suite "$root"
    fi
fi

if ((run_asan)); then
    asan=$root/_build/asan
    asan_ok=0
    if ! command -v git >/dev/null || ! git -C "$root" rev-parse --git-dir >/dev/null 2>&1; then
        echo "test: --asan copies the sources that git lists; this is not a git checkout"
    elif sync_asan_tree "$asan" &&
        SHOAL_CONFIGURE_FLAGS="--enable-asan ${SHOAL_CONFIGURE_FLAGS:-}" \
            bash scripts/build.sh "$asan"; then
        asan_ok=1
    else
        echo "test: ASan build failed"
    fi
    if ((asan_ok)); then
        # Leaks fail the run; UBSan already aborts (-fno-sanitize-recover).
        ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} \
        UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1} \
            run_check "$asan" "${SHOAL_ASAN_TIMEOUT:-360}"
    else
        rm -f "$asan/test-suite.log"
        count_suite "$asan"
    fi
fi

if ((run_memcheck)); then
    limit=${SHOAL_MEMCHECK_TIMEOUT:-360}
    echo "test: make memcheck (limit ${limit}s)"
    if ((build_ok)) && timeout --kill-after=10 "$limit" make --no-print-directory memcheck; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        failures+=("make memcheck")
    fi
fi

if ((${#failures[@]})); then
    echo
    echo "test: failed:"
    printf '  %s\n' "${failures[@]}"
fi
if ((skipped)); then
    echo "$passed passed, $failed failed, $skipped skipped"
else
    echo "$passed passed, $failed failed"
fi
((failed == 0))
