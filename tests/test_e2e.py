"""End to end: the lab's two nodes, `vgdrift serve` on node B, a real
Prometheus (Debian package `prometheus`) scraping it every second with the
project's rules, and a real Alertmanager (Debian package
`prometheus-alertmanager`) notifying a webhook receiver run by this test.
Everything listens on 127.0.0.1, on free ports, with its state in temporary
directories.

Scenario: node A changes the VG -> LVMVGMetadataDrift reaches the webhook
with the right vg and instance; while it is firing, every query of the
Grafana dashboard returns data from this Prometheus; node B runs
vgcfgbackup -> the alert resolves; a PV of node B is detached ->
LVMVGFailoverUnsafe (state partial) fires.  Every process is stopped and
every loop device detached at the end, even on failure (fixture teardown;
the `lab` fixture checks no loop is left).

The rules are a copy of alerts/vgdrift.rules.yml with the same expressions
and only `for:` shortened (see rules_copy()).  No range window is changed:
the VG state alerts use last_over_time(...[5m]) == 1, which follows the
last sample, so they start and resolve with the first scrape that changes
the state, not 5 minutes later.

Prometheus and Alertmanager come from Debian packages that CI installs, so
a missing binary is a failure, not a skip.
"""

import http.server
import json
import math
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import yaml

from helpers import free_port, require_tool
from test_grafana import dashboard_queries

ROOT = Path(__file__).resolve().parent.parent
EXPORTER = ROOT / "exporter"
RULES = ROOT / "alerts" / "vgdrift.rules.yml"

JOB = "vgdrift"          # the job name the rules select (job="vgdrift")
VG = "e2e_vg"
WAIT = 60                # seconds: the most any one step may take
STOP_TIMEOUT = 10        # seconds between SIGTERM and SIGKILL

# `for:` in the test's copy of the rules.  Long enough that an alert passes
# through pending (several 1 s evaluations), short enough for a test.
# LVMVGMetadataDriftPersistent keeps its 4h: it is the same condition as
# LVMVGMetadataDrift escalated, and is not part of this scenario.
SHORT_FOR = "3s"
# Dashboard queries with data only in a fleet situation (test_e2e_fleet.py).
FLEET_ONLY = ("vg_uuid:vgdrift_vg_disk_seqno:max", "vgdrift_unknown_vg_info")
KEEP_FOR = {"LVMVGMetadataDriftPersistent"}


# ------------------------------------------------------------------ helpers

def http_get(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.status, r.read()


def wait_for(what, predicate, timeout=WAIT, interval=0.25, procs=()):
    """Poll `predicate` until it returns a truthy value (returned) or
    `timeout` passes (pytest.fail naming `what`).  Fails early when one of
    `procs` died."""
    deadline = time.monotonic() + timeout
    last_exc = None
    while True:
        for p in procs:
            p.check_alive()
        try:
            value = predicate()
            if value:
                return value
        except (OSError, ValueError, KeyError) as e:   # not up yet, bad answer
            last_exc = e
        if time.monotonic() > deadline:
            extra = f" (last error: {last_exc})" if last_exc else ""
            pytest.fail(f"timed out after {timeout}s waiting for {what}{extra}",
                        pytrace=False)
        time.sleep(interval)


class Proc:
    """A daemon we started, in its own process group, its output in a log
    file.  stop() is idempotent: SIGTERM, then SIGKILL after STOP_TIMEOUT,
    then SIGKILL to whatever is left in its process group (helpers it
    spawned)."""

    def __init__(self, name, argv, log_path, env=None):
        self.name = name
        self.argv = [str(a) for a in argv]
        self.log_path = Path(log_path)
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(self.argv, stdout=self._log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=env,
                                     start_new_session=True)
        self.pgid = self.proc.pid
        self.returncode = None
        self.killed = False

    def output(self, tail=4000):
        try:
            return self.log_path.read_text(errors="replace")[-tail:]
        except OSError:
            return ""

    def check_alive(self):
        if self.proc.poll() is not None:
            pytest.fail(f"{self.name} exited with {self.proc.returncode}:\n{self.output()}",
                        pytrace=False)

    def group_members(self):
        """Pids still in our process group (the daemon's children)."""
        out = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == self.pgid and fields[0] != "Z":
                out.append(int(entry))
        return out

    def stop(self):
        if self.returncode is None:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    self.killed = True
                    self.proc.kill()
                    self.proc.wait()
            self.returncode = self.proc.returncode
        try:
            os.killpg(self.pgid, signal.SIGKILL)   # only the group we created
        except (ProcessLookupError, PermissionError):
            pass
        if not self._log.closed:
            self._log.close()
        return self.returncode


class Webhook:
    """Alertmanager webhook receiver: collects every POSTed notification."""

    def __init__(self):
        self.notifications = []
        self.lock = threading.Lock()
        hook = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with hook.lock:
                    hook.notifications.append((time.monotonic(), json.loads(body)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/alerts"
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={"poll_interval": 0.1}, daemon=True)
        self.thread.start()

    def alerts(self, since=0.0):
        """Every alert of every notification received after `since`
        (time.monotonic()), in arrival order."""
        with self.lock:
            return [a for t, n in self.notifications if t >= since for a in n["alerts"]]

    def find(self, alertname, status, since=0.0, **labels):
        return [a for a in self.alerts(since)
                if a["labels"].get("alertname") == alertname and a["status"] == status
                and all(a["labels"].get(k) == v for k, v in labels.items())]

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def rules_copy(path):
    """alerts/vgdrift.rules.yml with `for:` shortened; everything else,
    expressions included, identical."""
    doc = yaml.safe_load(RULES.read_text())
    original = yaml.safe_load(RULES.read_text())
    for group in doc["groups"]:
        for rule in group["rules"]:
            if "alert" in rule and rule["alert"] not in KEEP_FOR:
                rule["for"] = SHORT_FOR
    def exprs(d):
        return [r["expr"] for g in d["groups"] for r in g["rules"]]
    assert exprs(doc) == exprs(original)
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


# ------------------------------------------------------------------ the stack

class Stack:
    """The daemons of one end-to-end run, on top of a lab with one VG:
    Alertmanager (to a webhook), exporters, Prometheus.  The fleet test
    starts two exporters on the same pieces."""

    def __init__(self, lab, tmp):
        self.lab = lab
        self.tmp = tmp
        self.procs = []
        self.webhook = None

    def start(self):
        self.start_alertmanager()
        # vgdrift serve on node B: its backup dir, its loops only.
        self.instance = f"127.0.0.1:{free_port()}"
        argv = ["--cache-dir", self.lab.b.backup_dir]
        for dev in self.lab.b.devices:
            argv += ["--devices", dev]
        self.serve = self.start_serve("vgdrift serve", self.instance, argv)
        prom_dir = self.tmp / "prometheus"
        prom_dir.mkdir()
        self.start_prometheus(rules_copy(prom_dir / "vgdrift.rules.yml"), [self.instance])
        return self

    def start_alertmanager(self):
        """Everything to the webhook, one group per alert."""
        alertmanager = require_tool("prometheus-alertmanager", "alertmanager",
                                    package="prometheus-alertmanager")
        self.webhook = Webhook()
        am_port = free_port()
        am_dir = self.tmp / "alertmanager"
        am_dir.mkdir()
        am_conf = am_dir / "alertmanager.yml"
        am_conf.write_text(yaml.safe_dump({
            "route": {"receiver": "webhook", "group_by": ["..."],
                      "group_wait": "1s", "group_interval": "1s",
                      "repeat_interval": "1m"},
            "receivers": [{"name": "webhook", "webhook_configs": [
                {"url": self.webhook.url, "send_resolved": True}]}],
        }))
        self.am_port = am_port
        self.am_url = f"http://127.0.0.1:{am_port}"
        self.am = self._start("alertmanager", [
            alertmanager, f"--config.file={am_conf}", f"--storage.path={am_dir / 'data'}",
            f"--web.listen-address=127.0.0.1:{am_port}", "--cluster.listen-address="])
        self._ready("alertmanager", self.am_url + "/-/ready", self.am)

    def start_serve(self, name, instance, args):
        proc = self._start(name, [sys.executable, "-m", "vgdrift", "serve", *args,
                                  "--web.listen-address", instance, "--scan.interval", "1s",
                                  "--timeout", "2"],
                           env=dict(os.environ, PYTHONPATH=str(EXPORTER)))
        self._ready(name, f"http://{instance}/metrics", proc)
        return proc

    def start_prometheus(self, rules, targets):
        """Scrape `targets` and evaluate `rules` every second."""
        prometheus = require_tool("prometheus", package="prometheus")
        prom_port = free_port()
        prom_dir = self.tmp / "prometheus"
        prom_dir.mkdir(exist_ok=True)
        prom_conf = prom_dir / "prometheus.yml"
        prom_conf.write_text(yaml.safe_dump({
            "global": {"scrape_interval": "1s", "scrape_timeout": "1s",
                       "evaluation_interval": "1s"},
            "rule_files": [str(rules)],
            "alerting": {"alertmanagers": [{"static_configs": [
                {"targets": [f"127.0.0.1:{self.am_port}"]}]}]},
            "scrape_configs": [{"job_name": JOB, "static_configs": [
                {"targets": sorted(targets)}]}],
        }))
        self.prom_url = f"http://127.0.0.1:{prom_port}"
        self.prom = self._start("prometheus", [
            prometheus, f"--config.file={prom_conf}", f"--storage.tsdb.path={prom_dir / 'data'}",
            f"--web.listen-address=127.0.0.1:{prom_port}"])
        self._ready("prometheus", self.prom_url + "/-/ready", self.prom)

    def _ready(self, name, url, proc):
        wait_for(f"{name} to answer {url}", lambda: http_get(url)[0] == 200, procs=[proc])

    def _start(self, name, argv, env=None):
        p = Proc(name, argv, self.tmp / f"{name.replace(' ', '-')}.log", env=env)
        self.procs.append(p)
        return p

    def close(self):
        errors = []
        for p in reversed(self.procs):      # prometheus first, alertmanager last
            try:
                p.stop()
            except Exception as e:           # keep stopping the others
                errors.append(f"{p.name}: {e}")
        if self.webhook is not None:
            self.webhook.stop()
        assert not errors, errors

    def logs(self):
        return "\n".join(f"--- {p.name} ({p.log_path}):\n{p.output(2000)}" for p in self.procs)

    # -- Prometheus HTTP API
    def query(self, expr):
        url = self.prom_url + "/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        try:
            _, body = http_get(url)
        except urllib.error.HTTPError as e:       # 400 for bad PromQL
            body = e.read()
        doc = json.loads(body)
        assert doc["status"] == "success", f"{expr}\n-> {doc}"
        return doc["data"]

    def wait_alert(self, alertname, status, since, timeout=WAIT, **labels):
        """The first such alert notified after `since`."""
        return wait_for(f"{alertname} {status} {labels} at the webhook\n{self.logs()}",
                        lambda: self.webhook.find(alertname, status, since, **labels),
                        timeout=timeout, procs=self.procs)[0]


@pytest.fixture
def stack(lab, tmp_path):
    s = Stack(lab, tmp_path)
    try:
        s.start()
        yield s
    finally:
        s.close()     # before the lab fixture detaches the loops


# ------------------------------------------------------------------ the test

def backup_seqno(node, vg):
    m = re.search(r"^\s*seqno = (\d+)$", node.read_backup(vg), re.M)
    return int(m.group(1))


def check_alert(alert, alertname, severity, instance, **labels):
    want = {"alertname": alertname, "severity": severity, "vg": VG,
            "instance": instance, "job": JOB, **labels}
    got = {k: alert["labels"].get(k) for k in want}
    assert got == want, alert


@pytest.fixture
def lab_vg(lab):
    """One VG over two shared disks, made on node A; node B's cache current."""
    d0, d1 = lab.add_disk("e2e0", 16), lab.add_disk("e2e1", 16)
    lab.a.lvm("pvcreate", d0.a, d1.a)
    lab.a.lvm("vgcreate", VG, d0.a, d1.a)
    lab.a.lvm("lvcreate", "-L", "4m", "-n", "lv1", VG)
    lab.b.vgcfgbackup(VG)
    return lab, d0, d1


def test_drift_alert_fires_and_resolves_then_unsafe_fires(lab_vg, stack):
    lab, d0, d1 = lab_vg
    sel = f'job="{JOB}", instance="{stack.instance}", vg="{VG}"'

    # The rules loaded, and Prometheus sees the VG in sync.
    def rules_health():
        groups = json.loads(http_get(stack.prom_url + "/api/v1/rules")[1])["data"]["groups"]
        return {r["name"]: r["health"] for g in groups for r in g["rules"]}
    wait_for("the rules to be evaluated",
             lambda: set(rules_health().values()) - {"unknown"}, procs=stack.procs)
    health = rules_health()
    names = {r.get("alert") or r["record"] for g in yaml.safe_load(RULES.read_text())["groups"]
             for r in g["rules"]}
    assert set(health) == names and set(health.values()) == {"ok"}, health
    wait_for("the VG in sync in Prometheus",
             lambda: stack.query(f'vgdrift_vg_state{{{sel}, state="in_sync"}} == 1')["result"],
             procs=stack.procs)

    # 1. Node A changes the VG: node B's cache is now behind.
    cached = backup_seqno(lab.b, VG)
    assert not stack.webhook.alerts(), stack.webhook.alerts()
    t = time.monotonic()
    lab.a.lvm("lvcreate", "-L", "4m", "-n", "lv2", VG)
    assert lab.a.vgs_truth(VG)["seqno"] == cached + 1
    drift = stack.wait_alert("LVMVGMetadataDrift", "firing", t, vg=VG)
    check_alert(drift, "LVMVGMetadataDrift", "warning", stack.instance, state="drift")
    description = drift["annotations"]["description"]
    assert f"On {stack.instance}, the cached metadata of VG {VG}" in description
    assert f"cached seqno {cached}, disk seqno {cached + 1}" in description, description
    assert f"`vgcfgbackup {VG}`" in description

    # 2. While it drifts: every dashboard query is valid PromQL and returns
    #    data here (the drift-only panel included).  Range queries need two
    #    samples in their window, so poll rather than query once.
    # (Panels that show data only when nodes disagree or a VG is unknown
    # to a node are checked by test_e2e_fleet.py, in those situations.)
    queries = [q for q in dashboard_queries({"job": JOB, "instance": stack.instance, "vg": VG})
               if not any(needle in q for needle in FLEET_ONLY)]
    nan = {}
    for q in queries:
        data = wait_for(f"data for dashboard query\n{q}",
                        lambda q=q: stack.query(q)["result"] or None, timeout=20,
                        procs=stack.procs)
        values = [float(s["value"][1]) for s in data]
        if any(math.isnan(v) for v in values):
            nan[q] = data
    assert not nan, f"dashboard queries returning NaN: {nan}"
    # The stats reflect the drift, not just any data.
    assert stack.query(f'count(vgdrift_vg_state{{{sel}, state="drift"}} == 1) '
                       f'or vector(0)')["result"][0]["value"][1] == "1"

    # 3. Node B refreshes its cache: the alert resolves.
    t = time.monotonic()
    lab.b.vgcfgbackup(VG)
    resolved = stack.wait_alert("LVMVGMetadataDrift", "resolved", t, vg=VG)
    t_resolved = time.monotonic()
    check_alert(resolved, "LVMVGMetadataDrift", "warning", stack.instance, state="drift")

    # 4. One of the VG's PVs vanishes from node B: failing over is unsafe.
    t = time.monotonic()
    lab.detach(d1, "b")
    unsafe = stack.wait_alert("LVMVGFailoverUnsafe", "firing", t, vg=VG)
    check_alert(unsafe, "LVMVGFailoverUnsafe", "critical", stack.instance, state="partial")
    assert f"VG {VG} is in state partial" in unsafe["annotations"]["description"]

    # Nothing else fired: the exporter and its scans were healthy throughout;
    # the drift stayed resolved.
    assert not stack.webhook.find("LVMVGMetadataDrift", "firing", t_resolved)
    others = {a["labels"]["alertname"] for a in stack.webhook.alerts()} - {
        "LVMVGMetadataDrift", "LVMVGFailoverUnsafe"}
    assert not others, f"unexpected alerts: {others}\n{stack.logs()}"

    # vgdrift serve stops promptly on SIGTERM, with status 0, and leaves no
    # worker behind (the fixture would kill leftovers; this says so).
    stack.serve.proc.send_signal(signal.SIGTERM)
    try:
        rc = stack.serve.proc.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        rc = None
    time.sleep(0.5)
    left = stack.serve.group_members()
    stack.serve.stop()
    assert rc == 0, f"vgdrift serve on SIGTERM: {rc}\n{stack.serve.output()}"
    assert not left, f"vgdrift serve left processes behind: {left}"
