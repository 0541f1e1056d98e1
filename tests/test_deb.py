"""The Debian package (debian/), and what it shares with the Python package.

The first tests need nothing but the checkout: one version for pyproject,
the package and debian/changelog; the man page generator.  The others build
the .deb (debian/build-deb, from a copy of the tree in a temporary
directory, so nothing lands beside the checkout), run lintian on it,
install it with `apt-get install ./vgdrift_*.deb` and check what an SRE
would use from the installed files only: /usr/bin/vgdrift, the demo, the
Pacemaker agents' meta-data, the alert rules with promtool, the systemd
units with systemd-analyze; then purge it.

Those need root on Debian with the build dependencies (make test installs
them: the Makefile's APT_PACKAGES). Like the lab, they fail where they
cannot run; VGDRIFT_SKIP_LAB=1 (no root) or VGDRIFT_SKIP_DEB=1 skips them.
They refuse to run where a vgdrift package is already installed: they
would purge it.

The installed package lives beside the venv the other tests use: they run
the venv's vgdrift (tests/cluster.vgdrift_binary), and the deb's Python
modules are Debian's python3's, not the venv's.
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tarfile
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DEBIAN = ROOT / "debian"
# Debian's own tools and Python only (this machine's PATH may put pyenv first).
CLEAN_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": os.environ.get("HOME", "/root"),
             "LC_ALL": "C.UTF-8"}
UNITS = ("vgdrift.service", "vgdrift-textfile.service", "vgdrift-textfile.timer")
AGENTS = ("guard", "health")


def source_version() -> str:
    text = (ROOT / "exporter" / "vgdrift" / "__init__.py").read_text()
    found = re.search(r'^__version__ = "([^"]+)"$', text, re.M)
    assert found, "exporter/vgdrift/__init__.py sets no __version__"
    return found.group(1)


def run(cmd, check=True, **kw):
    kw.setdefault("env", CLEAN_ENV)
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600, **kw)
    if check and r.returncode != 0:
        pytest.fail(f"{' '.join(map(str, cmd))} exited {r.returncode}:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}",
                    pytrace=False)
    return r


# --- no root needed ---------------------------------------------------------

def test_one_version_for_python_and_debian():
    version = source_version()
    pyproject = (ROOT / "pyproject.toml").read_text()
    # pyproject takes it from the package (no second copy to forget).
    assert re.search(r'^dynamic = \[[^]]*"version"', pyproject, re.M)
    assert 'version = {attr = "vgdrift.__version__"}' in pyproject
    project = pyproject.split("\n[project]\n", 1)[1].split("\n[", 1)[0]
    assert not re.search(r'^version = ', project, re.M), project
    # debian/changelog must say the same (debian/rules refuses to build otherwise).
    first = (DEBIAN / "changelog").read_text().splitlines()[0]
    assert first.startswith(f"vgdrift ({version}) "), (
        f"debian/changelog starts {first!r}, the package is {version}: add a debian/changelog entry")


def test_units_run_the_packaged_binary():
    for unit in UNITS:
        text = (ROOT / "exporter" / "systemd" / unit).read_text()
        for line in text.splitlines():
            if line.startswith("ExecStart="):
                assert line.split("=", 1)[1].split()[0] == "/usr/bin/vgdrift", (unit, line)
        # debian/ installs these very files (symlinks), not copies.
        link = DEBIAN / (f"vgdrift.{unit}" if unit.startswith("vgdrift-") else unit)
        assert link.resolve() == (ROOT / "exporter" / "systemd" / unit).resolve(), link


def test_manpage_is_generated_from_the_parser(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT / "exporter"), SOURCE_DATE_EPOCH="1795485983")
    page = tmp_path / "vgdrift.1"
    subprocess.run([sys.executable, str(DEBIAN / "argparse2man.py"), str(page)], check=True, env=env,
                   timeout=60)
    text = page.read_text()
    lines = text.splitlines()
    # lintian's whatis check: "name \- description" right after .SH NAME.
    assert lines[1] == ".SH NAME" and re.fullmatch(r"vgdrift \\- \S.*", lines[2]), lines[:3]
    assert lines[0].startswith('.TH VGDRIFT 1 "2026-11-24" "vgdrift ' + source_version() + '"')
    from vgdrift.cli import build_parser
    parser = build_parser(with_serve=True)
    subs = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert set(subs.choices) <= {m.group(1) for m in re.finditer(r"^\.SS (\S+)$", text, re.M)}
    for name, sub in subs.choices.items():
        # Each command's section lists every one of its options.
        section = text.split(f".SS {name}\n", 1)[1].split("\n.SS ", 1)[0].split("\n.SH ", 1)[0]
        for action in sub._actions:
            for option in action.option_strings:
                assert "\\fB" + option.replace("-", "\\-") + "\\fR" in section, (name, option)
    if shutil.which("man"):
        # What lintian runs on manual pages: groff must not warn.
        r = subprocess.run(["man", "--warnings", "-E", "UTF-8", "-l", "-Tutf8", "-Z", str(page)],
                           capture_output=True, text=True, timeout=60,
                           env=dict(CLEAN_ENV, MANROFFSEQ="", MANWIDTH="80"))
        assert r.returncode == 0 and r.stderr == "", r.stderr


# --- the sdist and the wheel, built with Debian 12's setuptools (66) --------

def copy_tree(dest: Path) -> Path:
    """The checkout without version control, venvs, caches and build output
    (building writes build/ and *.egg-info beside the sources)."""
    shutil.copytree(ROOT, dest, ignore=shutil.ignore_patterns(
        ".git", ".venv", "build", ".hypothesis", ".mypy_cache", ".ruff_cache", ".pytest_cache",
        "__pycache__", "*.egg-info", ".pybuild"))
    return dest


def test_sdist_and_wheel(tmp_path):
    problem = deb_problem(root=False)
    if problem:
        skip_or_fail(problem)
    src = copy_tree(tmp_path / "src")
    dist = tmp_path / "dist"
    # The sdist first, then the wheel from the unpacked sdist (what pip does).
    run(["/usr/bin/python3", "-m", "build", "--no-isolation", "--outdir", str(dist), str(src)])
    version = source_version()
    with tarfile.open(dist / f"vgdrift-{version}.tar.gz") as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    # Tests need the repository (lab, fixtures, README): the sdist leaves them out ...
    assert not [n for n in names if n == "tests" or n.startswith("tests/")]
    # ... and carries what the Debian package installs beside the Python package.
    assert {"LICENSE", "exporter/systemd/vgdrift.service", "exporter/systemd/config.example.yml",
            "exporter/ocf/guard", "exporter/ocf/health", "alerts/vgdrift.rules.yml", "alerts/RUNBOOK.md",
            "grafana/vgdrift.json", "debian/rules", "exporter/vgdrift/demo/README"} <= names
    wheel = dist / f"vgdrift-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel) as z:
        tops = {n.split("/", 1)[0] for n in z.namelist()}
        assert tops == {"vgdrift", f"vgdrift-{version}.dist-info"}, tops
        licences = [n for n in z.namelist() if n.startswith(f"vgdrift-{version}.dist-info/")
                    and n.endswith("/LICENSE")]
        assert len(licences) == 1 and z.read(licences[0]) == (ROOT / "LICENSE").read_bytes()
        meta = z.read(f"vgdrift-{version}.dist-info/METADATA").decode()
    assert re.search(rf"^Version: {re.escape(version)}$", meta, re.M)
    assert re.search(r"^License-File: LICENSE$", meta, re.M)
    runtime = {re.split(r"[ (<>=;]", line[len("Requires-Dist: "):])[0].lower()
               for line in meta.splitlines() if line.startswith("Requires-Dist: ") and "extra ==" not in line}
    assert runtime == {"prometheus-client", "pyyaml", "bcrypt"}
    assert "Apache License" in (ROOT / "LICENSE").read_text()[:200]
    # Installed from the wheel alone (dependencies: Debian's, no index), the
    # CLI and the demo work with no checkout anywhere near.
    venv = tmp_path / "venv"
    run(["/usr/bin/python3", "-m", "venv", "--system-site-packages", str(venv)])
    run([str(venv / "bin" / "pip"), "install", "-q", "--no-index", "--no-deps", str(wheel)], cwd="/")
    shutil.rmtree(src)
    r = run([str(venv / "bin" / "vgdrift"), "--version"], cwd="/")
    assert r.stdout.strip() == f"vgdrift {version}"
    r = run([str(venv / "bin" / "python"), "-I", "-m", "vgdrift.demo", str(tmp_path / "demo"), "--check"], cwd="/")
    assert dict(re.findall(r"^(demo_\w+) +(\w+) ", r.stdout, re.M)) == {"demo_data": "drift", "demo_logs": "in_sync"}


# --- the package: build, lintian, install, use, purge -----------------------

def deb_problem(root=True):
    if os.environ.get("VGDRIFT_SKIP_DEB") == "1":
        return "VGDRIFT_SKIP_DEB=1"
    if root and os.geteuid() != 0:
        return "installing the Debian package needs root"
    if not os.path.exists("/etc/debian_version"):
        return "the Debian package needs Debian"
    for tool in ("dpkg-buildpackage", "dh", "lintian", "apt-get"):
        if not shutil.which(tool, path=CLEAN_ENV["PATH"]):
            return f"building the Debian package needs {tool} (make system installs the build dependencies)"
    r = subprocess.run(["/usr/bin/python3", "-c", "import build, setuptools, venv, prometheus_client, yaml, bcrypt"],
                       capture_output=True, text=True, env=CLEAN_ENV, cwd="/")
    if r.returncode != 0:
        return "Debian's python3 lacks a build dependency (make system installs them): " + \
            (r.stderr.strip().splitlines() or ["?"])[-1]
    return None


def skip_or_fail(problem):
    if os.environ.get("VGDRIFT_SKIP_LAB") == "1" or os.environ.get("VGDRIFT_SKIP_DEB") == "1":
        pytest.skip(problem)
    pytest.fail(problem + "; set VGDRIFT_SKIP_DEB=1 to skip the package tests", pytrace=False)


def installed_version():
    r = run(["dpkg-query", "-W", "-f", "${Status} ${Version}", "vgdrift"], check=False)
    if r.returncode != 0 or "install ok installed" not in r.stdout:
        return None
    return r.stdout.split()[-1]


def purge():
    run(["apt-get", "purge", "-y", "-q", "vgdrift"],
        env=dict(CLEAN_ENV, DEBIAN_FRONTEND="noninteractive"))


@pytest.fixture(scope="module")
def deb(tmp_path_factory):
    """The built .deb's directory, with the package installed from it;
    purged afterwards even when a test failed."""
    problem = deb_problem()
    if problem:
        skip_or_fail(problem)
    already = installed_version()
    if already is not None:
        pytest.fail(f"a vgdrift package ({already}) is installed on this machine: these tests would purge it "
                    "(apt-get purge vgdrift first)", pytrace=False)
    out = tmp_path_factory.mktemp("deb")
    run([str(DEBIAN / "build-deb"), str(out)])
    debs = sorted(out.glob("vgdrift_*.deb"))
    assert [d.name for d in debs] == [f"vgdrift_{source_version()}_all.deb"]
    assert not list((out).glob("src")), "build-deb leaves its copy of the tree behind"
    try:
        # The README's command, run where the .deb is.
        run(["apt-get", "install", "-y", "-q", f"./{debs[0].name}"],
            cwd=out, env=dict(CLEAN_ENV, DEBIAN_FRONTEND="noninteractive"))
        yield out
    finally:
        if installed_version() is not None:
            purge()


def test_lintian_reports_no_errors_or_warnings(deb):
    changes = next(deb.glob("vgdrift_*.changes"))
    r = run(["lintian", "--pedantic", "-I", "-E", "--fail-on", "error,warning", changes.name],
            cwd=deb, check=False)
    tags = [line for line in r.stdout.splitlines() if re.match(r"[EW]: ", line)]
    assert r.returncode == 0 and not tags, r.stdout + r.stderr
    # Every other tag lintian shows is overridden, with the reason, in
    # debian/vgdrift.lintian-overrides (which says why this one is not).
    shown = [line for line in r.stdout.splitlines() if re.match(r"[IPX]: ", line)
             and " package-supports-alternative-init-but-no-init.d-script " not in line]
    assert not shown, shown


def test_installed_version_and_files(deb):
    assert installed_version() == source_version()
    r = run(["/usr/bin/vgdrift", "--version"], cwd="/")
    assert r.stdout.strip() == f"vgdrift {source_version()}"
    # Debian's python3 and its dist-packages: nothing from the checkout or PyPI.
    r = run(["/usr/bin/python3", "-I", "-c", "import vgdrift, prometheus_client, yaml, bcrypt; "
             "print(vgdrift.__file__, prometheus_client.__file__, yaml.__file__, bcrypt.__file__)"], cwd="/")
    for path in r.stdout.split():
        assert path.startswith("/usr/lib/python3/dist-packages/"), path
    assert Path("/usr/bin/vgdrift").read_text().splitlines()[0] == "#!/usr/bin/python3"
    listed = set(run(["dpkg", "-L", "vgdrift"]).stdout.split())
    expected = {"/usr/bin/vgdrift", "/etc/vgdrift/config.yml", "/usr/share/man/man1/vgdrift.1.gz",
                "/usr/share/vgdrift/alerts/vgdrift.rules.yml", "/usr/share/vgdrift/alerts/RUNBOOK.md",
                "/usr/share/vgdrift/grafana/vgdrift.json", "/usr/share/doc/vgdrift/copyright"}
    expected |= {f"/usr/lib/ocf/resource.d/vgdrift/{a}" for a in AGENTS}
    expected |= {f"/usr/share/vgdrift/alerts/tests/{p.name}" for p in (ROOT / "alerts" / "tests").glob("*.yml")}
    assert expected <= listed, sorted(expected - listed)
    units = {u for u in listed if re.fullmatch(r"(/usr)?/lib/systemd/system/vgdrift[^/]*", u)}
    assert {os.path.basename(u) for u in units} == set(UNITS)
    # The example configuration is a conffile: an admin's edits survive upgrades.
    conffiles = run(["dpkg-query", "-W", "-f", "${Conffiles}", "vgdrift"]).stdout.split()
    assert "/etc/vgdrift/config.yml" in conffiles
    # ... and one the installed exporter accepts, as vgdrift.service passes it.
    run(["/usr/bin/python3", "-I", "-c", "from vgdrift.serve.config import load_file; "
         "load_file('/etc/vgdrift/config.yml')"], cwd="/")
    r = run(["man", "-w", "vgdrift"], check=False)
    assert r.stdout.strip() == "/usr/share/man/man1/vgdrift.1.gz", r.stdout + r.stderr


def test_units_enabled_and_started_by_nothing(deb):
    wants = [str(p) for p in Path("/etc/systemd/system").rglob("vgdrift*")]
    assert wants == [], wants
    if os.path.isdir("/run/systemd/system") and shutil.which("systemctl"):
        for unit in UNITS:
            r = run(["systemctl", "is-active", unit], check=False)
            assert r.stdout.strip() == "inactive", (unit, r.stdout)


def test_demo_check_from_the_installed_files(deb, tmp_path):
    r = run(["/usr/bin/python3", "-I", "-m", "vgdrift.demo", str(tmp_path / "demo"), "--check"], cwd=tmp_path)
    rows = dict(re.findall(r"^(demo_\w+) +(\w+) ", r.stdout, re.M))
    assert rows == {"demo_data": "drift", "demo_logs": "in_sync"}, r.stdout
    assert "exit code 1" in r.stdout


@pytest.mark.parametrize("agent", AGENTS)
def test_installed_agent_meta_data(deb, agent):
    path = f"/usr/lib/ocf/resource.d/vgdrift/{agent}"
    assert os.access(path, os.X_OK)
    r = run([path, "meta-data"], env=dict(CLEAN_ENV, OCF_ROOT="/usr/lib/ocf"), cwd="/")
    doc = ET.fromstring(r.stdout)
    assert doc.tag == "resource-agent" and doc.get("name") == agent
    assert {a.get("name") for a in doc.iter("action")} >= {"start", "stop", "monitor", "meta-data"}
    dtd = "/usr/share/resource-agents/ra-api-1.dtd"
    if shutil.which("xmllint") and os.path.exists(dtd):
        run(["xmllint", "--noout", "--dtdvalid", dtd, "-"], input=r.stdout)


def test_installed_rules_check_with_promtool(deb):
    if not shutil.which("promtool", path=CLEAN_ENV["PATH"]):
        pytest.fail("promtool missing (apt install prometheus)", pytrace=False)
    rules = "/usr/share/vgdrift/alerts/vgdrift.rules.yml"
    r = run(["promtool", "check", "rules", rules])
    assert "SUCCESS" in r.stdout + r.stderr
    # The rules' own unit tests, as installed (they name ../vgdrift.rules.yml).
    tests = sorted(str(p) for p in Path("/usr/share/vgdrift/alerts/tests").glob("*.yml"))
    assert tests
    run(["promtool", "test", "rules", *tests], cwd="/usr/share/vgdrift/alerts/tests")


def test_installed_units_verify(deb):
    if not shutil.which("systemd-analyze", path=CLEAN_ENV["PATH"]):
        pytest.skip("no systemd-analyze on this machine (the package does not need systemd)")
    units = [str(p) for name in UNITS for p in (Path("/lib/systemd/system") / name,) if p.exists()]
    assert len(units) == len(UNITS), units
    # Works without systemd running; fails on a unit whose ExecStart binary
    # does not exist, or on unknown or misspelt settings.
    r = run(["systemd-analyze", "verify", *units], check=False)
    ours = [line for line in r.stderr.splitlines() if "vgdrift" in line]
    assert r.returncode == 0 and not ours, r.stderr


def test_purge_removes_everything(deb):
    purge()
    assert installed_version() is None
    for path in ("/usr/bin/vgdrift", "/etc/vgdrift", "/usr/lib/ocf/resource.d/vgdrift", "/usr/share/vgdrift",
                 "/usr/lib/python3/dist-packages/vgdrift"):
        assert not os.path.exists(path), path
    # The venv the other tests run is untouched.
    r = subprocess.run([sys.executable, "-c", "import vgdrift; print(vgdrift.__file__)"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "/usr/lib/python3/dist-packages" not in r.stdout, r.stdout + r.stderr
