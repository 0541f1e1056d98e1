"""The exporter's HTTP server: landing page, metrics, health and readiness.

stdlib http.server, hardened for a daemon that sits on a network: GET/HEAD
only, bounded request heads, a per-request deadline (so a slow client cannot
hold a thread by trickling bytes), a cap on concurrent connections, TLS
handshakes in the connection's own thread (never in the accept loop) and
basic auth on every path when configured.  A scrape only renders what the
last scan left in memory.
"""

import html
import io
import logging
import socket
import socketserver
import threading
import time
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any, Callable, List, Optional, Tuple
from urllib.parse import urlsplit

from .. import __version__
from .listen import parse_listen_address

log = logging.getLogger("vgdrift.server")

MAX_REQUEST_LINE = 8 * 1024
MAX_HEADER_BYTES = 16 * 1024
MAX_HEADERS = 64
MAX_CONNECTIONS = 32
IO_TIMEOUT = 10.0           # seconds for a whole request head, for a TLS handshake, for a write


@dataclass(frozen=True)
class Settings:
    """What a SIGHUP may change without rebinding; swapped as a whole."""
    telemetry_path: str
    web: Any                    # webconfig.WebConfig: ssl_context, auth, headers


class ExporterServer(HTTPServer):
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(self, address: Tuple[Any, ...], family: int, exposition: Any,
                 ready: Callable[[], bool], settings: Settings,
                 max_connections: int = MAX_CONNECTIONS, io_timeout: float = IO_TIMEOUT) -> None:
        self.address_family = family
        self.exposition = exposition
        self.ready = ready
        self.settings = settings
        self.io_timeout = io_timeout
        self._slots = threading.BoundedSemaphore(max_connections)
        super().__init__(address, Handler)

    def server_bind(self) -> None:
        if self.address_family == socket.AF_INET6 and self.server_address[0] == "::":
            # ":port" means every address, IPv4 included, as with Go exporters.
            self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        # HTTPServer.server_bind would do a reverse DNS lookup (getfqdn) here.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = str(self.server_address[0]), self.server_address[1]

    def process_request(self, request: Any, client_address: Any) -> None:
        # One thread per connection, but never more than max_connections:
        # beyond that, close at once rather than queue work we cannot do.
        if not self._slots.acquire(blocking=False):
            log.warning("too many connections, dropping one", extra={"client": _client(client_address)})
            self.shutdown_request(request)
            return
        thread = threading.Thread(target=self._connection_thread, args=(request, client_address),
                                  name="vgdrift-http", daemon=True)
        try:
            thread.start()
        except RuntimeError:
            self._slots.release()
            self.shutdown_request(request)

    def _connection_thread(self, request: socket.socket, client_address: Any) -> None:
        try:
            self.finish_request(request, client_address)
        except Exception:
            self.handle_error(request, client_address)
        finally:
            self.shutdown_request(request)
            self._slots.release()

    def finish_request(self, request: Any, client_address: Any) -> None:
        request.settimeout(self.io_timeout)
        try:
            # Headers and body go out in separate writes; with Nagle on, a
            # kept-alive scrape waits ~40 ms for the client's delayed ACK.
            request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
        ctx = self.settings.web.ssl_context
        if ctx is None:
            self.RequestHandlerClass(request, client_address, self)  # type: ignore[arg-type]
            return
        try:
            # The handshake happens here, in the connection's thread, bounded
            # by the socket timeout; wrap_socket detaches `request`.
            conn = ctx.wrap_socket(request, server_side=True)
        except (OSError, ValueError) as e:
            log.debug("TLS handshake failed", extra={"client": _client(client_address), "err": str(e)})
            return
        try:
            self.RequestHandlerClass(conn, client_address, self)  # type: ignore[arg-type]
        finally:
            conn.close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("connection error", exc_info=True, extra={"client": _client(client_address)})


def make_server(listen_address: str, exposition: Any, ready: Callable[[], bool],
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


class _DeadlineReader(io.RawIOBase):
    """Socket reads that fail once `deadline` (monotonic) has passed.

    A plain socket timeout restarts at every byte, so a client trickling one
    byte every few seconds would hold its thread forever.
    """

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self.deadline: Optional[float] = None

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self.deadline is not None:
            remaining = self.deadline - time.monotonic()
            if remaining <= 0:
                raise socket.timeout("request deadline passed")
            self._sock.settimeout(remaining)
        return self._sock.recv_into(buffer)


class _SocketWriter(io.BufferedIOBase):
    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self._sock.sendall(data)
        return len(data)


class Handler(BaseHTTPRequestHandler):
    server: ExporterServer
    protocol_version = "HTTP/1.1"              # keep-alive between scrapes
    # Answers to garbage request lines get a status line (HTTP/0.9 has none).
    default_request_version = "HTTP/1.0"
    server_version = "vgdrift/" + __version__

    def version_string(self) -> str:
        return self.server_version             # don't advertise the Python version

    def setup(self) -> None:
        self.connection = self.request
        self._reader = _DeadlineReader(self.connection)
        self.rfile = io.BufferedReader(self._reader, MAX_REQUEST_LINE)
        self.wfile = _SocketWriter(self.connection)

    def handle_one_request(self) -> None:
        # Like the stdlib's, but the head is read here with our own limits
        # and deadline before parse_request sees it.
        self.requestline, self.request_version, self.command = "", "", ""
        self._reader.deadline = time.monotonic() + self.server.io_timeout
        try:
            line = self.rfile.readline(MAX_REQUEST_LINE + 1)
            if not line:
                self.close_connection = True
                return
            if len(line) > MAX_REQUEST_LINE:
                self._reject(HTTPStatus.REQUEST_URI_TOO_LONG)
                return
            head = self._read_head()
            if head is None:
                self._reject(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE)
                return
        except OSError as e:                   # timeout, reset, TLS error
            log.debug("reading request failed", extra={"client": _client(self.client_address), "err": str(e)})
            self.close_connection = True
            return
        finally:
            self._reader.deadline = None
        self.connection.settimeout(self.server.io_timeout)

        self.raw_requestline = line
        rfile, self.rfile = self.rfile, io.BytesIO(head)
        try:
            if not self.parse_request():
                return                         # parse_request sent the error
        finally:
            self.rfile = rfile
        # We never read request bodies: after a request that has one, the
        # connection cannot be reused.
        if self.headers.get("Transfer-Encoding") or self.headers.get("Content-Length", "0") != "0":
            self.close_connection = True
        self._dispatch()
        self.wfile.flush()

    def _read_head(self) -> Optional[bytes]:
        lines: List[bytes] = []
        size = 0
        while True:
            line = self.rfile.readline(MAX_HEADER_BYTES - size + 1)
            size += len(line)
            if size > MAX_HEADER_BYTES or len(lines) > MAX_HEADERS:
                return None
            if not line:
                raise ConnectionError("connection closed inside the request head")
            lines.append(line)
            if line in (b"\r\n", b"\n"):
                return b"".join(lines)

    def _reject(self, status: HTTPStatus) -> None:
        self.close_connection = True
        self.send_error(status)
        # Swallow a bounded amount of what the client is still sending:
        # closing with unread data makes the kernel send a RST, and the client
        # might lose our error response.
        self._reader.deadline = time.monotonic() + 1.0
        try:
            for _ in range(64):
                if not self.rfile.read1(65536):
                    break
        except OSError:
            pass

    def _dispatch(self) -> None:
        settings = self.server.settings
        auth = settings.web.auth
        if auth is not None and not auth.check(self.headers.get("Authorization")):
            self._send(HTTPStatus.UNAUTHORIZED, b"Unauthorized\n",
                       extra=[("WWW-Authenticate", 'Basic realm="vgdrift"')])
            return
        if self.command not in ("GET", "HEAD"):
            self.close_connection = True
            self._send(HTTPStatus.METHOD_NOT_ALLOWED, b"Method not allowed\n",
                       extra=[("Allow", "GET, HEAD")])
            return
        path = urlsplit(self.path).path
        if path == settings.telemetry_path:
            self._metrics()
        elif path == "/":
            self._send(HTTPStatus.OK, _landing_page(settings.telemetry_path),
                       "text/html; charset=utf-8")
        elif path == "/-/healthy":
            self._send(HTTPStatus.OK, b"Healthy\n")
        elif path == "/-/ready":
            if self.server.ready():
                self._send(HTTPStatus.OK, b"Ready\n")
            else:
                self._send(HTTPStatus.SERVICE_UNAVAILABLE, b"Not ready: no scan has finished yet\n")
        else:
            self._send(HTTPStatus.NOT_FOUND, b"Not found\n")

    def _metrics(self) -> None:
        gzipped = _accepts_gzip(self.headers.get("Accept-Encoding", ""))
        try:
            body, content_type = self.server.exposition.render(self.headers.get("Accept", ""), gzipped)
        except Exception:
            log.error("rendering metrics failed", exc_info=True)
            self._send(HTTPStatus.INTERNAL_SERVER_ERROR, b"Internal error\n")
            return
        self._send(HTTPStatus.OK, body, content_type, [("Content-Encoding", "gzip")] if gzipped else [])

    def _send(self, status: HTTPStatus, body: bytes, content_type: str = "text/plain; charset=utf-8",
              extra: Any = ()) -> None:
        self.send_response(status)
        for name, value in list(self.server.settings.web.headers) + list(extra):
            self.send_header(name, value)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug(format % args, extra={"client": _client(self.client_address)})


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


def _client(client_address: Any) -> str:
    try:
        return "%s:%s" % client_address[:2]
    except TypeError:
        return str(client_address)
