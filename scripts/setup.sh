#!/usr/bin/env bash
# Installs the Debian packages that the build, the tests and the demo need.
# Idempotent: when everything is present it prints one line and touches
# nothing. Works without a tty (CI runs it with no standard input).
set -euo pipefail

packages=(
    build-essential autoconf automake libtool pkg-config
    libzmq3-dev libczmq-dev libmsgpack-dev libjansson-dev
    valgrind python3 python3-zmq python3-msgpack python3-pytest
    iproute2 procps
)

missing=()
for pkg in "${packages[@]}"; do
    status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
    if [[ "$status" != "install ok installed" ]]; then
        missing+=("$pkg")
    fi
done

if ((${#missing[@]} == 0)); then
    echo "setup: all packages present"
    exit 0
fi

echo "setup: installing ${missing[*]}"

as_root=()
if [[ "$(id -u)" -ne 0 ]]; then
    if command -v sudo >/dev/null 2>&1; then
        # Without a terminal sudo cannot ask for a password: fail, not hang.
        if [[ -t 0 || -t 1 ]]; then as_root=(sudo); else as_root=(sudo -n); fi
    else
        echo "setup: not root and no sudo; please install: ${missing[*]}" >&2
        exit 1
    fi
fi

"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq </dev/null
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null
echo "setup: done"
