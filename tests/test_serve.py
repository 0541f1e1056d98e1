"""`serve` as a real process: run_serve in a `python3 -c` child with a fake
scanner injected (the disk side is tested elsewhere)."""

import argparse
import io
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

import vgdrift
from helpers import free_port, local_get
from vgdrift.serve.config import ServeConfig
from vgdrift.serve.logs import JsonFormatter, LogfmtFormatter, setup_logging
from vgdrift.serve.main import EXIT_CONFIG, EXIT_RUNTIME, add_serve_arguments, run_serve, serve_main

PYTHONPATH = os.pathsep.join([str(Path(vgdrift.__file__).resolve().parents[1]),
                              str(Path(__file__).resolve().parent)])

# The child: argv[1] is a JSON object with the port, the fake scan's duration
# and optionally a config file (then run like `vgdrift serve --config.file`).
CHILD = """
import json, sys, time
from vgdrift.serve import config
from vgdrift.serve import main as serve
from samples import all_states_result

opts = json.loads(sys.argv[1])

class FakeScanner:
    def __init__(self, cfg):
        print("scanner for", ",".join(cfg.cache_dirs), file=sys.stderr, flush=True)
    def scan(self):
        time.sleep(opts["scan_seconds"])
        return all_states_result(started=time.time())
    def close(self):
        pass

if opts.get("config_file"):
    import argparse
    parser = argparse.ArgumentParser()
    serve.add_serve_arguments(parser)
    ns = parser.parse_args(["--config.file", opts["config_file"]])
    load = lambda: config.load_config(ns)
    cfg = load()
else:
    load = None
    cfg = config.ServeConfig(listen_address="127.0.0.1:%d" % opts["port"], interval=0.2)
sys.exit(serve.run_serve(cfg, scanner_factory=FakeScanner, reload_config=load))
"""


def wait_for(port, path, status=200, timeout=15.0):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = local_get(port, path)
            if last[0] == status:
                return last
        except OSError as e:
            last = e
        time.sleep(0.05)
    pytest.fail("%s never answered %d: %r" % (path, status, last))


class Child:
    def __init__(self, tmp_path, scan_seconds=0.0, config_file=None, port=None):
        self.port = port or free_port()
        self.stderr_path = tmp_path / "stderr.log"
        opts = {"port": self.port, "scan_seconds": scan_seconds, "config_file": config_file}
        env = dict(os.environ, PYTHONPATH=PYTHONPATH)
        with open(self.stderr_path, "wb") as stderr:
            self.proc = subprocess.Popen([sys.executable, "-c", CHILD, json.dumps(opts)], env=env,
                                         stdout=subprocess.DEVNULL, stderr=stderr)

    @property
    def stderr(self):
        return self.stderr_path.read_text()

    def stop_within(self, signum, seconds):
        start = time.monotonic()
        self.proc.send_signal(signum)
        try:
            code = self.proc.wait(timeout=30)
        finally:
            self.kill()
        return code, time.monotonic() - start <= seconds

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture(autouse=True)
def restore_logging():
    """run_serve and setup_logging point the "vgdrift" logger at this test's
    captured stderr; don't leave it there for the next test."""
    logger = logging.getLogger("vgdrift")
    saved = (list(logger.handlers), logger.level, logger.propagate)
    yield
    logger.handlers[:] = saved[0]
    logger.setLevel(saved[1])
    logger.propagate = saved[2]


@pytest.fixture
def child(tmp_path):
    children = []

    def make(**kwargs):
        c = Child(tmp_path, **kwargs)
        children.append(c)
        return c

    yield make
    for c in children:
        c.kill()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_promptly(child, signum):
    c = child()
    wait_for(c.port, "/-/ready")
    status, body = local_get(c.port, "/metrics")
    assert status == 200 and b'vgdrift_vg_state{state="drift",vg="vg_drift"} 1.0' in body
    code, prompt = c.stop_within(signum, 2.0)
    assert code == 0 and prompt, c.stderr
    assert "Traceback" not in c.stderr


def test_stops_promptly_in_the_middle_of_a_hung_scan(child):
    c = child(scan_seconds=60)
    wait_for(c.port, "/-/healthy")
    assert local_get(c.port, "/-/ready")[0] == 503          # the first scan has not finished
    assert b"vgdrift_vg_state{" not in local_get(c.port, "/metrics")[1]
    code, prompt = c.stop_within(signal.SIGTERM, 2.0)
    assert code == 0 and prompt, c.stderr


def test_sighup_reloads_and_keeps_the_old_config_when_invalid(child, tmp_path):
    port = free_port()
    config_file = tmp_path / "config.yml"
    base = "web: {listen_address: '127.0.0.1:%d', telemetry_path: %s}\nscan: {interval: 200ms}\n"
    config_file.write_text(base % (port, "/metrics"))
    c = child(config_file=str(config_file), port=port)
    wait_for(port, "/metrics")

    config_file.write_text(base % (port, "/vg-metrics") + "cache_dirs: [/srv/other]\n")
    c.proc.send_signal(signal.SIGHUP)
    wait_for(port, "/vg-metrics")
    assert local_get(port, "/metrics")[0] == 404
    deadline = time.monotonic() + 10
    while "scanner for /srv/other" not in c.stderr and time.monotonic() < deadline:
        time.sleep(0.05)                            # new scan options: a new scanner
    assert "scanner for /srv/other" in c.stderr

    config_file.write_text("scan: {interval: never}\n")
    c.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while "reload failed" not in c.stderr and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "reload failed" in c.stderr and "scan.interval" in c.stderr
    assert local_get(port, "/vg-metrics")[0] == 200       # still the previous configuration
    code, prompt = c.stop_within(signal.SIGTERM, 2.0)
    assert code == 0 and prompt, c.stderr


def serve_args(**kwargs):
    parser = argparse.ArgumentParser()
    for flag in ("--cache-dir", "--devices", "--vg"):
        parser.add_argument(flag, action="append")
    parser.add_argument("--timeout", type=float)
    add_serve_arguments(parser)
    ns = parser.parse_args([])
    vars(ns).update(kwargs)
    return ns


def assert_not_listening(port):
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()


def test_invalid_config_at_start(tmp_path, capsys):
    port = free_port()
    bad = tmp_path / "config.yml"
    bad.write_text("web: {listen_address: '127.0.0.1:%d'}\nscan: {timeout: -1s}\n" % port)
    assert serve_main(serve_args(config_file=str(bad))) == EXIT_CONFIG
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(bad) in err and "scan.timeout" in err
    assert_not_listening(port)


def test_invalid_web_config_at_start(tmp_path, capsys):
    port = free_port()
    web = tmp_path / "web.yml"
    web.write_text("tls_server_config: {cert_file: /nonexistent.crt, key_file: /nonexistent.key}\n")
    config = ServeConfig(listen_address="127.0.0.1:%d" % port, web_config_file=str(web))
    assert run_serve(config, scanner_factory=None) == EXIT_CONFIG
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cert_file" in err
    assert_not_listening(port)


def test_port_in_use(capsys):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        address = "127.0.0.1:%d" % busy.getsockname()[1]
        assert run_serve(ServeConfig(listen_address=address), scanner_factory=None) == EXIT_RUNTIME
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and address in err


def record(**extra):
    rec = logging.LogRecord("vgdrift.serve", logging.WARNING, __file__, 1, "VG %s", ("state",), None)
    for k, v in extra.items():
        setattr(rec, k, v)
    return rec


def test_logfmt():
    line = LogfmtFormatter().format(record(vg="vg0", reason='has "quotes" and spaces', n=3, empty=""))
    assert line.startswith("ts=") and "level=warn" in line and 'msg="VG state"' in line
    assert 'vg=vg0' in line and 'reason="has \\"quotes\\" and spaces"' in line
    assert "n=3" in line and 'empty=""' in line and "\n" not in line


def test_json_logs():
    try:
        raise ValueError("boom\nsecond line")
    except ValueError:
        rec = record(vg="vg0")
        rec.exc_info = sys.exc_info()
    doc = json.loads(JsonFormatter().format(rec))
    assert doc["level"] == "warn" and doc["msg"] == "VG state" and doc["vg"] == "vg0"
    assert doc["err"].startswith("ValueError: boom") and "Traceback" in doc["trace"]
    stream = io.StringIO()
    setup_logging("error", "json", stream)
    logging.getLogger("vgdrift.x").warning("hidden")
    logging.getLogger("vgdrift.x").error("shown")
    assert [json.loads(line)["msg"] for line in stream.getvalue().splitlines()] == ["shown"]


def test_unknown_vgs_are_logged_when_they_appear_and_go(caplog):
    """Discovery's findings (issue 11) in the log: once when a VG unknown
    to this node appears, once when it goes, not at every scan."""
    import logging

    from samples import all_states_result
    from vgdrift.serve.loop import ScanLoop
    from vgdrift.serve.scanstats import ScanStats
    loop = ScanLoop(ScanStats(), lambda cfg: None, ServeConfig())
    with caplog.at_level(logging.INFO, logger="vgdrift.serve"):
        loop._log_result(all_states_result())
        loop._log_result(all_states_result())
        loop._log_result(all_states_result(unknown_vgs=()))
    unknown = [(r.levelname, r.getMessage(), getattr(r, "vg", None)) for r in caplog.records
               if "unknown to this node" in r.getMessage()]
    assert unknown == [("WARNING", "VG unknown to this node", "vg_new"),
                       ("INFO", "VG no longer unknown to this node", "vg_new")]
