"""The Prometheus exporter-toolkit web configuration file (--web.config.file).

Same format as every Prometheus exporter, so operators can reuse theirs:
TLS (optionally with client certificates) and bcrypt basic auth.  Relative
paths are relative to the file's directory, as in exporter-toolkit.
Problems are `ConfigError`s with a one-line message naming file and key.
"""

import base64
import binascii
import hashlib
import logging
import os
import re
import ssl
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

import bcrypt
import yaml

from .config import ConfigError

_log = logging.getLogger("vgdrift.webconfig")

CLIENT_AUTH_TYPES = {
    "NoClientCert": ssl.CERT_NONE,
    # Python's ssl verifies every client certificate it asks for, so the two
    # "don't verify" modes of Go are served as their verifying counterparts:
    # stricter, never weaker.  They therefore need client_ca_file too.
    "RequestClientCert": ssl.CERT_OPTIONAL,
    "RequireAnyClientCert": ssl.CERT_REQUIRED,
    "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
    "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
}
TLS_VERSIONS = {"TLS12": ssl.TLSVersion.TLSv1_2, "TLS13": ssl.TLSVersion.TLSv1_3}

_TLS_KEYS = {"cert_file", "key_file", "client_ca_file", "client_auth_type",
             "min_version", "max_version", "prefer_server_cipher_suites"}
# exporter-toolkit keys we cannot honour; silently ignoring a security
# setting (e.g. client_allowed_sans) would be worse than refusing to start.
_TLS_UNSUPPORTED = {"cipher_suites", "curve_preferences", "client_allowed_sans",
                    "cert", "key", "client_ca"}
# The response headers exporter-toolkit lets http_server_config.headers set.
_HEADERS = {"Strict-Transport-Security", "X-Content-Type-Options", "X-Frame-Options",
            "X-XSS-Protection", "Content-Security-Policy"}
_BCRYPT_RE = re.compile(r"^\$2[aby]\$(\d\d)\$[./A-Za-z0-9]{53}$")
_CACHE_SIZE = 100
CACHE_SECONDS = 60.0     # how long a successful check is remembered


def bcrypt_cost(hashed: bytes) -> int:
    m = _BCRYPT_RE.match(hashed.decode("ascii"))
    return int(m.group(1)) if m else 0


class BasicAuth:
    """Checks `Authorization: Basic` headers against bcrypt hashes.

    bcrypt costs tens of milliseconds by design; paying it on every scrape
    would make Prometheus pay it every 15 s, so successful checks are cached
    briefly (CACHE_SECONDS, keyed by a digest of user, password and hash, as
    exporter-toolkit does).  Failed checks are never cached.

    Unknown users are checked against a decoy hash made here with the cost
    of the configured hashes (the highest, if they differ), so that a wrong
    user costs what a wrong password costs and timing does not tell which
    users exist.  Where the bcrypt work runs (a small bounded pool, so that a
    flood of wrong passwords cannot take every core from the scans) is the
    HTTP server's business: `cached()` answers without bcrypt when it can.
    """

    def __init__(self, users: Mapping[str, bytes]) -> None:
        self._users = {u.encode("utf-8"): h for u, h in users.items()}
        self._ok: Dict[bytes, float] = {}
        self._lock = threading.Lock()
        self.costs = sorted({bcrypt_cost(h) for h in self._users.values()})
        cost = max(self.costs, default=4)
        self._decoy = bcrypt.hashpw(os.urandom(16).hex().encode(), bcrypt.gensalt(max(4, cost)))

    def cached(self, authorization: Optional[str]) -> Optional[bool]:
        """True for a check that succeeded less than CACHE_SECONDS ago,
        False for a header that can never succeed (malformed), None when
        bcrypt has to decide (call check())."""
        creds = _parse_basic(authorization)
        if creds is None:
            return False
        key = self._key(*creds)
        with self._lock:
            expires = self._ok.get(key)
        if expires is not None and expires > time.monotonic():
            return True
        return None

    def check(self, authorization: Optional[str]) -> bool:
        creds = _parse_basic(authorization)
        if creds is None:
            return False
        if self.cached(authorization):
            return True
        user, password = creds
        hashed = self._users.get(user)
        try:
            ok = bcrypt.checkpw(password, hashed or self._decoy)
        except ValueError:          # e.g. a password longer than bcrypt's 72 bytes
            ok = False
        ok = ok and hashed is not None
        if ok:
            now = time.monotonic()
            with self._lock:
                if len(self._ok) >= _CACHE_SIZE:
                    self._ok = {k: t for k, t in self._ok.items() if t > now}
                    if len(self._ok) >= _CACHE_SIZE:
                        self._ok.clear()
                self._ok[self._key(user, password)] = now + CACHE_SECONDS
        return ok

    def _key(self, user: bytes, password: bytes) -> bytes:
        return hashlib.sha256(b"\0".join((user, password, self._users.get(user) or b""))).digest()


def _parse_basic(authorization: Optional[str]) -> Optional[Tuple[bytes, bytes]]:
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    token = token.strip()
    try:
        decoded = base64.b64decode(token, validate=True)
    except (binascii.Error, ValueError):
        return None
    # Python 3.9 accepts excess padding that later versions refuse: only the
    # canonical encoding counts, on every version alike.
    if base64.b64encode(decoded).decode("ascii") != token:
        return None
    user, sep, password = decoded.partition(b":")
    return (user, password) if sep else None


class TLSFiles:
    """The TLS context, rebuilt when the certificate, key or client CA file
    changes (size, mtime or inode), as exporter-toolkit re-reads them: a
    rotated certificate needs no SIGHUP.  Looked at most once a second, at
    a new connection; a new set of files that does not load is logged once
    and the previous context kept."""

    CHECK_EVERY = 1.0

    def __init__(self, build: Callable[[], ssl.SSLContext], files: Tuple[str, ...]) -> None:
        self._build = build
        self._files = files
        self._stamp = self._stat()
        self._context = build()
        self._checked = time.monotonic()
        self._failed_stamp: Optional[tuple] = None
        self._lock = threading.Lock()

    def _stat(self) -> tuple:
        out: List[Optional[Tuple[int, int, int]]] = []
        for name in self._files:
            try:
                st = os.stat(name)
                out.append((st.st_ino, st.st_size, st.st_mtime_ns))
            except OSError:
                out.append(None)
        return tuple(out)

    def context(self) -> ssl.SSLContext:
        now = time.monotonic()
        if now - self._checked < self.CHECK_EVERY:
            return self._context
        with self._lock:
            self._checked = now
            stamp = self._stat()
            if stamp != self._stamp and stamp != self._failed_stamp:
                try:
                    self._context = self._build()
                    self._stamp = stamp
                    _log.info("TLS certificate files reloaded", extra={"files": ",".join(self._files)})
                except ConfigError as e:
                    # Mid-rotation (new cert, old key) or broken: keep serving
                    # with the old pair; retried when the files change again.
                    self._failed_stamp = stamp
                    _log.error("TLS certificate files changed but cannot be loaded; keeping the "
                               "previous ones", extra={"err": str(e)})
        return self._context


@dataclass(frozen=True)
class WebConfig:
    ssl_context: Optional[ssl.SSLContext] = None      # the context as loaded (see tls for the current one)
    auth: Optional[BasicAuth] = None
    headers: Tuple[Tuple[str, str], ...] = ()    # extra response headers
    path: Optional[str] = field(default=None, compare=False)
    tls: Optional[TLSFiles] = field(default=None, compare=False)

    def current_ssl_context(self) -> Optional[ssl.SSLContext]:
        if self.tls is not None:
            return self.tls.context()
        return self.ssl_context


def load_web_config(path: Optional[str]) -> WebConfig:
    """Parse and validate the web config file; None means plain HTTP, no auth.

    A file that configures nothing (empty, or only empty sections) is an
    error: it was meant to turn TLS or auth on, and starting without either,
    silently, is the one outcome nobody wants."""
    if not path:
        return WebConfig()
    try:
        with open(path, encoding="utf-8") as f:
            doc = yaml.safe_load(f)
    except OSError as e:
        raise ConfigError("cannot read web config file %s: %s" % (path, e.strerror or e)) from None
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        mark = getattr(e, "problem_mark", None)
        where = " at line %d" % (mark.line + 1) if mark else ""
        raise ConfigError("web config file %s: invalid YAML%s" % (path, where)) from None
    if doc is None:
        raise ConfigError("web config file %s: empty (it must configure tls_server_config or "
                          "basic_auth_users; for plain HTTP give no --web.config.file)" % path)
    doc = _mapping(path, "top level", doc)
    for key in doc:
        if key not in ("tls_server_config", "basic_auth_users", "http_server_config"):
            raise ConfigError("web config file %s: unknown key %s" % (path, key))
        if not doc[key]:
            raise ConfigError("web config file %s: %s: empty section%s" % (
                path, key, " (no users)" if key == "basic_auth_users" else ""))
    base = os.path.dirname(os.path.abspath(path))
    tls = _tls(path, base, doc.get("tls_server_config"))
    return WebConfig(
        ssl_context=tls.context() if tls else None,
        auth=_auth(path, doc.get("basic_auth_users")),
        headers=_http(path, doc.get("http_server_config")),
        path=path, tls=tls)


def _mapping(path: str, key: str, value: Any) -> Dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError("web config file %s: %s: expected a mapping" % (path, key))
    return value


def _tls(path: str, base: str, section: Any) -> Optional[TLSFiles]:
    if not section:
        return None
    tls = _mapping(path, "tls_server_config", section)

    def fail(key: str, problem: str) -> ConfigError:
        return ConfigError("web config file %s: tls_server_config.%s: %s" % (path, key, problem))

    def string(key: str) -> Optional[str]:
        value = tls.get(key)
        if value is not None and not isinstance(value, str):
            raise fail(key, "expected a string")
        return value or None

    def readable(key: str) -> Optional[str]:
        name = string(key)
        if name is None:
            return None
        name = os.path.join(base, name)
        try:
            with open(name, "rb"):
                pass
        except OSError as e:
            raise fail(key, "cannot read %s: %s" % (name, e.strerror or e)) from None
        return name

    for key in tls:
        if key in _TLS_UNSUPPORTED:
            raise fail(key, "not supported by vgdrift")
        if key not in _TLS_KEYS:
            raise fail(key, "unknown key")
    cert, key_file = readable("cert_file"), readable("key_file")
    if not cert or not key_file:
        raise fail("cert_file" if not cert else "key_file",
                   "cert_file and key_file are both required for TLS")
    auth_type = string("client_auth_type") or "NoClientCert"
    if auth_type not in CLIENT_AUTH_TYPES:
        raise fail("client_auth_type", "must be one of %s, got %r"
                   % (", ".join(CLIENT_AUTH_TYPES), auth_type))
    ca = readable("client_ca_file")
    verify = CLIENT_AUTH_TYPES[auth_type]
    if ca and verify == ssl.CERT_NONE:
        raise fail("client_ca_file", "set without a client_auth_type that asks for client certificates")
    if verify != ssl.CERT_NONE and not ca:
        raise fail("client_auth_type", "%s needs client_ca_file" % auth_type)

    versions = {}
    for key in ("min_version", "max_version"):
        value = string(key)
        if value is not None and value not in TLS_VERSIONS:
            raise fail(key, "must be one of %s, got %r" % (", ".join(TLS_VERSIONS), value))
        versions[key] = value

    def build() -> ssl.SSLContext:
        return _context(fail, cert, key_file, ca, verify, versions)

    return TLSFiles(build, tuple(f for f in (cert, key_file, ca) if f))


def _context(fail: Callable[[str, str], ConfigError], cert: str, key_file: str, ca: Optional[str],
             verify: int, versions: Dict[str, Optional[str]]) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    for key, attr in (("min_version", "minimum_version"), ("max_version", "maximum_version")):
        value = versions.get(key)
        if value is not None:
            setattr(ctx, attr, TLS_VERSIONS[value])
    if ctx.minimum_version < ssl.TLSVersion.TLSv1_2:
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2      # exporter-toolkit's default
    if ctx.maximum_version != ssl.TLSVersion.MAXIMUM_SUPPORTED and \
            ctx.maximum_version < ctx.minimum_version:
        raise fail("max_version", "lower than min_version")
    try:
        ctx.load_cert_chain(cert, key_file)
    except ssl.SSLError as e:
        if "KEY_VALUES_MISMATCH" in str(e):
            raise fail("key_file", "%s does not match cert_file %s" % (key_file, cert)) from None
        # OpenSSL's "PEM lib" means the files are not PEM of the right kind.
        reason = "not a PEM certificate and key" if e.reason in (None, "PEM lib") else e.reason
        raise fail("cert_file", "cannot load %s with key %s: %s" % (cert, key_file, reason)) from None
    if ca:
        try:
            ctx.load_verify_locations(cafile=ca)
        except ssl.SSLError as e:
            raise fail("client_ca_file", "cannot load %s: %s" % (ca, e.reason or e)) from None
    ctx.verify_mode = verify   # type: ignore[assignment]
    return ctx


def _auth(path: str, section: Any) -> Optional[BasicAuth]:
    if section is None:
        return None
    users = {}
    for user, hashed in _mapping(path, "basic_auth_users", section).items():
        where = "web config file %s: basic_auth_users.%s" % (path, user)
        if not isinstance(user, str) or not user or ":" in user:
            raise ConfigError("%s: user names must be non-empty strings without ':'" % where)
        if not isinstance(hashed, str) or not _BCRYPT_RE.match(hashed):
            raise ConfigError("%s: expected a bcrypt hash ($2y$...)" % where)
        users[user] = hashed.encode("ascii")
    if not users:
        raise ConfigError("web config file %s: basic_auth_users: no users" % path)
    auth = BasicAuth(users)
    if len(auth.costs) > 1:
        _log.warning("basic_auth_users: the bcrypt hashes have different costs (%s); the time a "
                     "wrong password takes tells which user it was for: use one cost"
                     % ", ".join(map(str, auth.costs)), extra={"file": path})
    return auth


def _http(path: str, section: Any) -> Tuple[Tuple[str, str], ...]:
    if not section:
        return ()
    http = _mapping(path, "http_server_config", section)
    headers: Dict[str, str] = {}
    for key, value in http.items():
        if key == "http2":
            continue            # accepted for compatibility; we serve HTTP/1.1
        if key != "headers":
            raise ConfigError("web config file %s: http_server_config.%s: unknown key" % (path, key))
        for name, text in _mapping(path, "http_server_config.headers", value or {}).items():
            if name not in _HEADERS or not isinstance(text, str) or "\n" in text or "\r" in text:
                raise ConfigError("web config file %s: http_server_config.headers.%s: "
                                  "not an allowed header or not a one-line string" % (path, name))
            headers[name] = text
    return tuple(headers.items())
