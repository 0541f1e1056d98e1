import gzip
import http.client
import socket
import ssl
import threading
import time

import bcrypt
import pytest

from pki import make_pki
from samples import all_states_result
from vgdrift.serve.collector import ScanStats
from vgdrift.serve.main import build_exposition
from vgdrift.serve.server import Limits, Settings, make_server, parse_listen_address
from vgdrift.serve.webconfig import WebConfig, load_web_config

PATHS = ("/", "/metrics", "/-/healthy", "/-/ready", "/no-such-page")


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def start():
    servers = []

    def start(web=None, telemetry_path="/metrics", **kwargs):
        stats = ScanStats()
        server = make_server("127.0.0.1:0", build_exposition(stats), lambda: stats.ready,
                             Settings(telemetry_path, web or WebConfig()), **kwargs)
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()
        servers.append(server)
        return server, stats

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def request(server, path, method="GET", headers=None, context=None, body=None):
    port = server.server_address[1]
    if context is None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    else:
        conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=10, context=context)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.headers, response.read()
    finally:
        conn.close()


def wait_until(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail("condition not met in %.0f s" % timeout)
        time.sleep(0.01)


def closed(sock):
    """True once the peer closed (EOF or reset); reads and drops data."""
    try:
        while True:
            data = sock.recv(65536)
            if not data:
                return True
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


def raw(server, data, read=True):
    """Send raw bytes; return the status line of the answer."""
    with socket.create_connection(server.server_address[:2], timeout=10) as sock:
        try:
            sock.sendall(data)
        except OSError:
            pass                     # the server may answer and close before we finish
        return sock.makefile("rb").readline() if read else b""


@pytest.mark.parametrize("address, expected", [
    (":9867", ("", 9867)), ("127.0.0.1:9867", ("127.0.0.1", 9867)),
    ("[::1]:9867", ("::1", 9867)), ("[::]:0", ("::", 0)), ("localhost:80", ("localhost", 80)),
])
def test_parse_listen_address(address, expected):
    assert parse_listen_address(address) == expected


@pytest.mark.parametrize("address", ["9867", "::1:9867", "[127.0.0.1]:80", "host:", "host:http",
                                     ":65536", "[::1]", ""])
def test_parse_listen_address_rejects(address):
    with pytest.raises(ValueError):
        parse_listen_address(address)


def test_endpoints(start):
    server, stats = start()
    status, headers, body = request(server, "/")
    assert status == 200 and b'href="/metrics"' in body
    assert headers["Content-Type"].startswith("text/html")
    assert request(server, "/-/healthy")[0] == 200
    assert request(server, "/nope")[0] == 404
    status, headers, body = request(server, "/metrics")
    assert status == 200 and headers["Content-Type"].startswith("text/plain; version=0.0.4")
    assert b"vgdrift_build_info{" in body and b"vgdrift_vg_state{" not in body
    assert headers["Server"].startswith("vgdrift/") and "Python" not in headers["Server"]


def test_ready_after_the_first_scan(start):
    server, stats = start()
    assert request(server, "/-/ready")[0] == 503
    stats.record(all_states_result())
    assert request(server, "/-/ready")[0] == 200
    body = request(server, "/metrics?ignored=1")[2]
    assert b'vgdrift_vg_drift{vg="vg_drift"} 1.0' in body


def test_head_gzip_openmetrics_keepalive(start):
    server, stats = start()
    stats.record(all_states_result())
    status, headers, body = request(server, "/metrics", method="HEAD")
    assert status == 200 and body == b"" and int(headers["Content-Length"]) > 1000
    status, headers, body = request(server, "/metrics", headers={"Accept-Encoding": "gzip"})
    assert headers["Content-Encoding"] == "gzip"
    assert b"vgdrift_scans_total 1.0" in gzip.decompress(body)
    accept = "application/openmetrics-text; version=1.0.0,text/plain;q=0.5"
    status, headers, body = request(server, "/metrics", headers={"Accept": accept})
    assert headers["Content-Type"].startswith("application/openmetrics-text")
    assert body.endswith(b"# EOF\n")
    conn = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=10)
    for _ in range(3):                       # several scrapes on one connection
        conn.request("GET", "/-/healthy")
        assert conn.getresponse().read() == b"Healthy\n"
    conn.close()


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "OPTIONS", "PATCH"])
def test_only_get_and_head(start, method):
    server, _ = start()
    status, headers, _ = request(server, "/metrics", method=method, body=b"x=1")
    assert status == 405 and headers["Allow"] == "GET, HEAD"
    assert headers["Connection"] == "close"     # the unread body must not be parsed as a request


def test_oversized_requests_are_rejected(start):
    server, _ = start()
    assert raw(server, b"GET /" + b"a" * 10000 + b" HTTP/1.1\r\n\r\n").split()[1] == b"414"
    big = b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 20000 + b"\r\n\r\n"
    assert raw(server, big).split()[1] == b"431"
    many = b"GET / HTTP/1.1\r\n" + b"".join(b"X-%d: y\r\n" % i for i in range(100)) + b"\r\n"
    assert raw(server, many).split()[1] == b"431"
    assert raw(server, b"NONSENSE\r\n\r\n").split()[1] == b"400"
    assert request(server, "/-/healthy")[0] == 200         # still serving


def test_a_trickling_client_is_cut_off(start):
    server, _ = start(limits=Limits(first_byte=0.5, head=0.5))
    with socket.create_connection(server.server_address[:2], timeout=10) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\n")
        deadline = time.monotonic() + 10
        closed = False
        while time.monotonic() < deadline and not closed:
            try:
                sock.sendall(b"X: y\r\n")    # a header line every 0.1 s keeps a plain timeout alive
                sock.settimeout(0.1)
                closed = sock.recv(1) == b""
            except socket.timeout:
                continue
            except OSError:
                closed = True
        assert closed


def test_a_full_server_makes_room_by_closing_the_oldest_silent_connection(start):
    server, _ = start(limits=Limits(max_connections=2))
    address = server.server_address[:2]
    idle = [socket.create_connection(address, timeout=10) for _ in range(2)]
    wait_until(lambda: len(server.conns) == 2)
    assert request(server, "/-/healthy")[0] == 200     # room was made
    idle[0].settimeout(10)
    assert closed(idle[0])                             # the oldest went first
    for sock in idle:
        sock.close()


def web_config(tmp_path, pki, auth_type=None, users=True):
    text = "tls_server_config:\n  cert_file: %s\n  key_file: %s\n" % (pki["server.crt"], pki["server.key"])
    if auth_type:
        text += "  client_auth_type: %s\n  client_ca_file: %s\n" % (auth_type, pki["ca.crt"])
    if users:
        hashed = bcrypt.hashpw(b"s3cret", bcrypt.gensalt(4)).decode()
        text += "basic_auth_users:\n  prometheus: '%s'\n" % hashed
    path = tmp_path / "web.yml"
    path.write_text(text)
    return load_web_config(str(path))


def client_context(pki, cert=False):
    ctx = ssl.create_default_context(cafile=str(pki["ca.crt"]))
    if cert:
        ctx.load_cert_chain(str(pki["client.crt"]), str(pki["client.key"]))
    return ctx


def auth(user, password):
    import base64
    return {"Authorization": "Basic " + base64.b64encode(("%s:%s" % (user, password)).encode()).decode()}


def test_tls_basic_auth_on_every_path(start, pki, tmp_path, tls_path):
    server, stats = start(web=web_config(tmp_path, pki))
    stats.record(all_states_result())
    ctx = client_context(pki)
    for path in PATHS:
        status, headers, body = request(server, path, context=ctx)
        assert status == 401, path
        assert headers["WWW-Authenticate"].startswith("Basic")
        assert b"vgdrift" not in body
        assert request(server, path, context=ctx, headers=auth("prometheus", "wrong"))[0] == 401
        assert request(server, path, context=ctx, headers=auth("nobody", "s3cret"))[0] == 401
    assert request(server, "/metrics", method="POST", context=ctx)[0] == 401
    status, _, body = request(server, "/metrics", context=ctx, headers=auth("prometheus", "s3cret"))
    assert status == 200 and b"vgdrift_vg_state{" in body
    assert request(server, "/-/ready", context=ctx, headers=auth("prometheus", "s3cret"))[0] == 200
    with pytest.raises((ConnectionError, http.client.HTTPException, OSError)):
        request(server, "/metrics")                        # plain HTTP on the TLS port


def test_a_tls_answer_once_out_leaves_no_connection_busy(start, pki, tmp_path, tls_path):
    """Each scrape on a new TLS connection, answered and closed by the
    client: none may stay "busy" on the server.  A transport that did not say
    resume_writing used to keep one waiting, its client's close unread,
    until the write deadline (10 s), and 17 of them made the next scrape a
    503 (too many requests from this client)."""
    server, stats = start(web=web_config(tmp_path, pki, users=False))
    stats.record(all_states_result())
    ctx = client_context(pki)
    statuses = [request(server, "/metrics", context=ctx)[0] for _ in range(120)]
    assert statuses == [200] * 120

    def busy():
        try:
            return server.busy_from("127.0.0.1")
        except RuntimeError:            # the loop's thread changed the table meanwhile
            return -1
    wait_until(lambda: busy() == 0, timeout=5)


def test_client_certificate_required(start, pki, tmp_path, tls_path):
    server, _ = start(web=web_config(tmp_path, pki, "RequireAndVerifyClientCert", users=False))
    with pytest.raises((ssl.SSLError, ConnectionError, http.client.HTTPException, OSError)):
        request(server, "/-/healthy", context=client_context(pki))
    assert request(server, "/-/healthy", context=client_context(pki, cert=True))[0] == 200


def test_a_stalled_handshake_does_not_block_others(start, pki, tmp_path, tls_path):
    server, _ = start(web=web_config(tmp_path, pki, users=False))
    with socket.create_connection(server.server_address[:2], timeout=10):
        # Connected but silent: its handshake waits in its own thread.
        time.sleep(0.2)
        assert request(server, "/-/healthy", context=client_context(pki))[0] == 200


def test_settings_swap(start):
    server, _ = start()
    server.settings = Settings("/vg-metrics", WebConfig(headers=(("X-Frame-Options", "deny"),)))
    status, headers, _ = request(server, "/vg-metrics")
    assert status == 200 and headers["X-Frame-Options"] == "deny"
    assert request(server, "/metrics")[0] == 404
