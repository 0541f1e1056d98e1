"""Test certificates made with the openssl CLI: a CA, a server certificate
for 127.0.0.1 and a client certificate, both signed by the CA, plus a
stray key that matches neither."""

import shutil
import subprocess
from pathlib import Path
from typing import Dict


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def make_pki(directory: Path) -> Dict[str, Path]:
    assert shutil.which("openssl"), "openssl CLI is required (apt install openssl)"
    d = directory
    (d / "server.ext").write_text("subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
    (d / "client.ext").write_text("extendedKeyUsage=clientAuth\n")
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-nodes", "-keyout", "ca.key", "-out", "ca.crt", "-days", "2",
             "-subj", "/CN=vgdrift test CA", cwd=d)
    for name in ("server", "client"):
        _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                 "-keyout", name + ".key", "-out", name + ".csr",
                 "-subj", "/CN=vgdrift test " + name, cwd=d)
        _openssl("x509", "-req", "-in", name + ".csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                 "-CAcreateserial", "-out", name + ".crt", "-days", "2",
                 "-extfile", name + ".ext", cwd=d)
    _openssl("genpkey", "-algorithm", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-out", "stray.key", cwd=d)
    return {name: d / name for name in
            ("ca.crt", "server.crt", "server.key", "client.crt", "client.key", "stray.key")}
