"""The exporter's HTTP server: landing page, metrics, health and readiness.

One asyncio event loop (standard library) on one thread serves every
connection; a connection costs a few KiB and a file descriptor, never a
thread, so idle keep-alive connections and clients that trickle bytes are
bounded by deadlines and by eviction instead of filling a thread pool.
See docs/DESIGN.md ("The HTTP server") for why, and for the limits:

- deadlines: first byte (and TLS handshake) after accept, whole request
  head after its first byte, keep-alive idle time, a response handed to
  the kernel, and the connection's whole life; past one, the connection is
  reset (SO_LINGER 0), so nothing stays queued for a client that is gone;
- a fixed send buffer (SO_SNDBUF) per connection, and no next pipelined
  request read before the previous answer is in the kernel;
- at most `max_connections` open: when full, the oldest connection with no
  request in progress is closed (those that never sent a whole head
  first); when every connection is answering, a new one gets 503 with
  Retry-After (a small overflow pool) or, beyond that, a reset;
- at most `per_client` connections of one client address being answered
  (503 beyond);
- refusals counted in vgdrift_http_refused_total and logged at most once
  per `log_every` seconds, with the counts;
- strict request heads: GET/HEAD only, bounded sizes, one Content-Length
  or none, no Transfer-Encoding, no folded or malformed header lines (400);
- TLS (certificate files re-read when they change) and basic auth, whose
  bcrypt checks run in a small bounded thread pool.

A scrape only renders what the last scan left in memory.
"""

import asyncio
import email.utils
import html
import logging
import re
import socket
import ssl
import struct
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple, Union
from urllib.parse import urlsplit

from prometheus_client.core import CounterMetricFamily, Metric

from .. import __version__
from .listen import parse_listen_address
from .metrics import BY_NAME, HTTP_REFUSAL_REASONS

__all__ = ["ExporterServer", "Limits", "Refusals", "RefusalsCollector", "Settings", "make_server",
           "parse_listen_address"]

log = logging.getLogger("vgdrift.server")

MAX_REQUEST_LINE = 8 * 1024
MAX_HEADER_BYTES = 16 * 1024
MAX_HEADERS = 64
SERVER = "vgdrift/" + __version__          # no Python version advertised

_TOKEN = re.compile(rb"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_BAD_VALUE = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
_TARGET = re.compile(rb"^[\x21-\x7e]+$")
# Headers that must not repeat: two of them are ambiguous (which one counts?).
_SINGLE = {b"content-length", b"host", b"authorization", b"transfer-encoding"}


@dataclass(frozen=True)
class Limits:
    max_connections: int = 128     # open connections that get served
    overflow: int = 16             # more, that only get a 503 (then a reset beyond)
    per_client: int = 16           # one client address's connections being answered
    first_byte: float = 5.0        # accept (and TLS handshake) -> first byte of the first request
    head: float = 10.0             # first byte -> end of the request head
    idle: float = 60.0             # keep-alive: end of a response -> next request's first byte
    write: float = 10.0            # a response -> all of it in the kernel's send buffer
    connection: float = 300.0      # a connection's whole life
    send_buffer: int = 64 * 1024   # SO_SNDBUF of each connection
    linger: float = 1.0            # reading (and dropping) after an error answer, before closing
    auth_workers: int = 1          # bcrypt threads: one core at most, never the scans' share
    auth_queue: int = 8            # bcrypt checks waiting; more get a 503
    log_every: float = 60.0        # refusals are logged at most this often
    retry_after: int = 5           # seconds, in 503 answers


@dataclass(frozen=True)
class Settings:
    """What a SIGHUP may change without rebinding; swapped as a whole."""
    telemetry_path: str
    web: Any                    # webconfig.WebConfig: TLS, auth, headers


class Refusals:
    """Counts of refused or cut-off connections (the metric), and the log
    line that reports them at most once per interval."""

    def __init__(self, log_every: float = 60.0) -> None:
        self.log_every = log_every
        self._lock = threading.Lock()
        self._total = {r: 0 for r in HTTP_REFUSAL_REASONS}
        self._pending = {r: 0 for r in HTTP_REFUSAL_REASONS}
        self._last_log = -float("inf")

    def count(self, reason: str) -> None:
        with self._lock:
            self._total[reason] += 1
            self._pending[reason] += 1
        self.flush()

    def flush(self, force: bool = False) -> None:
        now = time.monotonic()
        with self._lock:
            if not any(self._pending.values()) or (now - self._last_log < self.log_every and not force):
                return
            pending = {r: n for r, n in self._pending.items() if n}
            self._pending = {r: 0 for r in HTTP_REFUSAL_REASONS}
            since, self._last_log = self._last_log, now
        extra: Dict[str, Any] = dict(pending, total=sum(pending.values()))
        if since != -float("inf"):
            extra["seconds"] = round(now - since, 1)     # the counts are since the previous line
        log.warning("HTTP connections refused or cut off", extra=extra)

    def totals(self) -> Dict[str, int]:
        with self._lock:
            return dict(self._total)


class RefusalsCollector:
    """vgdrift_http_refused_total, for the live registry."""

    def __init__(self, refusals: Refusals) -> None:
        self.refusals = refusals

    def collect(self) -> Iterator[Metric]:
        desc = BY_NAME["vgdrift_http_refused_total"]
        family = CounterMetricFamily(desc.name, desc.help, labels=list(desc.labels))
        for reason, n in self.refusals.totals().items():
            family.add_metric([reason], n)
        yield family


# --- connections ------------------------------------------------------------

NEW, HEAD, BUSY, IDLE, CLOSING = "new", "head", "busy", "idle", "closing"


class _Reject(Exception):
    def __init__(self, status: HTTPStatus) -> None:
        super().__init__(status)
        self.status = status


@dataclass
class Request:
    method: str
    target: str
    version: str
    headers: Dict[bytes, List[bytes]]
    body_length: int

    def header(self, name: bytes, default: str = "") -> str:
        values = self.headers.get(name)
        return values[0].decode("latin-1") if values else default


def parse_head(head: bytes) -> Request:
    """A request head (up to and without the empty line) -> Request.
    Raises _Reject with the status for anything malformed or ambiguous."""
    lines = head.split(b"\n")
    lines = [line[:-1] if line.endswith(b"\r") else line for line in lines]
    if any(b"\r" in line for line in lines):
        raise _Reject(HTTPStatus.BAD_REQUEST)          # a bare CR: some parsers split on it
    parts = lines[0].split(b" ")
    if len(parts) != 3 or not _TOKEN.match(parts[0]) or not _TARGET.match(parts[1]):
        raise _Reject(HTTPStatus.BAD_REQUEST)
    method, target, version = parts
    if not re.match(rb"^HTTP/\d\.\d$", version):
        raise _Reject(HTTPStatus.BAD_REQUEST)
    if version not in (b"HTTP/1.0", b"HTTP/1.1"):
        raise _Reject(HTTPStatus.HTTP_VERSION_NOT_SUPPORTED)
    if len(lines) - 1 > MAX_HEADERS:
        raise _Reject(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE)
    headers: Dict[bytes, List[bytes]] = {}
    for line in lines[1:]:
        name, colon, value = line.partition(b":")
        # No obs-fold (a line starting with a space continues the previous
        # one for some parsers only), no space before the colon.
        if not colon or not _TOKEN.match(name):
            raise _Reject(HTTPStatus.BAD_REQUEST)
        value = value.strip(b" \t")
        if _BAD_VALUE.search(value):
            raise _Reject(HTTPStatus.BAD_REQUEST)
        key = name.lower()
        if key in _SINGLE and key in headers:
            raise _Reject(HTTPStatus.BAD_REQUEST)
        headers.setdefault(key, []).append(value)
    if b"transfer-encoding" in headers:
        raise _Reject(HTTPStatus.BAD_REQUEST)          # no request bodies here: ambiguous at best
    length = 0
    if b"content-length" in headers:
        text = headers[b"content-length"][0]
        if not text.isdigit() or len(text) > 18:
            raise _Reject(HTTPStatus.BAD_REQUEST)
        length = int(text)
    return Request(method.decode("ascii"), target.decode("ascii"), version.decode("ascii"),
                   headers, length)


def _head_end(buf: bytearray) -> Tuple[int, int]:
    """(end of the head, start of what follows) or (-1, -1)."""
    crlf = buf.find(b"\r\n\r\n")
    lf = buf.find(b"\n\n")
    if crlf >= 0 and (lf < 0 or crlf < lf):
        return crlf, crlf + 4
    if lf >= 0:
        return lf, lf + 2
    return -1, -1


class Connection(asyncio.Protocol):
    """One client connection: a state, one deadline, the bytes received."""

    def __init__(self, server: "ExporterServer") -> None:
        self.server = server
        self.limits = server.limits
        self.loop = server.loop
        self.transport: Any = None
        self.sock: Any = None
        self.peer = ""
        self.state = NEW
        self.accepted = time.monotonic()
        self.since = self.accepted          # when the current state began
        self.buf = bytearray()
        self.overflow = False               # beyond capacity: a 503 whatever the request
        self.eof = False
        self.closed = False
        self.reading = True
        self.draining: Optional[asyncio.Future] = None
        self.tls = False
        self.timer: Optional[asyncio.TimerHandle] = None
        self.deadline_reason = "deadline"

    # asyncio callbacks

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.sock = transport.get_extra_info("socket")
        peer = transport.get_extra_info("peername")
        self.peer = str(peer[0]) if peer else "?"
        try:
            # Headers and body go out in one write, but a kept-alive scrape
            # must not wait for Nagle either.
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            # A fixed send buffer: the kernel cannot queue megabytes for a
            # slow reader (autotuning stops once this is set).
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self.limits.send_buffer)
        except OSError:
            pass
        transport.set_write_buffer_limits(high=0, low=0)   # pause_writing whenever anything waits
        if not self.server.admit(self):
            return
        self.set_deadline(self.limits.first_byte)
        if self.server.tls_by_asyncio:
            self.tls = True                 # the handshake is done (ExporterServer._main)
            return
        ctx = self.server.settings.web.current_ssl_context()
        if ctx is not None:
            # No byte may reach this protocol before start_tls takes the
            # transport over (it resumes reading itself).
            transport.pause_reading()
            self.loop.create_task(self._handshake(ctx))

    async def _handshake(self, ctx: ssl.SSLContext) -> None:
        raw = self.transport
        try:
            # In the loop, bounded by the first-byte deadline (and asyncio's
            # own handshake timeout): a silent client holds no thread.
            tls = await self.loop.start_tls(raw, self, ctx, server_side=True,
                                            ssl_handshake_timeout=self.limits.first_byte)
        except (OSError, ssl.SSLError, ConnectionError, asyncio.TimeoutError, RuntimeError) as e:
            log.debug("TLS handshake failed", extra={"client": self.peer, "err": str(e) or type(e).__name__})
            self.reset(None)
            return
        if self.closed or tls is None:
            return
        self.transport = tls
        self.tls = True
        tls.set_write_buffer_limits(high=0, low=0)
        if self.buf:
            self._advance()

    def data_received(self, data: bytes) -> None:
        if self.closed:
            return
        if self.state == CLOSING:
            return                          # lingering: read and drop
        self.buf += data
        self._advance()

    def eof_received(self) -> Optional[bool]:
        self.eof = True
        if self.state == CLOSING or (self.state in (NEW, IDLE, HEAD) and not self.buf):
            self.close()
            return None
        if self.state == HEAD:
            self.reset(None)                # gone inside a request head
            return None
        # Keep the transport: an answer may still be due (TLS cannot
        # half-close; asyncio warns when asked to).
        return None if self.tls else True

    def pause_writing(self) -> None:
        if self.draining is None:
            self.draining = self.loop.create_future()

    def resume_writing(self) -> None:
        if self.draining is not None and not self.draining.done():
            self.draining.set_result(None)
        self.draining = None

    async def _drained(self) -> None:
        """Until the transport has taken all we wrote.  resume_writing says
        so; a TLS transport, paused at every byte, now and then does not
        (the client had the whole answer, and the connection stayed busy,
        its close unread, until the write deadline), so the buffer is
        looked at too."""
        while self.draining is not None and not self.draining.done():
            try:
                empty = self.transport.get_write_buffer_size() == 0
            except (AttributeError, RuntimeError):
                empty = False
            if empty:
                self.resume_writing()
                return
            await asyncio.wait({self.draining}, timeout=0.05)

    def connection_lost(self, exc: Optional[BaseException]) -> None:
        self.closed = True
        if self.timer is not None:
            self.timer.cancel()
        if self.draining is not None and not self.draining.done():
            self.draining.set_result(None)
        self.server.forget(self)

    # state and deadlines

    def set_state(self, state: str) -> None:
        self.state = state
        self.since = time.monotonic()

    def set_deadline(self, seconds: float, reason: str = "deadline") -> None:
        if self.timer is not None:
            self.timer.cancel()
        end_of_life = self.accepted + self.limits.connection
        when = min(time.monotonic() + seconds, end_of_life)
        self.deadline_reason = reason
        self.timer = self.loop.call_at(self._loop_time(when), self._expired)

    def _loop_time(self, monotonic: float) -> float:
        return self.loop.time() + (monotonic - time.monotonic())

    def _expired(self) -> None:
        self.timer = None
        if self.closed:
            return
        if self.state == IDLE or self.state == CLOSING:
            self.close()                    # a kept-alive connection's time is up: nothing lost
            return
        log.debug("connection deadline passed", extra={"client": self.peer, "state": self.state})
        self.reset(self.deadline_reason)

    def close(self) -> None:
        if not self.closed and self.transport is not None:
            self.closed = True
            self.transport.close()

    def reset(self, reason: Optional[str]) -> None:
        """Close with a RST: whatever the kernel still holds for the client
        is dropped, not sent at the client's pace."""
        if reason is not None:
            self.server.refusals.count(reason)
        if self.closed or self.transport is None:
            return
        self.closed = True
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except (OSError, AttributeError):
            pass
        self.transport.abort()

    # requests

    def _advance(self) -> None:
        """Parse the next request in the buffer, if the previous is done."""
        if self.closed or self.state in (BUSY, CLOSING):
            return
        while self.buf.startswith(b"\r\n") or self.buf.startswith(b"\n"):
            del self.buf[:2 if self.buf.startswith(b"\r\n") else 1]   # RFC 9112 2.2: ignore empty lines
        if not self.buf:
            return
        if self.state in (NEW, IDLE):
            self.set_state(HEAD)
            self.set_deadline(self.limits.head)
        end, rest = _head_end(self.buf)
        if end < 0:
            line_end = self.buf.find(b"\n")
            if (line_end < 0 and len(self.buf) > MAX_REQUEST_LINE) or line_end > MAX_REQUEST_LINE:
                self._refuse(HTTPStatus.REQUEST_URI_TOO_LONG)
            elif len(self.buf) > MAX_REQUEST_LINE + MAX_HEADER_BYTES:
                self._refuse(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE)
            return
        head = bytes(self.buf[:end])
        del self.buf[:rest]
        first_line = head.split(b"\n", 1)[0]
        if len(first_line) > MAX_REQUEST_LINE:
            self._refuse(HTTPStatus.REQUEST_URI_TOO_LONG)
            return
        if len(head) - len(first_line) > MAX_HEADER_BYTES:
            self._refuse(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE)
            return
        try:
            request = parse_head(head)
        except _Reject as e:
            self._refuse(e.status)
            return
        self.set_state(BUSY)
        self.set_deadline(self.limits.write)
        if self.reading:
            # One request at a time: the next one (pipelined) waits in the
            # kernel until this answer is out.
            self.transport.pause_reading()
            self.reading = False
        if self.overflow:
            self.server.refusals.count("capacity")
            self._unavailable("over capacity")
            return
        if self.server.busy_from(self.peer) > self.limits.per_client:
            self.server.refusals.count("client_limit")
            self._unavailable("too many requests from this client")
            return
        self.loop.create_task(self._answer(request))

    def _refuse(self, status: HTTPStatus) -> None:
        self.server.refusals.count("bad_request")
        self.set_state(BUSY)
        self.set_deadline(self.limits.write)
        self._send_error_and_close(status, "%d %s\n" % (status.value, status.phrase))

    def _unavailable(self, why: str) -> None:
        self._send_error_and_close(HTTPStatus.SERVICE_UNAVAILABLE, "Service unavailable: %s\n" % why,
                                   [("Retry-After", str(self.limits.retry_after))])

    def _send_error_and_close(self, status: HTTPStatus, text: str, extra: Any = ()) -> None:
        self.transport.write(self.response(status, text.encode(), "text/plain; charset=utf-8",
                                           extra, close=True))
        self._linger()

    def _linger(self) -> None:
        """Closing with unread input makes the kernel send a RST, and the
        client may lose our answer: stop sending, drop what still comes for
        a moment, then close."""
        self.set_state(CLOSING)
        self.buf = bytearray()
        if not self.reading:
            self.transport.resume_reading()
            self.reading = True
        try:
            if self.transport.can_write_eof():
                self.transport.write_eof()
        except (OSError, RuntimeError):
            pass
        self.set_deadline(self.limits.linger)

    async def _answer(self, request: Request) -> None:
        try:
            status, body, ctype, extra, close = await self._dispatch(request)
        except Exception:
            log.error("answering a request failed", exc_info=True)
            status, body, ctype, extra, close = (HTTPStatus.INTERNAL_SERVER_ERROR, b"Internal error\n",
                                                 "text/plain; charset=utf-8", [], True)
        if self.closed:
            return
        close = close or request.version == "HTTP/1.0" or request.body_length > 0 \
            or request.header(b"connection").lower() == "close"
        payload = self.response(status, body, ctype, extra, close, head_only=request.method == "HEAD")
        self.transport.write(payload)
        if self.draining is not None:
            await self._drained()           # into the kernel, within the write deadline
        if self.closed:
            return
        if close and request.body_length > 0:
            self._linger()                  # the unread body must not turn our answer into a RST
            return
        if close:
            self.close()
            return
        self.set_state(IDLE)
        self.set_deadline(self.limits.idle)
        if not self.reading:
            self.transport.resume_reading()
            self.reading = True
        if self.buf:
            self._advance()
        if self.eof and self.state != BUSY and not self.closed:
            self.close()                    # the client sent all it will: nothing more to answer

    async def _dispatch(self, request: Request) -> Tuple[HTTPStatus, bytes, str, list, bool]:
        settings = self.server.settings
        text = "text/plain; charset=utf-8"
        auth = settings.web.auth
        if auth is not None:
            header = request.header(b"authorization") or None
            ok = auth.cached(header)
            if ok is None:
                ok = await self.server.verify(auth, header)
            if ok is None:
                self.server.refusals.count("capacity")
                return (HTTPStatus.SERVICE_UNAVAILABLE, b"Service unavailable: authentication busy\n", text,
                        [("Retry-After", str(self.limits.retry_after))], True)
            if not ok:
                return (HTTPStatus.UNAUTHORIZED, b"Unauthorized\n", text,
                        [("WWW-Authenticate", 'Basic realm="vgdrift"')], False)
        if request.method not in ("GET", "HEAD"):
            return (HTTPStatus.METHOD_NOT_ALLOWED, b"Method not allowed\n", text,
                    [("Allow", "GET, HEAD")], True)
        path = urlsplit(request.target).path
        if path == settings.telemetry_path:
            gzipped = _accepts_gzip(request.header(b"accept-encoding"))
            body, ctype = self.server.exposition.render(request.header(b"accept"), gzipped)
            return HTTPStatus.OK, body, ctype, [("Content-Encoding", "gzip")] if gzipped else [], False
        if path == "/":
            return (HTTPStatus.OK, _landing_page(settings.telemetry_path), "text/html; charset=utf-8",
                    [], False)
        if path == "/-/healthy":
            return HTTPStatus.OK, b"Healthy\n", text, [], False
        if path == "/-/ready":
            why = self.server.not_ready()
            if not why:
                return HTTPStatus.OK, b"Ready\n", text, [], False
            return HTTPStatus.SERVICE_UNAVAILABLE, ("Not ready: %s\n" % why).encode(), text, [], False
        return HTTPStatus.NOT_FOUND, b"Not found\n", text, [], False

    def response(self, status: HTTPStatus, body: bytes, ctype: str, extra: Any = (),
                 close: bool = False, head_only: bool = False) -> bytes:
        lines = ["HTTP/1.1 %d %s" % (status.value, status.phrase), "Server: " + SERVER,
                 "Date: " + email.utils.formatdate(usegmt=True)]
        for name, value in list(self.server.settings.web.headers) + list(extra):
            lines.append("%s: %s" % (name, value))
        lines.append("Content-Type: " + ctype)
        lines.append("Content-Length: %d" % len(body))
        if close:
            lines.append("Connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        return head if head_only else head + body


# --- the server -------------------------------------------------------------

Ready = Callable[[], Union[bool, str]]


class ExporterServer:
    """Bound at construction (so that a busy port fails at startup);
    serve_forever() runs the event loop in the calling thread until
    shutdown() is called from another one."""

    # TLS by asyncio from the accept on, instead of start_tls after it: the
    # one way that works on Python 3.9 (_main says why); tests set it on
    # newer Pythons too, so that CI runs this path.
    ASYNCIO_TLS = sys.version_info < (3, 10)

    def __init__(self, address: Tuple[Any, ...], family: int, exposition: Any, ready: Ready,
                 settings: Settings, limits: Optional[Limits] = None,
                 refusals: Optional[Refusals] = None) -> None:
        self.exposition = exposition
        self.ready = ready
        self.settings = settings
        self.limits = limits or Limits()
        self.refusals = refusals or getattr(exposition, "refusals", None) or Refusals(self.limits.log_every)
        self.loop: Any = None
        self.conns: Dict[Connection, None] = {}       # in accept order
        self._auth_pool: Optional[ThreadPoolExecutor] = None
        self._auth_waiting = 0
        self._stop: Optional[asyncio.Event] = None
        self._stopping = threading.Event()
        self._done = threading.Event()
        self._running = False
        self.tls_by_asyncio = False     # set by _main where ASYNCIO_TLS
        self.socket = socket.socket(family, socket.SOCK_STREAM)
        try:
            self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6 and address[0] == "::":
                # ":port" means every address, IPv4 included, as with Go exporters.
                self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            self.socket.bind(address)
            self.socket.listen(128)
            self.socket.setblocking(False)
        except BaseException:
            self.socket.close()
            raise
        self.server_address = self.socket.getsockname()

    # admission

    def admit(self, conn: Connection) -> bool:
        """Make room for a new connection, or mark it for a 503."""
        served = [c for c in self.conns if not c.overflow and not c.closed]
        if len(served) >= self.limits.max_connections:
            victim = self._evictable(served)
            if victim is None:
                pass
            elif victim.state in (IDLE, CLOSING):
                self.refusals.count("evicted")
                victim.close()              # nothing in progress: a plain close loses nothing
            else:
                victim.reset("evicted")
            if victim is not None:
                pass
            elif sum(1 for c in self.conns if c.overflow and not c.closed) < self.limits.overflow:
                conn.overflow = True
            else:
                self.refusals.count("capacity")
                conn.reset(None)
                return False
        self.conns[conn] = None
        return True

    @staticmethod
    def _evictable(conns: List[Connection]) -> Optional[Connection]:
        # Never sent a whole head first (oldest accepted), then kept-alive
        # idle ones (idle longest); never one being answered.
        waiting = [c for c in conns if c.state in (NEW, HEAD) and not c.closed]
        if waiting:
            return min(waiting, key=lambda c: c.accepted)
        idle = [c for c in conns if c.state in (IDLE, CLOSING) and not c.closed]
        if idle:
            return min(idle, key=lambda c: c.since)
        return None

    def forget(self, conn: Connection) -> None:
        self.conns.pop(conn, None)

    def busy_from(self, peer: str) -> int:
        return sum(1 for c in self.conns if c.peer == peer and c.state == BUSY and not c.closed)

    def not_ready(self) -> str:
        state = self.ready()
        if state is True:
            return ""
        if state is False:
            return "no scan has finished yet"
        return str(state)

    async def verify(self, auth: Any, header: Optional[str]) -> Optional[bool]:
        """bcrypt in the bounded pool; None when too many are waiting."""
        if self._auth_waiting >= self.limits.auth_queue:
            return None
        if self._auth_pool is None:
            self._auth_pool = ThreadPoolExecutor(max_workers=self.limits.auth_workers,
                                                 thread_name_prefix="vgdrift-auth")
        self._auth_waiting += 1
        try:
            return bool(await self.loop.run_in_executor(self._auth_pool, auth.check, header))
        finally:
            self._auth_waiting -= 1

    # running

    def serve_forever(self, poll_interval: Optional[float] = None) -> None:
        """Serve until shutdown(); `poll_interval` is accepted for the old
        socketserver-style callers and ignored."""
        if self._stopping.is_set():
            self._done.set()
            return
        loop = asyncio.new_event_loop()
        # Transport errors of misbehaving clients (resets, TLS garbage) are
        # the clients' business: debug lines, not asyncio's error log.
        loop.set_exception_handler(_loop_exception)
        self.loop = loop
        self._running = True
        try:
            loop.run_until_complete(self._main())
        finally:
            try:
                loop.run_until_complete(loop.shutdown_asyncgens())
            finally:
                loop.close()
                if self._auth_pool is not None:
                    self._auth_pool.shutdown(wait=False)
                self._running = False
                self._done.set()

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        ctx = self.settings.web.current_ssl_context()
        if ctx is not None and self.ASYNCIO_TLS:
            # Python 3.9's transport starts reading only after
            # connection_made, so pausing it there does not stop the client's
            # first TLS bytes, and start_tls drops what arrives before it
            # has taken over: handshakes stall.  There, asyncio does the TLS
            # from the accept on, bounded by the first-byte deadline; a
            # connection is admitted (and counted) once its handshake is
            # done, and each handshake picks up a rotated certificate and
            # key through the SNI callback (called with or without SNI; the
            # client CA and verify mode stay those the server started with).
            self.tls_by_asyncio = True
            web = self.settings.web

            def rotated(ssl_object: Any, server_name: Optional[str], base: ssl.SSLContext) -> None:
                current = web.current_ssl_context()
                if current is not None and current is not base:
                    ssl_object.context = current
            ctx.sni_callback = rotated
            server = await self.loop.create_server(lambda: Connection(self), sock=self.socket, ssl=ctx,
                                                   ssl_handshake_timeout=self.limits.first_byte)
        else:
            server = await self.loop.create_server(lambda: Connection(self), sock=self.socket)
        flusher = self.loop.create_task(self._flush_refusals())
        if self._stopping.is_set():
            self._stop.set()
        try:
            await self._stop.wait()
        finally:
            flusher.cancel()
            server.close()
            for conn in list(self.conns):
                conn.reset(None)
            self.refusals.flush(force=True)
            await asyncio.sleep(0)

    async def _flush_refusals(self) -> None:
        while True:
            await asyncio.sleep(self.limits.log_every)
            self.refusals.flush()

    def shutdown(self) -> None:
        """Stop serve_forever (from another thread) and wait for it."""
        self._stopping.set()
        loop, stop = self.loop, self._stop
        if loop is not None and stop is not None and self._running:
            try:
                loop.call_soon_threadsafe(stop.set)
            except RuntimeError:
                pass                    # the loop is already closed
        if self._running or loop is not None:
            self._done.wait(10)

    def server_close(self) -> None:
        self.socket.close()


def make_server(listen_address: str, exposition: Any, ready: Ready,
                settings: Settings, **kwargs: Any) -> ExporterServer:
    """Bind (but do not serve yet).  Raises ValueError or OSError."""
    host, port = parse_listen_address(listen_address)
    if host == "":
        candidates = [(socket.AF_INET6, ("::", port)), (socket.AF_INET, ("0.0.0.0", port))]
        if not socket.has_ipv6:
            candidates = candidates[1:]
    else:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        candidates = [(family, (str(sockaddr[0]), int(sockaddr[1]))) for family, _, _, _, sockaddr in infos]
    error: Optional[OSError] = None
    for family, address in candidates:
        try:
            return ExporterServer(address, family, exposition, ready, settings, **kwargs)
        except OSError as e:
            error = error or e
    raise error or OSError("no address to listen on for %r" % listen_address)


def _loop_exception(loop: Any, context: Dict[str, Any]) -> None:
    exc = context.get("exception")
    log.debug("event loop: %s" % context.get("message", "error"),
              exc_info=(type(exc), exc, exc.__traceback__) if exc is not None else None)


def _accepts_gzip(accept_encoding: str) -> bool:
    return any(part.split(";")[0].strip().lower() == "gzip" for part in accept_encoding.split(","))


def _landing_page(telemetry_path: str) -> bytes:
    path = html.escape(telemetry_path, quote=True)
    return ("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>vgdrift exporter</title></head>\n"
            "<body><h1>vgdrift exporter</h1>\n"
            "<p>Is this node's cached LVM metadata still current with the shared disks?</p>\n"
            "<ul><li><a href=\"%s\">Metrics</a></li>\n"
            "<li><a href=\"/-/healthy\">Health</a></li><li><a href=\"/-/ready\">Readiness</a></li></ul>\n"
            "</body></html>\n" % path).encode("utf-8")
