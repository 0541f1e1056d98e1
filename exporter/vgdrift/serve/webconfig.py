"""The Prometheus exporter-toolkit web configuration file (--web.config.file).

Same format as every Prometheus exporter, so operators can reuse theirs:
TLS (optionally with client certificates) and bcrypt basic auth.  Relative
paths are relative to the file's directory, as in exporter-toolkit.
Problems are `ConfigError`s with a one-line message naming file and key.
"""

import base64
import binascii
import hashlib
import os
import re
import ssl
import threading
from dataclasses import dataclass, field
from typing import Any, Dict, Mapping, Optional, Tuple

import bcrypt
import yaml

from .config import ConfigError

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
_BCRYPT_RE = re.compile(r"^\$2[aby]\$\d\d\$[./A-Za-z0-9]{53}$")
# Checked against when the user is unknown, so that unknown users cost the
# same bcrypt time as known ones and cannot be told apart by timing.
_DUMMY_HASH = b"$2b$10$ddrx2OgR7gQh1WfCtPOGbe2ue.hr3EeMfIHZy.B1FF.8eoi9J6euq"
_CACHE_SIZE = 100


class BasicAuth:
    """Checks `Authorization: Basic` headers against bcrypt hashes.

    bcrypt costs tens of milliseconds by design; paying it on every scrape
    would make Prometheus pay it every 15 s, so successful checks are cached
    in memory (keyed by a digest of user, password and hash, like
    exporter-toolkit).  Failed checks are never cached, and bcrypt runs one
    at a time so a flood of wrong passwords costs one core, not all.
    """

    def __init__(self, users: Mapping[str, bytes]) -> None:
        self._users = {u.encode("utf-8"): h for u, h in users.items()}
        self._ok: Dict[bytes, bool] = {}
        self._lock = threading.Lock()
        self._bcrypt_lock = threading.Lock()

    def check(self, authorization: Optional[str]) -> bool:
        creds = _parse_basic(authorization)
        if creds is None:
            return False
        user, password = creds
        hashed = self._users.get(user)
        key = hashlib.sha256(b"\0".join((user, password, hashed or b""))).digest()
        with self._lock:
            if key in self._ok:
                return True
        with self._bcrypt_lock:
            try:
                ok = bcrypt.checkpw(password, hashed or _DUMMY_HASH)
            except ValueError:          # e.g. a password longer than bcrypt's 72 bytes
                ok = False
        ok = ok and hashed is not None
        if ok:
            with self._lock:
                if len(self._ok) >= _CACHE_SIZE:
                    self._ok.clear()
                self._ok[key] = True
        return ok


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


@dataclass(frozen=True)
class WebConfig:
    ssl_context: Optional[ssl.SSLContext] = None
    auth: Optional[BasicAuth] = None
    headers: Tuple[Tuple[str, str], ...] = ()    # extra response headers
    path: Optional[str] = field(default=None, compare=False)


def load_web_config(path: Optional[str]) -> WebConfig:
    """Parse and validate the web config file; None means plain HTTP, no auth."""
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
    doc = _mapping(path, "top level", {} if doc is None else doc)
    for key in doc:
        if key not in ("tls_server_config", "basic_auth_users", "http_server_config"):
            raise ConfigError("web config file %s: unknown key %s" % (path, key))
    base = os.path.dirname(os.path.abspath(path))
    return WebConfig(
        ssl_context=_tls(path, base, doc.get("tls_server_config")),
        auth=_auth(path, doc.get("basic_auth_users")),
        headers=_http(path, doc.get("http_server_config")),
        path=path)


def _mapping(path: str, key: str, value: Any) -> Dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError("web config file %s: %s: expected a mapping" % (path, key))
    return value


def _tls(path: str, base: str, section: Any) -> Optional[ssl.SSLContext]:
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

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    for key, attr in (("min_version", "minimum_version"), ("max_version", "maximum_version")):
        value = string(key)
        if value is None:
            continue
        if value not in TLS_VERSIONS:
            raise fail(key, "must be one of %s, got %r" % (", ".join(TLS_VERSIONS), value))
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
    ctx.verify_mode = verify
    return ctx


def _auth(path: str, section: Any) -> Optional[BasicAuth]:
    if not section:
        return None
    users = {}
    for user, hashed in _mapping(path, "basic_auth_users", section).items():
        where = "web config file %s: basic_auth_users.%s" % (path, user)
        if not isinstance(user, str) or not user or ":" in user:
            raise ConfigError("%s: user names must be non-empty strings without ':'" % where)
        if not isinstance(hashed, str) or not _BCRYPT_RE.match(hashed):
            raise ConfigError("%s: expected a bcrypt hash ($2y$...)" % where)
        users[user] = hashed.encode("ascii")
    return BasicAuth(users)


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
