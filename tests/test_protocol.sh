#!/bin/sh
# test_protocol.sh - the wire protocol of docs/protocol.md, checked from the
# outside: tests/protocol_peer.py speaks it with nothing but pyzmq and
# msgpack, as a client of shoal-echo and as a service that `shoal call`
# calls. It writes TAP; automake's tap-driver reads it.
#
# Env (set by `make check`): top_builddir, top_srcdir, PYTHON3. The python3
# first on PATH may lack the modules; Debian's /usr/bin/python3 with
# python3-zmq and python3-msgpack has them, so it is tried as well.
top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}
top_builddir=${top_builddir:-$top_srcdir}
export top_srcdir top_builddir

for python in "${PYTHON3:-/usr/bin/python3}" /usr/bin/python3; do
    if "$python" -c 'import zmq, msgpack' >/dev/null 2>&1; then
        exec "$python" "$top_srcdir/tests/protocol_peer.py"
    fi
done
echo "1..0 # SKIP python3-zmq/python3-msgpack missing"
exit 0
