"""Issue 9: "I cannot tell" is reported, never turned into silence.

- a cache file or directory that cannot be read keeps its VGs, in state
  unknown (check exits 3; serve keeps the series, over real HTTP);
- a devices directory that cannot be listed is a permission error;
- the scan loop survives exceptions, and /-/ready notices a stale scan;
- out-of-range flags and setup mistakes fail at start, in one line.

Permission cases run vgdrift as root without the capabilities that bypass
file permissions (setpriv), on copies of the real LVM2 fixtures."""

import json
import logging
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from helpers import drift_node, free_port, local_get
from samples import all_states_result, vg_report
from test_serve import restore_logging  # noqa: F401  (autouse fixture)
from vgdrift import cli, model
from vgdrift.serve.config import ConfigError, ServeConfig, load_file, parse_interval, parse_timeout
from vgdrift.serve.loop import ScanLoop
from vgdrift.serve.main import EXIT_CONFIG, check_worker_interpreter, run_serve
from vgdrift.serve.scanstats import ScanStats, keep_unknown
from vgdrift.serve.webconfig import load_web_config

HERE = Path(__file__).resolve().parent
FIXTURES = HERE / "fixtures" / "drift"
EXPORTER = HERE.parent / "exporter"
NO_DAC = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search"]


def needs_root():
    if os.geteuid() != 0:
        pytest.skip("needs root to drop the capabilities that bypass permissions")


@pytest.fixture
def node(tmp_path):
    """A cache dir with the fixture's vg0 backup and a devices dir with its two PVs."""
    cache, devs = drift_node(tmp_path)
    for p in [tmp_path, cache, devs] + list(cache.iterdir()) + list(devs.iterdir()):
        os.chmod(p, 0o755 if p.is_dir() else 0o644)
    yield cache, devs
    for p in (cache, devs, cache / "vg0"):
        if p.exists():
            os.chmod(p, 0o755 if p.is_dir() else 0o644)


def check(cache, devs):
    r = subprocess.run(NO_DAC + [sys.executable, "-m", "vgdrift", "check", "--format", "json",
                                 "--cache-dir", str(cache), "--devices", str(devs / "*.img")],
                       capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(EXPORTER)),
                       timeout=60)
    assert "Traceback" not in r.stderr
    return r.returncode, json.loads(r.stdout), r.stderr


# --- check --------------------------------------------------------------------

def test_check_reports_a_vg_whose_cache_file_is_unreadable_as_unknown(node):
    needs_root()
    cache, devs = node
    code, doc, _ = check(cache, devs)
    assert code in (0, 1, 2) and doc["vgs"][0]["state"] != "unknown"      # readable: a real answer
    os.chmod(cache / "vg0", 0)
    code, doc, err = check(cache, devs)
    assert code == 3 == doc["exit_code"]
    (vg,) = doc["vgs"]
    assert vg["name"] == "vg0" and vg["state"] == "unknown" and vg["reason"] == "permission"
    assert vg["actions"][0]["reason"].startswith("do not activate")
    assert [e["vg"] for e in doc["errors"]] == ["vg0"]
    assert "Permission denied" in err


def test_check_treats_an_unlistable_devices_directory_as_a_permission_error(node):
    needs_root()
    cache, devs = node
    os.chmod(devs, 0)
    code, doc, err = check(cache, devs)
    assert code == 3 == doc["exit_code"]
    assert any(e["reason"] == "permission" and e["where"] == str(devs) for e in doc["errors"])
    assert "cannot list devices" in err


# --- serve over real HTTP ----------------------------------------------------------

SERVE_CHILD = """
import sys
from vgdrift.serve import config, main
cfg = config.ServeConfig(cache_dirs=(sys.argv[1],), device_globs=(sys.argv[2],),
                         listen_address="127.0.0.1:" + sys.argv[3], interval=0.2, timeout=2.0)
sys.exit(main.run_serve(cfg))
"""


def series(body, name):
    out = {}
    for line in body.decode().splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            key, _, value = line.rpartition(" ")
            out[key] = float(value)
    return out


def wait_metrics(port, predicate, what, timeout=30):
    deadline = time.monotonic() + timeout
    body = b""
    while time.monotonic() < deadline:
        try:
            status, body = local_get(port, "/metrics")
            if status == 200 and predicate(body):
                return body
        except OSError:
            pass
        time.sleep(0.1)
    pytest.fail("%s: never seen; last /metrics:\n%s" % (what, body.decode()[:3000]))


def unknown_vg0(body):
    return series(body, "vgdrift_vg_state").get('vgdrift_vg_state{state="unknown",vg="vg0"}') == 1.0


@pytest.mark.parametrize("what", ["file", "directory"])
def test_serve_keeps_a_vg_it_cannot_read_any_more_as_unknown(node, tmp_path, what):
    needs_root()
    cache, devs = node
    port = free_port()
    log_path = tmp_path / "serve.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(NO_DAC + [sys.executable, "-c", SERVE_CHILD, str(cache), str(devs / "*.img"),
                                          str(port)], env=dict(os.environ, PYTHONPATH=str(EXPORTER)),
                                stdout=subprocess.DEVNULL, stderr=log)
    try:
        body = wait_metrics(port, lambda b: b'vgdrift_vg_state{state="in_sync",vg="vg0"} 1.0' in b
                            or b'vgdrift_vg_state{state="drift",vg="vg0"} 1.0' in b, "vg0 scanned")
        assert series(body, "vgdrift_last_scan_success") == {"vgdrift_last_scan_success": 1.0}
        os.chmod(cache / "vg0" if what == "file" else cache, 0)
        body = wait_metrics(port, unknown_vg0, "vg0 unknown")
        assert series(body, "vgdrift_last_scan_success") == {"vgdrift_last_scan_success": 0.0}
        assert series(body, "vgdrift_scan_errors_total")['vgdrift_scan_errors_total{reason="permission"}'] >= 1
        # Its identity stays: the cached side it was last read with.
        assert 'vgdrift_vg_seqno{source="cache",vg="vg0"}' in series(body, "vgdrift_vg_seqno")
        assert local_get(port, "/-/ready")[0] == 200        # scans complete: ready, and honest
        time.sleep(1.0)                                      # a few more scans: still there, logged once
        assert unknown_vg0(local_get(port, "/metrics")[1])
        os.chmod(cache / "vg0" if what == "file" else cache, 0o644 if what == "file" else 0o755)
        wait_metrics(port, lambda b: not unknown_vg0(b) and b'vg="vg0"' in b, "vg0 back")
    finally:
        proc.terminate()
        proc.wait(30)
    lines = log_path.read_text().splitlines()
    went_unknown = [line for line in lines if "msg=\"VG state\"" in line and "state=unknown" in line]
    assert len(went_unknown) == 1 and "level=error" in went_unknown[0], lines
    # The error itself: once when it starts, once (info) when it clears.
    started = [line for line in lines if 'msg="scan error"' in line and "level=error" in line]
    assert len(started) == 1 and "reason=permission" in started[0], lines
    assert sum('msg="scan error cleared"' in line for line in lines) == 1, lines
    assert "Traceback" not in log_path.read_text()


def test_serve_reports_an_unlistable_devices_directory_as_a_failed_scan(node):
    needs_root()
    cache, devs = node
    os.chmod(devs, 0)
    port = free_port()
    proc = subprocess.Popen(NO_DAC + [sys.executable, "-c", SERVE_CHILD, str(cache), str(devs / "*.img"),
                                      str(port)], env=dict(os.environ, PYTHONPATH=str(EXPORTER)),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        body = wait_metrics(port, lambda b: b"vgdrift_last_scan_success" in b, "a finished scan")
        assert series(body, "vgdrift_last_scan_success") == {"vgdrift_last_scan_success": 0.0}
        assert series(body, "vgdrift_scan_errors_total")['vgdrift_scan_errors_total{reason="permission"}'] >= 1
    finally:
        proc.terminate()
        proc.wait(30)


def test_a_vg_whose_directory_was_listed_and_file_removed_goes():
    before = all_states_result(vgs=(vg_report(model.DRIFT, "vg0"),))
    listed = all_states_result(vgs=(), errors=())
    assert keep_unknown(before, listed).vgs == ()
    unlisted = all_states_result(vgs=(), errors=(model.ErrorItem(
        model.REASON_PERMISSION, "/etc/lvm/backup", "/etc/lvm/backup: cannot list: Permission denied"),))
    (vg,) = keep_unknown(before, unlisted).vgs
    assert vg.name == "vg0" and vg.state == model.UNKNOWN and vg.reason == "permission"
    assert vg.disk is None and vg.pvs == () and vg.cache == before.vgs[0].cache
    stats = ScanStats()
    stats.record(before)
    assert stats.record(unlisted).vgs == (vg,)
    assert stats.record(unlisted).vgs == (vg,)            # stays while the directory stays unreadable
    assert stats.record(listed).vgs == ()


# --- the scan loop ------------------------------------------------------------------

class Exploding:
    def __init__(self, config):
        self.calls = 0

    def scan(self):
        self.calls += 1
        raise ValueError("boom %d" % min(self.calls, 2))   # the same error from the second scan on

    def close(self):
        pass


def test_an_exception_in_a_scan_is_a_failed_scan_and_the_loop_goes_on(caplog):
    stats = ScanStats()
    stats.record(all_states_result())
    logger = logging.getLogger("vgdrift")
    logger.propagate = True
    loop = ScanLoop(stats, Exploding, ServeConfig(interval=0.1))
    with caplog.at_level(logging.DEBUG, logger="vgdrift.serve"):
        loop.start()
        deadline = time.monotonic() + 30
        while stats.generation < 6 and time.monotonic() < deadline:
            time.sleep(0.02)
        loop.stop(5)
    assert not loop.is_alive() and stats.generation >= 6
    snap = stats.snapshot()
    assert not snap.last_scan_success
    assert snap.errors[model.ERROR_REASONS.index(model.REASON_INTERNAL)] == snap.scans - 1
    assert snap.result.vgs == all_states_result().vgs          # the last real answer stays exported
    failed = [r for r in caplog.records if r.getMessage().startswith("scan failed")]
    with_trace = [r for r in failed if r.exc_info]
    assert len(with_trace) == 2                                # boom 1 and boom 2, once each
    assert len(failed) >= 5


def test_a_huge_interval_does_not_kill_the_loop():
    stats = ScanStats()

    class Fine:
        def __init__(self, config):
            pass

        def scan(self):
            return all_states_result()

        def close(self):
            pass

    died = threading.Event()
    loop = ScanLoop(stats, Fine, ServeConfig(interval=9999999999.0 * 604800), on_death=died.set)
    loop.start()
    deadline = time.monotonic() + 30
    while stats.generation < 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.2)                            # where Event.wait used to raise OverflowError
    assert loop.is_alive() and not died.is_set()
    loop.stop(5)
    assert not loop.is_alive()


def test_ready_goes_503_when_the_last_scan_is_older_than_5_intervals():
    stats = ScanStats()
    assert stats.readiness(30.0) == "no scan has finished yet"
    stats.record(all_states_result())
    now = time.monotonic()
    assert stats.readiness(30.0, now=now + 149) == ""
    assert "more than 5 scan intervals" in stats.readiness(30.0, now=now + 151)


def test_ready_endpoint_follows_staleness_over_http(tmp_path):
    from test_server import request
    from vgdrift.serve.main import build_exposition
    from vgdrift.serve.server import Settings, make_server
    from vgdrift.serve.webconfig import WebConfig
    stats = ScanStats()
    stats.record(all_states_result())
    interval = [3600.0]
    server = make_server("127.0.0.1:0", build_exposition(stats),
                         lambda: stats.readiness(interval[0]) or True, Settings("/metrics", WebConfig()))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        assert request(server, "/-/ready")[0] == 200
        interval[0] = 1e-9                      # as if 5 intervals had passed without a scan
        status, _, body = request(server, "/-/ready")
        assert status == 503 and b"scan intervals" in body
    finally:
        server.shutdown()
        server.server_close()


# --- flags and setup mistakes ----------------------------------------------------------

@pytest.mark.parametrize("argv", [
    ["check", "--timeout", "3e9"], ["check", "--timeout", "3601"], ["check", "--timeout", "inf"],
    ["serve", "--scan.interval", "9999999999w"], ["serve", "--scan.interval", "25h"],
    ["serve", "--scan.interval", "50ms"], ["serve", "--timeout", "3e9"],
    ["serve", "--scan.interval", "9" * 400 + "s"],
])
def test_out_of_range_flags_are_flag_errors(argv, capsys):
    assert cli.main(argv) == 3
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_bounds_of_durations(tmp_path):
    assert parse_interval("100ms") == 0.1 and parse_interval("24h") == 86400
    assert parse_timeout("1h") == 3600 and parse_timeout("250ms") == 0.25
    for bad in ("99ms", "24h1s", "1y"):
        with pytest.raises(ValueError):
            parse_interval(bad)
    with pytest.raises(ValueError):
        parse_timeout("1h1s")
    path = tmp_path / "config.yml"
    path.write_text("scan: {timeout: 2h}\n")
    with pytest.raises(ConfigError, match="scan.timeout"):
        load_file(str(path))


@pytest.mark.parametrize("text, key", [
    ("", "empty"), ("# only a comment\n", "empty"), ("tls_server_config:\n", "tls_server_config"),
    ("basic_auth_users: {}\n", "basic_auth_users"), ("basic_auth_users:\n", "basic_auth_users"),
    ("http_server_config: {}\n", "http_server_config"),
])
def test_a_web_config_that_configures_nothing_is_an_error(tmp_path, text, key):
    path = tmp_path / "web.yml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_web_config(str(path))
    assert key in str(err.value) and str(path) in str(err.value) and "\n" not in str(err.value)


def test_a_worker_interpreter_that_cannot_be_executed_refuses_the_start(tmp_path, monkeypatch, capsys):
    fake = tmp_path / "python3"
    fake.write_text("#!/bin/sh\nexit 0\n")
    os.chmod(fake, 0o644)                        # not executable: as a pyenv Python under /root
    monkeypatch.setattr(sys, "executable", str(fake))
    problem = check_worker_interpreter()
    assert "cannot execute" in problem and str(fake) in problem and "\n" not in problem
    port = free_port()
    config = ServeConfig(listen_address="127.0.0.1:%d" % port)
    assert run_serve(config) == EXIT_CONFIG      # the real scanner: checked before listening
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(fake) in err
    with pytest.raises(OSError):
        local_get(port, "/-/healthy", timeout=1)


def test_the_real_interpreter_passes_the_start_check():
    assert check_worker_interpreter() == ""


def test_serve_main_refuses_an_empty_web_config_in_one_line(tmp_path, capsys):
    web = tmp_path / "web.yml"
    web.write_text("\n")
    config = ServeConfig(listen_address="127.0.0.1:%d" % free_port(), web_config_file=str(web))
    assert run_serve(config, scanner_factory=None) == EXIT_CONFIG
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "empty" in err


def test_config_does_not_import_the_http_server():
    code = textwrap.dedent("""
        import sys
        import vgdrift.serve.config
        print("vgdrift.serve.server" in sys.modules)
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       env=dict(os.environ, PYTHONPATH=str(EXPORTER)), timeout=60)
    assert r.stdout.strip() == "False", r.stderr

