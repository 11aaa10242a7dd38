#!/usr/bin/python3
"""protocol_peer - checks docs/protocol.md from the outside: a client and a
service written with nothing but pyzmq and msgpack talk to shoal's C code.

  (a) as a client, against services/echo/shoal-echo;
  (b) as a service ("pyecho"), called by the C command line `tools/shoal call`.

The client and the service below, between the "doc:" markers, are the very
code that docs/protocol.md shows; a case checks that the two stay the same.

Writes TAP for automake's tap-driver. Every receive has a deadline, nothing
sleeps to let things settle, every process started is killed and reaped, and
everything is on loopback with ephemeral ports.

Environment: top_builddir (where shoal-echo and shoal are built) and
top_srcdir (where docs/ is), both defaulting to the repository root. The
shoal-echo started here joins a cluster of its own, in a rendezvous folder
of its own that is removed at the end, so it never meets other tests' nodes.
Run with Debian's /usr/bin/python3 (python3-zmq, python3-msgpack)."""

import json
import os
import re
import select
import shutil
import subprocess
import sys
import tempfile
import threading
import time

import msgpack
import zmq

# --- doc: client ---
import itertools, time
import msgpack, zmq

def split(frame):
    """A message is one frame: the header, one msgpack value, then the body's
    bytes (b"" when nothing follows: a nil body). Raises ValueError if the
    frame does not start with one whole msgpack value."""
    try:
        return msgpack.unpackb(frame, unicode_errors="replace"), b""
    except msgpack.ExtraData as extra:              # bytes after the header: the body
        return extra.unpacked, extra.extra

class Client:
    """Calls shoal services at one endpoint over a DEALER socket."""
    def __init__(self, endpoint, context=None):
        self.socket = (context or zmq.Context.instance()).socket(zmq.DEALER)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.connect(endpoint)
        self.ids = itertools.count(1)                   # id 0 means "unknown"

    def call(self, service, method, body=None, timeout_ms=1000, meta=None):
        """Returns (status, message, reply body); status 4 when time is up."""
        call_id, deadline = next(self.ids), time.monotonic() + timeout_ms / 1000
        header = ["shoal", 1, "REQ", call_id, service, method, timeout_ms, meta or {}]
        self.socket.send(msgpack.packb(header) + msgpack.packb(body))     # one frame
        while (left := deadline - time.monotonic()) > 0 and self.socket.poll(left * 1000):
            frames = self.socket.recv_multipart()
            reply, rest = split(frames[0])
            if len(frames) == 1 and type(reply) is list and len(reply) == 6 \
                    and reply[:4] == ["shoal", 1, "REP", call_id]:
                return reply[4], reply[5], msgpack.unpackb(rest) if rest else None
        return 4, "no reply within the deadline", None  # a late reply is dropped
# --- end doc: client ---

# --- doc: service ---
class ShoalError(Exception):
    """Raised by a method to answer with an error status."""
    def __init__(self, status, message):
        super().__init__(message)
        self.status, self.message = status, message

def serve(router, name, methods, stop):
    """Serves service NAME on a bound ROUTER until the event STOP is set.
    METHODS maps a method name to a function(body) -> reply body."""
    while not stop.is_set():
        if not router.poll(100):                        # wake up to look at STOP
            continue
        identity, *frames = router.recv_multipart()
        call_id, status, message, reply = 0, 0, "", b""
        try:
            if len(frames) != 1:
                raise ShoalError(3, f"a message is 1 frame (header and body); got {len(frames)}")
            header, rest = split(frames[0])
            if type(header) is not list or len(header) < 4 or header[0] != "shoal":
                raise ShoalError(3, "not a shoal request")
            call_id = header[3] if type(header[3]) is int and header[3] > 0 else 0
            if header[1] != 1:
                raise ShoalError(9, "protocol version not supported: this peer speaks version 1")
            if header[2] != "REQ" or len(header) != 8:
                raise ShoalError(3, "expected a request header of 8 fields")
            if header[4] != name:
                raise ShoalError(5, f"no service '{header[4]}' here (this is '{name}')")
            if header[5] not in methods:
                raise ShoalError(12, f"service '{name}' has no method '{header[5]}'")
            body = msgpack.unpackb(rest) if rest else None
            reply = msgpack.packb(methods[header[5]](body))
        except ShoalError as error:
            status, message = error.status, error.message
        except ValueError as error:                     # bad msgpack, or a bad argument
            status, message = 3, f"invalid argument: {error}"
        except Exception as error:                      # a bug in the method
            status, message = 13, f"{type(error).__name__}: {error}"
        header = ["shoal", 1, "REP", call_id, status, message]
        router.send_multipart([identity, msgpack.packb(header) + reply])   # nil if b""
# --- end doc: service ---

# ---------------------------------------------------------------------------
# TAP

S_COUNT = 0
S_FAILED = 0


def tap_ok(cond, name):
    global S_COUNT, S_FAILED
    S_COUNT += 1
    if not cond:
        S_FAILED += 1
    print(f"{'' if cond else 'not '}ok {S_COUNT} - {name}", flush=True)
    return cond


def tap_diag(text):
    for line in str(text).splitlines() or [""]:
        print(f"# {line}", flush=True)


# ---------------------------------------------------------------------------
# Helpers

OK, INVALID_ARGUMENT, DEADLINE_EXCEEDED, NOT_FOUND = 0, 3, 4, 5
FAILED_PRECONDITION, UNIMPLEMENTED = 9, 12

TOP_BUILDDIR = os.environ.get("top_builddir") or os.path.join(os.path.dirname(
    os.path.abspath(__file__)), "..")
TOP_SRCDIR = os.environ.get("top_srcdir") or os.path.join(os.path.dirname(
    os.path.abspath(__file__)), "..")

# The worked example of docs/protocol.md: the request's one frame (header,
# then body), the reply's, and the error reply whose bytes lib/shoal_wire.c's
# selftest asserts
EXAMPLE_HEADER = "98 a5 73 68 6f 61 6c 01 a3 52 45 51 01 a4 65 63 68 6f a4 65 63 68 6f cd 03 e8 80"
EXAMPLE_BODY = "81 a4 74 65 78 74 a2 68 69"
EXAMPLE_REQUEST = EXAMPLE_HEADER + " " + EXAMPLE_BODY
EXAMPLE_REPLY = "96 a5 73 68 6f 61 6c 01 a3 52 45 50 01 00 a0 " + EXAMPLE_BODY
EXAMPLE_ERROR = "96 a5 73 68 6f 61 6c 01 a3 52 45 50 07 05 a2 6e 6f"


def read_line(stream, deadline):
    """One line from a child's stdout pipe, waiting at most until DEADLINE
    (time.monotonic); None on timeout or end of file."""
    fd = stream.fileno()
    data = b""
    while not data.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            return None
        chunk = os.read(fd, 1)          # one byte: never read past the line
        if not chunk:
            return None
        data += chunk
    return data.decode().strip()


def raw_call(socket, frames, timeout_ms=2000):
    """Sends FRAMES as one message on a DEALER. Returns the reply as (header
    decoded, the body's bytes, the reply's number of frames), or None when
    nothing came within the time."""
    socket.send_multipart(frames)
    if not socket.poll(timeout_ms):
        return None
    reply = socket.recv_multipart()
    header, rest = split(reply[0])
    return header, rest, len(reply)


def request(call_id, service="echo", method="echo", version=1):
    """The bytes of a request header, to be followed by a body."""
    return msgpack.packb(["shoal", version, "REQ", call_id, service, method, 1000, {}])


def stop_process(process):
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def doc_blocks(text, marker):
    """The code between '# --- doc: MARKER ---' and its end marker."""
    match = re.search(rf"# --- doc: {marker} ---\n(.*?)# --- end doc: {marker} ---",
                      text, re.S)
    return match.group(1) if match else None


# ---------------------------------------------------------------------------
# Cases

def check_doc():
    """The doc shows the same code that this file runs, and its example bytes."""
    with open(os.path.abspath(__file__)) as f:
        own = f.read()
    path = os.path.join(TOP_SRCDIR, "docs", "protocol.md")
    try:
        with open(path) as f:
            doc = f.read()
    except OSError as error:
        tap_ok(False, f"docs/protocol.md is readable ({error})")
        return
    for marker in ("client", "service"):
        mine = doc_blocks(own, marker)
        theirs = doc_blocks(doc, marker)
        tap_ok(mine is not None and mine == theirs,
               f"docs/protocol.md shows the tested {marker} code unchanged")
    header = ["shoal", 1, "REQ", 1, "echo", "echo", 1000, {}]
    reply = ["shoal", 1, "REP", 1, 0, ""]
    body = {"text": "hi"}
    tap_ok((msgpack.packb(header) + msgpack.packb(body)).hex(" ") == EXAMPLE_REQUEST
           and (msgpack.packb(reply) + msgpack.packb(body)).hex(" ") == EXAMPLE_REPLY
           and msgpack.packb(["shoal", 1, "REP", 7, 5, "no"]).hex(" ") == EXAMPLE_ERROR
           and EXAMPLE_REQUEST in doc and EXAMPLE_REPLY in doc and EXAMPLE_ERROR in doc,
           "the worked example's bytes are msgpack's and are in the doc")
    tap_ok(split(bytes.fromhex(EXAMPLE_REQUEST)) == (header, bytes.fromhex(EXAMPLE_BODY))
           and split(bytes.fromhex(EXAMPLE_ERROR)) == (["shoal", 1, "REP", 7, 5, "no"], b""),
           "split() finds the header and the body's bytes in one frame")


def as_client(endpoint, context):
    client = Client(endpoint, context)
    raw = context.socket(zmq.DEALER)
    raw.setsockopt(zmq.LINGER, 0)
    raw.connect(endpoint)
    try:
        body = {"text": "hi", "n": [1, -2, 3.5], "bin": b"\x00\xff", "none": None}
        status, message, reply = client.call("echo", "echo", body, 2000)
        tap_ok(status == OK and message == "" and reply == body,
               f"echo: a body comes back unchanged (status {status})")

        status, message, reply = client.call("echo", "echo", None, 2000,
                                             {"trace": "t-1", "x": "y"})
        tap_ok(status == OK and reply is None, "echo: nil body and metadata are accepted")

        status, message, reply = client.call("echo", "sleep", {"ms": 20}, 2000)
        tap_ok(status == OK and reply == {"slept": 20}, f"sleep: {reply}")

        status, message, reply = client.call("echo", "fail",
                                             {"code": "NOT_FOUND", "message": "gone"}, 2000)
        tap_ok(status == NOT_FOUND and message == "gone" and reply is None,
               f"fail: NOT_FOUND with its message, nil body ({status} {message!r})")

        status, message, reply = client.call("echo", "nope", None, 2000)
        tap_ok(status == UNIMPLEMENTED and "nope" in message,
               f"an unknown method is UNIMPLEMENTED ({status} {message!r})")

        status, message, reply = client.call("other", "echo", None, 2000)
        tap_ok(status == NOT_FOUND and "other" in message,
               f"another service's name is NOT_FOUND ({status} {message!r})")

        status, message, reply = client.call("echo", "$ping", None, 2000)
        tap_ok(status == OK and isinstance(reply, dict) and reply.get("service") == "echo"
               and isinstance(reply.get("instance"), str),
               f"$ping names the service and instance ({reply})")

        status, message, reply = client.call("echo", "$stats", None, 2000)
        counters = ("calls", "errors", "malformed", "dropped", "waiting_max")
        tap_ok(status == OK and isinstance(reply, dict)
               and all(isinstance(reply.get(name), int) for name in counters)
               and isinstance(reply.get("errors_by_code"), dict)
               and isinstance(reply.get("methods"), dict),
               f"$stats has the documented shape ({reply})")

        status, message, reply = client.call("echo", "$describe", None, 2000)
        names = {m.get("name"): m.get("idempotent") for m in reply.get("methods", [])} \
            if isinstance(reply, dict) else {}
        tap_ok(status == OK and names.get("echo") is True and names.get("fail") is False
               and "$stats" in names,
               f"$describe lists the methods and which are idempotent ({names})")

        # The worked example, byte for byte, and the reply it shows
        raw.send(bytes.fromhex(EXAMPLE_REQUEST))
        frames = raw.recv_multipart() if raw.poll(2000) else None
        tap_ok(frames == [bytes.fromhex(EXAMPLE_REPLY)],
               "the worked example's request gets the worked example's reply, byte for byte "
               f"({frames and frames[0].hex(' ')})")

        # A header with nothing after it: a nil body
        reply = raw_call(raw, [request(70)])
        tap_ok(reply is not None and reply[0] == ["shoal", 1, "REP", 70, OK, ""]
               and msgpack.unpackb(reply[1]) is None and reply[2] == 1,
               f"a header alone is a request with a nil body ({reply})")

        # Another protocol version: FAILED_PRECONDITION, with the id
        reply = raw_call(raw, [request(77, version=2)])
        tap_ok(reply is not None and reply[0][:5] == ["shoal", 1, "REP", 77, FAILED_PRECONDITION]
               and reply[1] == b"" and reply[2] == 1,
               f"a version 2 header gets FAILED_PRECONDITION with its id ({reply})")

        reply = raw_call(raw, [b"hello"])
        tap_ok(reply is not None and reply[0][3:5] == [0, INVALID_ARGUMENT] and reply[2] == 1,
               f"a stray frame gets INVALID_ARGUMENT with id 0 ({reply})")

        reply = raw_call(raw, [request(78) + b"\x92\x01"])
        tap_ok(reply is not None and reply[0][3:5] == [78, INVALID_ARGUMENT]
               and "body" in reply[0][5],
               f"a truncated body gets INVALID_ARGUMENT ({reply})")

        reply = raw_call(raw, [request(79) + msgpack.packb("one") + msgpack.packb("two")])
        tap_ok(reply is not None and reply[0][3:5] == [79, INVALID_ARGUMENT]
               and "trailing" in reply[0][5],
               f"two values after the header get INVALID_ARGUMENT ({reply})")

        # The old shape, [header, body] in two frames: refused, id 0
        reply = raw_call(raw, [request(80), msgpack.packb({"text": "hi"})])
        tap_ok(reply is not None and reply[0][3:5] == [0, INVALID_ARGUMENT]
               and "got 2" in reply[0][5] and reply[2] == 1,
               f"a message of 2 frames gets INVALID_ARGUMENT with id 0 ({reply})")

        # ... unless its header is another version's: that comes first
        reply = raw_call(raw, [request(81, version=2), b"\xc0"])
        tap_ok(reply is not None and reply[0][3:5] == [81, FAILED_PRECONDITION],
               f"2 frames starting with a version 2 header get FAILED_PRECONDITION ({reply})")

        # A deadline: the call ends on time, and the late reply is dropped
        start = time.monotonic()
        status, message, reply = client.call("echo", "sleep", {"ms": 300}, 100)
        elapsed = time.monotonic() - start
        tap_ok(status == DEADLINE_EXCEEDED and elapsed < 0.3,
               f"a call past its deadline ends DEADLINE_EXCEEDED in {elapsed * 1000:.0f} ms")
        status, message, reply = client.call("echo", "echo", "after", 3000)
        tap_ok(status == OK and reply == "after",
               "the next call gets its own reply, not the late one")
    finally:
        raw.close()
        client.socket.close()


def as_service(context):
    router = context.socket(zmq.ROUTER)
    router.setsockopt(zmq.LINGER, 0)
    router.bind("tcp://127.0.0.1:*")
    endpoint = router.getsockopt(zmq.LAST_ENDPOINT).decode()

    def fail(body):
        raise ShoalError(NOT_FOUND, "no such text")

    methods = {"upper": lambda body: {"text": body["text"].upper()}, "fail": fail,
               "unpackable": lambda body: {"a set": {1, 2}}}
    stop = threading.Event()
    thread = threading.Thread(target=serve, args=(router, "pyecho", methods, stop))
    thread.start()
    shoal = os.path.join(TOP_BUILDDIR, "tools", "shoal")

    def run(*args):
        return subprocess.run([shoal, "call", "--endpoint", endpoint, "--timeout", "3000",
                               *args], capture_output=True, text=True, timeout=30)

    try:
        result = run("pyecho", "upper", '{"text":"hi"}')
        try:
            reply = json.loads(result.stdout)
        except ValueError:
            reply = None
        tap_ok(result.returncode == 0 and reply == {"text": "HI"},
               f"shoal call to a Python service: exit {result.returncode}, "
               f"stdout {result.stdout.strip()!r}")
        if result.stderr:
            tap_diag(result.stderr)

        result = run("pyecho", "fail", "{}")
        tap_ok(result.returncode == 1 and result.stderr.startswith("error: NOT_FOUND: no such text")
               and result.stdout == "",
               f"an error from a Python service: exit {result.returncode}, "
               f"stderr {result.stderr.strip()!r}")

        result = run("pyecho", "nope")
        tap_ok(result.returncode == 1 and result.stderr.startswith("error: UNIMPLEMENTED: "),
               f"an unknown method of a Python service: {result.stderr.strip()!r}")

        result = run("pyecho", "upper", '{"txt":"hi"}')
        tap_ok(result.returncode == 1 and result.stderr.startswith("error: INTERNAL: "),
               f"a Python method's bug is INTERNAL: {result.stderr.strip()!r}")

        result = run("pyecho", "unpackable")
        tap_ok(result.returncode == 1 and result.stderr.startswith("error: INTERNAL: "),
               f"a result msgpack cannot encode is INTERNAL: {result.stderr.strip()!r}")

        client = Client(endpoint, context)
        try:
            status, message, reply = client.call("pyecho", "upper", {"text": "py"}, 3000)
            tap_ok(status == OK and reply == {"text": "PY"},
                   "the Python client calls the Python service")
            status, message, reply = client.call("other", "upper", None, 3000)
            tap_ok(status == NOT_FOUND, "the Python service answers NOT_FOUND for another name")
        finally:
            client.socket.close()

        raw = context.socket(zmq.DEALER)
        raw.setsockopt(zmq.LINGER, 0)
        raw.connect(endpoint)
        try:
            reply = raw_call(raw, [request(5, "pyecho", "upper"), msgpack.packb({"text": "x"})])
            tap_ok(reply is not None and reply[0][3:5] == [0, INVALID_ARGUMENT]
                   and reply[2] == 1,
                   f"the Python service refuses a message of 2 frames ({reply})")
            reply = raw_call(raw, [request(6, "pyecho", "upper") + b"\xc1"])
            tap_ok(reply is not None and reply[0][3:5] == [6, INVALID_ARGUMENT]
                   and reply[1] == b"",
                   f"the Python service refuses a body that is not msgpack ({reply})")
            reply = raw_call(raw, [request(7, "pyecho", "upper", version=2)])
            tap_ok(reply is not None and reply[0][3:5] == [7, FAILED_PRECONDITION],
                   f"the Python service refuses version 2 with its id ({reply})")
        finally:
            raw.close()
    finally:
        stop.set()
        thread.join(timeout=10)
        tap_ok(not thread.is_alive(), "the Python service stops when told")
        router.close()


def main():
    runtime = tempfile.mkdtemp(prefix="shoal-protocol-")
    os.environ["SHOAL_RUNTIME_DIR"] = runtime
    os.environ["SHOAL_CLUSTER"] = f"protocol-{os.getpid()}"
    for name in ("SHOAL_SEEDS", "SHOAL_INTERFACE", "SHOAL_HOST"):
        os.environ.pop(name, None)
    context = zmq.Context()
    echo = None
    try:
        check_doc()
        binary = os.path.join(TOP_BUILDDIR, "services", "echo", "shoal-echo")
        echo = subprocess.Popen([binary, "--bind", "tcp://127.0.0.1:*"],
                                stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
        endpoint = read_line(echo.stdout, time.monotonic() + 10)
        if tap_ok(endpoint is not None and endpoint.startswith("tcp://127.0.0.1:"),
                  f"shoal-echo prints its endpoint ({endpoint})"):
            as_client(endpoint, context)
        stop_process(echo)
        tap_ok(echo.returncode == 0, f"shoal-echo stops cleanly on SIGTERM ({echo.returncode})")
        as_service(context)
    except Exception as error:          # a bug in this test: report, do not hang
        tap_ok(False, f"unexpected {type(error).__name__}: {error}")
    finally:
        if echo is not None:
            stop_process(echo)
        context.destroy(linger=0)
        shutil.rmtree(runtime, ignore_errors=True)
    print(f"1..{S_COUNT}", flush=True)
    if S_FAILED:
        tap_diag(f"{S_FAILED} of {S_COUNT} cases failed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
