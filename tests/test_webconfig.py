import base64
import ssl
import textwrap

import bcrypt
import pytest

from pki import make_pki
from vgdrift.serve import webconfig
from vgdrift.serve.config import ConfigError
from vgdrift.serve.webconfig import BasicAuth, load_web_config

HASH = bcrypt.hashpw(b"s3cret", bcrypt.gensalt(4)).decode()


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return make_pki(tmp_path_factory.mktemp("pki"))


def write(directory, text):
    path = directory / "web.yml"
    path.write_text(textwrap.dedent(text))
    return str(path)


def basic(user, password):
    return "Basic " + base64.b64encode(("%s:%s" % (user, password)).encode()).decode()


def test_no_file_is_plain_http():
    config = load_web_config(None)
    assert config.ssl_context is None and config.auth is None and config.headers == ()


def test_tls_and_users(pki, tmp_path):
    path = write(tmp_path, """\
        tls_server_config:
          cert_file: %s
          key_file: %s
          client_auth_type: RequireAndVerifyClientCert
          client_ca_file: %s
          min_version: TLS13
        basic_auth_users:
          prometheus: '%s'
        http_server_config:
          http2: false
          headers:
            X-Frame-Options: deny
        """ % (pki["server.crt"], pki["server.key"], pki["ca.crt"], HASH))
    config = load_web_config(path)
    assert config.ssl_context.verify_mode == ssl.CERT_REQUIRED
    assert config.ssl_context.minimum_version == ssl.TLSVersion.TLSv1_3
    assert config.auth.check(basic("prometheus", "s3cret"))
    assert config.headers == (("X-Frame-Options", "deny"),)


def test_paths_are_relative_to_the_file(pki):
    directory = pki["server.crt"].parent
    config = load_web_config(write(directory, """\
        tls_server_config:
          cert_file: server.crt
          key_file: server.key
        """))
    assert config.ssl_context.verify_mode == ssl.CERT_NONE
    assert config.ssl_context.minimum_version == ssl.TLSVersion.TLSv1_2


@pytest.mark.parametrize("auth_type, mode", [
    ("RequestClientCert", ssl.CERT_OPTIONAL), ("RequireAnyClientCert", ssl.CERT_REQUIRED),
    ("VerifyClientCertIfGiven", ssl.CERT_OPTIONAL), ("RequireAndVerifyClientCert", ssl.CERT_REQUIRED),
])
def test_client_auth_types(pki, tmp_path, auth_type, mode):
    config = load_web_config(write(tmp_path, """\
        tls_server_config: {cert_file: %s, key_file: %s, client_ca_file: %s, client_auth_type: %s}
        """ % (pki["server.crt"], pki["server.key"], pki["ca.crt"], auth_type)))
    assert config.ssl_context.verify_mode == mode


BAD = [
    ("tls", "cert_file: {dir}/nope.crt\nkey_file: {key}", "cert_file"),
    ("tls", "cert_file: {crt}\nkey_file: {stray}", "key_file"),
    ("tls", "cert_file: {key}\nkey_file: {key}", "cert_file"),
    ("tls", "cert_file: {crt}", "key_file"),
    ("tls", "cert_file: {crt}\nkey_file: {key}\ncolour: blue", "colour"),
    ("tls", "cert_file: {crt}\nkey_file: {key}\nclient_allowed_sans: [a]", "client_allowed_sans"),
    ("tls", "cert_file: {crt}\nkey_file: {key}\ncipher_suites: [TLS_AES_128_GCM_SHA256]", "cipher_suites"),
    ("tls", "cert_file: {crt}\nkey_file: {key}\nclient_auth_type: Sometimes", "client_auth_type"),
    ("tls", "cert_file: {crt}\nkey_file: {key}\nclient_auth_type: RequireAndVerifyClientCert",
     "client_auth_type"),
    ("tls", "cert_file: {crt}\nkey_file: {key}\nclient_ca_file: {ca}", "client_ca_file"),
    ("tls", "cert_file: {crt}\nkey_file: {key}\nclient_auth_type: VerifyClientCertIfGiven\n"
            "client_ca_file: {key}", "client_ca_file"),
    ("tls", "cert_file: {crt}\nkey_file: {key}\nmin_version: TLS10", "min_version"),
    ("tls", "cert_file: {crt}\nkey_file: {key}\nmin_version: TLS13\nmax_version: TLS12", "max_version"),
    ("tls", "cert_file: [a]\nkey_file: {key}", "cert_file"),
    ("users", "prometheus: plaintext", "basic_auth_users.prometheus"),
    ("users", "'a:b': '%s'" % HASH, "basic_auth_users.a:b"),
    ("users", "prometheus: 12", "basic_auth_users.prometheus"),
    ("top", "tls_server_config: [a]", "tls_server_config"),
    ("top", "basic_auth_users: [a]", "basic_auth_users"),
    ("top", "http_server_config:\n  headers:\n    Set-Cookie: x", "headers.Set-Cookie"),
    ("top", "http_server_config:\n  keepalive: true", "http_server_config.keepalive"),
    ("top", "unknown: 1", "unknown"),
]


@pytest.mark.parametrize("section, body, key", BAD)
def test_bad_web_configs(pki, tmp_path, section, body, key):
    body = body.format(dir=tmp_path, crt=pki["server.crt"], key=pki["server.key"],
                       stray=pki["stray.key"], ca=pki["ca.crt"])
    if section != "top":
        name = "tls_server_config" if section == "tls" else "basic_auth_users"
        body = name + ":\n" + textwrap.indent(body, "  ")
    path = write(tmp_path, body + "\n")
    with pytest.raises(ConfigError) as err:
        load_web_config(path)
    message = str(err.value)
    assert "\n" not in message and path in message and key in message


@pytest.mark.parametrize("text", ["a: [\n", "- a\n", "\xff"])
def test_unparsable_web_config(tmp_path, text):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_web_config(path)
    assert "\n" not in str(err.value) and path in str(err.value)


def test_missing_web_config(tmp_path):
    with pytest.raises(ConfigError, match="cannot read web config file"):
        load_web_config(str(tmp_path / "absent.yml"))


@pytest.mark.parametrize("header", [
    None, "", "Basic", "Bearer abc", "Basic !!!", "Basic " + base64.b64encode(b"nocolon").decode(),
    basic("prometheus", "wrong"), basic("nobody", "s3cret"), basic("prometheus", "x" * 100),
    basic("prometheus", "s3cret") + "=",
])
def test_basic_auth_rejects(header):
    assert not BasicAuth({"prometheus": HASH.encode()}).check(header)


def test_basic_auth_accepts_and_caches(monkeypatch):
    auth = BasicAuth({"prometheus": HASH.encode(), "other": HASH.encode()})
    calls = []
    real = bcrypt.checkpw
    monkeypatch.setattr(webconfig.bcrypt, "checkpw", lambda p, h: calls.append(p) or real(p, h))
    assert auth.check(basic("prometheus", "s3cret"))
    assert auth.check("basic  " + basic("prometheus", "s3cret")[6:])
    assert len(calls) == 1                         # the second check came from the cache
    assert not auth.check(basic("prometheus", "wrong"))
    assert not auth.check(basic("prometheus", "wrong"))
    assert len(calls) == 3                         # failures are never cached
    assert not auth.check(basic("nobody", "s3cret"))
    assert len(calls) == 4                         # unknown users pay bcrypt too
    assert auth.check(basic("other", "s3cret"))
