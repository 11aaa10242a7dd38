#!/usr/bin/env bash
# Builds shoal: installs what is missing (setup.sh), regenerates ./configure
# when configure.ac or Makefile.am changed, reconfigures when ./configure
# changed, then runs make. Each step runs only when it has to.
#
#   scripts/build.sh [TREE]
#
# TREE defaults to the repository root; test.sh passes the ASan tree
# (_build/asan). Extra ./configure arguments come from
# $SHOAL_CONFIGURE_FLAGS (word-split, e.g. "--enable-asan CFLAGS=-O0").
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
tree=${1:-$root}
cd "$tree"

bash "$root/scripts/setup.sh"

read -r -a configure_flags <<<"${SHOAL_CONFIGURE_FLAGS:-}"
jobs=$(nproc 2>/dev/null || echo 2)

# run_quiet LABEL CMD...: runs CMD with its output in a log, shown only if
# CMD fails (autoreconf and configure are chatty when all is well).
run_quiet() {
    local label=$1 log
    shift
    log=$(mktemp)
    echo "build: $label"
    if ! "$@" >"$log" 2>&1; then
        cat "$log" >&2
        rm -f "$log"
        echo "build: $label failed" >&2
        return 1
    fi
    rm -f "$log"
}

# stale TARGET SOURCE...: true if TARGET is missing or older than a SOURCE.
stale() {
    local target=$1 source
    shift
    [[ -e "$target" ]] || return 0
    for source in "$@"; do
        [[ "$source" -nt "$target" ]] && return 0
    done
    return 1
}

if stale configure configure.ac Makefile.am; then
    run_quiet "autogen ($tree)" ./autogen.sh
fi

# Reconfigure also when the flags differ from the ones config.status has:
# it prints them quoted the way configured_as builds them.
configured_as=""
if ((${#configure_flags[@]})); then
    configured_as=$(printf "'%s' " "${configure_flags[@]}")
    configured_as=${configured_as% }
fi
if stale Makefile configure || [[ ! -e config.status ]] ||
    [[ "$(./config.status --config)" != "$configured_as" ]]; then
    run_quiet "configure${configured_as:+ $configured_as} ($tree)" ./configure "${configure_flags[@]}"
fi

echo "build: make -j$jobs ($tree)"
make -j"$jobs" --no-print-directory
