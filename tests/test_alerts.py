"""alerts/: the Prometheus rules pass `promtool check rules` and their
`promtool test rules` unit tests, every alert is tested (firing with exact
labels and annotations, and not firing before its `for` elapses), has a
runbook section, and the example Alertmanager configuration is valid, routes
by severity and inhibits warnings under criticals.

promtool, amtool and prometheus-alertmanager come from the Debian packages
prometheus and prometheus-alertmanager; CI installs them, so a missing tool
is a failure, not a skip."""

import glob
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import urllib.request

import pytest
import yaml

from helpers import EXPORTER_METRICS, free_port, require_tool, stop_process
from vgdrift import model

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ALERTS = os.path.join(ROOT, "alerts")
RULES = os.path.join(ALERTS, "vgdrift.rules.yml")
RUNBOOK = os.path.join(ALERTS, "RUNBOOK.md")
AM_CONFIG = os.path.join(ALERTS, "alertmanager.example.yml")
UNIT_TESTS = sorted(glob.glob(os.path.join(ALERTS, "tests", "*.yml")))

REQUIRED = {
    "LVMVGMetadataDrift": "warning",
    "LVMVGMetadataDriftPersistent": "critical",
    "LVMVGFailoverUnsafe": "critical",
    "LVMVGStateUnknown": "warning",
    "LVMVGAutoactivationEnabled": "warning",
    "LVMDriftScanFailing": "warning",
    "LVMDriftExporterDown": "critical",
    "LVMDriftScanSlow": "warning",
    "LVMVGNodesDisagree": "critical",
    "LVMVGUnknownOnNode": "warning",
}
# Alerts about one VG: their labels carry vg and their description names it.
VG_ALERTS = {"LVMVGMetadataDrift", "LVMVGMetadataDriftPersistent",
             "LVMVGFailoverUnsafe", "LVMVGStateUnknown", "LVMVGAutoactivationEnabled",
             "LVMVGUnknownOnNode"}
# Alerts across nodes: about one VG (vg_uuid, vg), naming the instances
# involved in their description rather than carrying an instance label.
FLEET_ALERTS = {"LVMVGNodesDisagree"}
# Recorded series (level:metric:operations), built from the exporter's metrics.
RECORD_NAME = re.compile(r"\b[a-z_]+:vgdrift_\w+:\w+")

JOB_SELECTOR = 'job="vgdrift"'


def run(argv, **kw):
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, **kw)


def load(path):
    with open(path, encoding="utf-8") as f:
        return yaml.safe_load(f)


def alert_rules():
    groups = load(RULES)["groups"]
    return [r for g in groups for r in g["rules"] if "alert" in r]


def recording_rules():
    groups = load(RULES)["groups"]
    return [r for g in groups for r in g["rules"] if "record" in r]


def parse_duration(text):
    """Prometheus duration ('1h30m', '90s') -> seconds."""
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800,
             "y": 31536000}
    parts = re.findall(r"(\d+)(ms|s|m|h|d|w|y)", str(text))
    assert parts and "".join(n + u for n, u in parts) == str(text), text
    return sum(int(n) * units[u] for n, u in parts)


def slug(heading):
    """GitHub's anchor for a Markdown heading."""
    s = heading.strip().lower()
    s = re.sub(r"[^\w\- ]", "", s)
    return s.replace(" ", "-")


def runbook_sections():
    """{anchor: section text} for the runbook's level-2 headings."""
    with open(RUNBOOK, encoding="utf-8") as f:
        text = f.read()
    sections = {}
    for chunk in re.split(r"^## ", text, flags=re.M)[1:]:
        heading, _, body = chunk.partition("\n")
        sections[slug(heading)] = body
    return sections


# --- promtool -------------------------------------------------------------

def test_promtool_check_rules():
    promtool = require_tool("promtool", package="prometheus")
    res = run([promtool, "check", "rules", RULES])
    assert res.returncode == 0, res.stdout + res.stderr


def test_promtool_unit_tests_pass():
    promtool = require_tool("promtool", package="prometheus")
    assert UNIT_TESTS, "no promtool unit tests in alerts/tests/"
    res = run([promtool, "test", "rules", *UNIT_TESTS])
    assert res.returncode == 0, res.stdout + res.stderr


def test_promtool_unit_tests_are_not_vacuous(tmp_path):
    """A wrong expectation must make `promtool test rules` fail, so the
    passing run above means something."""
    promtool = require_tool("promtool", package="prometheus")
    for path in UNIT_TESTS:
        doc = load(path)
        doc["rule_files"] = [os.path.normpath(os.path.join(os.path.dirname(path), f))
                             for f in doc["rule_files"]]
        for case in (c for t in doc["tests"] for c in t.get("alert_rule_test", ())):
            for exp in case.get("exp_alerts") or ():
                exp["exp_annotations"]["description"] += " (tampered)"
        bad = tmp_path / os.path.basename(path)
        bad.write_text(yaml.safe_dump(doc))
        res = run([promtool, "test", "rules", str(bad)])
        assert res.returncode != 0, f"tampered {path} still passes"


def unit_cases():
    """(file, test, case) for every alert_rule_test case."""
    for path in UNIT_TESTS:
        for test in load(path)["tests"]:
            for case in test.get("alert_rule_test") or ():
                yield path, test, case


@pytest.mark.parametrize("rule", alert_rules(), ids=lambda r: r["alert"])
def test_every_alert_has_unit_tests(rule):
    """Fails when an alert has no firing test (with exact labels and
    annotations) or no test showing it does not fire before `for` elapses."""
    name = rule["alert"]
    firing, quiet = [], []
    for _, _, case in unit_cases():
        if case["alertname"] != name:
            continue
        t = parse_duration(case["eval_time"])
        (firing if case.get("exp_alerts") else quiet).append((t, case))
    assert firing, f"{name}: no promtool test case where it fires"
    assert quiet, f"{name}: no promtool test case where it does not fire"
    for _, case in firing:
        for exp in case["exp_alerts"]:
            labels = exp.get("exp_labels") or {}
            annotations = exp.get("exp_annotations") or {}
            assert labels.get("severity") == rule["labels"]["severity"], (name, labels)
            assert "job" in labels, (name, labels)
            if name in VG_ALERTS:
                assert {"instance", "vg"} <= labels.keys(), (name, labels)
            assert annotations.keys() == rule["annotations"].keys(), (name, annotations)
    # A quiet case earlier than a firing one: the pending phase of `for`.
    assert min(t for t, _ in quiet) < max(t for t, _ in firing), (
        f"{name}: no quiet case before a firing one (pending, `for` not elapsed)")


def test_unit_tests_only_name_existing_alerts():
    names = {r["alert"] for r in alert_rules()}
    unknown = {c["alertname"] for _, _, c in unit_cases()} - names
    assert not unknown, f"unit tests for alerts that do not exist: {unknown}"


# --- the rules themselves -------------------------------------------------

def test_one_group_with_the_required_alerts():
    groups = load(RULES)["groups"]
    assert len(groups) == 1
    severities = {r["alert"]: r["labels"]["severity"] for r in alert_rules()}
    for name, severity in REQUIRED.items():
        assert severities.get(name) == severity, name
    assert len(severities) == len(alert_rules()), "duplicate alert names"


@pytest.mark.parametrize("rule", alert_rules(), ids=lambda r: r["alert"])
def test_alert_shape(rule):
    name = rule["alert"]
    assert parse_duration(rule["for"]) > 0
    assert rule["labels"]["severity"] in ("warning", "critical")
    ann = rule["annotations"]
    assert ann["summary"].strip()
    if name in FLEET_ALERTS:
        assert "$labels.vg_uuid" in ann["description"] and "$labels.vg" in ann["description"], name
        assert "$s.Labels.instance" in ann["description"], name
    else:
        assert "$labels.instance" in ann["description"], name
    if name in VG_ALERTS:
        assert "$labels.vg" in ann["description"], name
    url = ann["runbook_url"]
    assert re.fullmatch(r"https://\S+/alerts/RUNBOOK\.md#[a-z0-9-]+", url), url
    anchor = url.rsplit("#", 1)[1]
    assert anchor == slug(name)
    assert anchor in runbook_sections(), f"no RUNBOOK.md section for {name}"


@pytest.mark.parametrize("rule", alert_rules(), ids=lambda r: r["alert"])
def test_alert_selects_the_job_and_known_metrics(rule):
    """Every selector carries job="vgdrift" (the documented thing to adjust)
    and only metrics of the exporter's contract (or up) are used."""
    expr = rule["expr"]
    records = {r["record"] for r in recording_rules()}
    for name, matchers in re.findall(r"(" + RECORD_NAME.pattern + r")\s*(\{[^}]*\})?", expr):
        assert name in records, (rule["alert"], name)
        assert JOB_SELECTOR in matchers.replace(" ", ""), (rule["alert"], name)
    expr = RECORD_NAME.sub("", expr)
    selectors = re.findall(r"\b(vgdrift_\w+|up)\s*(\{[^}]*\})?", expr)
    assert selectors or rule["alert"] in FLEET_ALERTS, expr
    for metric, matchers in selectors:
        assert metric == "up" or metric in EXPORTER_METRICS, metric
        assert JOB_SELECTOR in matchers.replace(" ", ""), (rule["alert"], metric)


def test_exporter_down_covers_down_and_absent():
    rule = next(r for r in alert_rules() if r["alert"] == "LVMDriftExporterDown")
    expr = rule["expr"].replace(" ", "")
    assert 'up{job="vgdrift"}==0' in expr
    assert 'absent(up{job="vgdrift"})' in expr


def test_thresholds_and_selector_are_documented():
    with open(RULES, encoding="utf-8") as f:
        header = f.read().split("\ngroups:", 1)[0]
    assert JOB_SELECTOR in header and "absent(" in header
    for rule in alert_rules():
        assert rule["alert"] in header, f"{rule['alert']} not in the header table"


@pytest.mark.parametrize("rule", alert_rules(), ids=lambda r: r["alert"])
def test_runbook_section_content(rule):
    body = runbook_sections()[slug(rule["alert"])]
    for part in ("What it means for a failover", "Confirm", "Fix",
                 "Safe to fail over when"):
        assert f"**{part}" in body, (rule["alert"], part)
    assert "vgdrift check --vg VG" in body, rule["alert"]


def _states_with_exit(code):
    return sorted(s.value for s in model.VGState if model.STATE_EXIT[s] == code)


def test_runbook_explains_every_unsafe_state():
    body = runbook_sections()["lvmvgfailoverunsafe"]
    for state in _states_with_exit(model.Exit.UNSAFE):
        assert f"| `{state}` |" in body, state
    rule = next(r for r in alert_rules() if r["alert"] == "LVMVGFailoverUnsafe")
    states = re.search(r'state=~"([^"]+)"', rule["expr"]).group(1).split("|")
    assert sorted(states) == _states_with_exit(model.Exit.UNSAFE)


def test_drift_alerts_select_the_refreshable_states():
    """The drift alerts name the states that exit 1 (refresh, then go)."""
    for name in ("LVMVGMetadataDrift", "LVMVGMetadataDriftPersistent"):
        rule = next(r for r in alert_rules() if r["alert"] == name)
        states = re.findall(r'state="([^"]+)"', rule["expr"])
        assert sorted(set(states)) == _states_with_exit(model.Exit.DRIFT), name


def test_unknown_alert_selects_the_unknown_states():
    """The states that exit 3 have their own alert: a VG must never leave
    every alert just because this node cannot tell."""
    rule = next(r for r in alert_rules() if r["alert"] == "LVMVGStateUnknown")
    states = re.findall(r'state="([^"]+)"', rule["expr"])
    assert sorted(set(states)) == _states_with_exit(model.Exit.UNKNOWN)


def test_runbook_explains_every_pv_state():
    text = open(RUNBOOK, encoding="utf-8").read()
    for state in model.PVState:
        assert f"`{state.value}`" in text, state


# --- Alertmanager example -------------------------------------------------

def test_alertmanager_config_is_valid():
    """amtool check-config when amtool is there, else load it in the daemon."""
    amtool = shutil.which("amtool")
    if amtool:
        res = run([amtool, "check-config", AM_CONFIG])
        assert res.returncode == 0, res.stdout + res.stderr
    else:
        with alertmanager(AM_CONFIG):
            pass


@pytest.mark.parametrize("rule", alert_rules(), ids=lambda r: r["alert"])
def test_alertmanager_routes_by_severity(rule):
    amtool = require_tool("amtool", package="prometheus-alertmanager")
    labels = {"alertname": rule["alert"], "job": "vgdrift",
              "instance": "node-b:9867", **rule["labels"]}
    expected = {"critical": "vgdrift-pager", "warning": "vgdrift-ticket"}
    res = run([amtool, "config", "routes", "test", f"--config.file={AM_CONFIG}",
               *(f"{k}={v}" for k, v in labels.items())])
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stdout.split() == [expected[rule["labels"]["severity"]]]


class alertmanager:
    """prometheus-alertmanager on a free 127.0.0.1 port, no clustering,
    its state in a temporary directory; fails unless it becomes ready."""

    def __init__(self, config):
        self.config = config

    def __enter__(self):
        binary = require_tool("prometheus-alertmanager", "alertmanager",
                              package="prometheus-alertmanager")
        self.tmp = tempfile.TemporaryDirectory()
        self.url = f"http://127.0.0.1:{free_port()}"
        self.log = open(os.path.join(self.tmp.name, "log"), "w+")
        self.proc = subprocess.Popen(
            [binary, f"--config.file={self.config}",
             f"--storage.path={self.tmp.name}",
             f"--web.listen-address={self.url[len('http://'):]}",
             "--cluster.listen-address="],
            stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                with urllib.request.urlopen(self.url + "/-/ready", timeout=1) as r:
                    if r.status == 200:
                        return self
            except OSError:
                time.sleep(0.1)
        self.__exit__(None, None, None)
        pytest.fail(f"alertmanager did not start with {self.config}:\n{self.output}")

    def __exit__(self, *exc):
        stop_process(self.proc)
        self.log.seek(0)
        self.output = self.log.read()
        self.log.close()
        self.tmp.cleanup()

    def api(self, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=5) as r:
            raw = r.read()
        return json.loads(raw) if raw else None


def test_alertmanager_starts_and_critical_inhibits_warning():
    """The daemon loads the example; a critical vgdrift alert mutes the
    warning of the same instance and VG, nothing else."""
    base = {"job": "vgdrift", "instance": "node-b:9867"}
    sent = [
        {"alertname": "LVMVGMetadataDriftPersistent", "severity": "critical",
         "vg": "data", "state": "drift", **base},
        {"alertname": "LVMVGMetadataDrift", "severity": "warning",
         "vg": "data", "state": "drift", **base},
        {"alertname": "LVMVGMetadataDrift", "severity": "warning",
         "vg": "logs", "state": "drift", **base},
        {"alertname": "LVMVGMetadataDrift", "severity": "warning",
         "vg": "data", "state": "drift", **base, "instance": "node-c:9867"},
        {"alertname": "LVMDriftExporterDown", "severity": "critical",
         "job": "vgdrift", "instance": "node-d:9867"},
        {"alertname": "LVMDriftScanFailing", "severity": "warning",
         "job": "vgdrift", "instance": "node-d:9867"},
    ]
    expected = {  # (alertname, instance, vg) -> suppressed?
        ("LVMVGMetadataDriftPersistent", "node-b:9867", "data"): False,
        ("LVMVGMetadataDrift", "node-b:9867", "data"): True,
        ("LVMVGMetadataDrift", "node-b:9867", "logs"): False,
        ("LVMVGMetadataDrift", "node-c:9867", "data"): False,
        ("LVMDriftExporterDown", "node-d:9867", None): False,
        ("LVMDriftScanFailing", "node-d:9867", None): True,
    }
    with alertmanager(AM_CONFIG) as am:
        am.api("/api/v2/alerts", [{"labels": labels} for labels in sent])
        deadline = time.monotonic() + 10
        while True:
            got = {(a["labels"]["alertname"], a["labels"]["instance"],
                    a["labels"].get("vg")): a["status"]["state"] == "suppressed"
                   for a in am.api("/api/v2/alerts")}
            if got == expected or time.monotonic() > deadline:
                break
            time.sleep(0.2)
    assert got == expected


# --- recording rules and the generator ----------------------------------------

@pytest.mark.parametrize("rule", recording_rules(), ids=lambda r: r["record"])
def test_recording_rules_follow_the_naming_convention(rule):
    """level:metric:operations, from the exporter's metrics (or earlier
    recorded series), every selector carrying the job."""
    level, metric, ops = rule["record"].split(":")
    assert level and metric.startswith("vgdrift_") and ops, rule["record"]
    expr = RECORD_NAME.sub(lambda m: "", rule["expr"])
    for name, matchers in re.findall(r"\b(vgdrift_\w+)\s*(\{[^}]*\})?", expr):
        assert name in EXPORTER_METRICS, name
        assert JOB_SELECTOR in matchers.replace(" ", ""), (rule["record"], name)
    # Recorded before any alert that uses them (a group evaluates in order).
    rules = load(RULES)["groups"][0]["rules"]
    at = next(i for i, r in enumerate(rules) if r.get("record") == rule["record"])
    assert all("record" in r for r in rules[:at]), rule["record"]


def generator():
    import importlib.util
    spec = importlib.util.spec_from_file_location("alerts_generate", os.path.join(ALERTS, "generate.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_committed_rules_are_the_default_rendering():
    with open(RULES, encoding="utf-8") as f:
        assert f.read() == generator().render()


def test_rendering_for_another_job_and_durations(tmp_path):
    """The job, `for` durations and thresholds are parameters: a rendering
    for job lvm-drift selects only that job, and promtool accepts it."""
    gen = generator()
    out = tmp_path / "rules.yml"
    assert gen.main(["--job", "lvm-drift", "--for", "LVMVGNodesDisagree=20s", "--scan-slow-seconds", "7",
                     "-o", str(out)]) == 0
    text = out.read_text()
    assert 'job="vgdrift"' not in text and 'job="lvm-drift"' in text
    doc = yaml.safe_load(text)
    rules = {r.get("alert") or r["record"]: r for r in doc["groups"][0]["rules"]}
    assert rules["LVMVGNodesDisagree"]["for"] == "20s" and rules["LVMVGMetadataDrift"]["for"] == "15m"
    assert ") > 7" in rules["LVMDriftScanSlow"]["expr"]
    for rule in rules.values():
        expr = RECORD_NAME.sub("", rule["expr"]) + " ".join(
            m for _, m in re.findall(r"(" + RECORD_NAME.pattern + r")\s*(\{[^}]*\})?", rule["expr"]))
        for _, matchers in re.findall(r"\b(vgdrift_\w+|up)\s*(\{[^}]*\})?", expr):
            assert 'job="lvm-drift"' in matchers.replace(" ", ""), rule
    promtool = require_tool("promtool", package="prometheus")
    res = run([promtool, "check", "rules", str(out)])
    assert res.returncode == 0, res.stdout + res.stderr
    assert gen.main(["--check", "-o", RULES]) == 0
    assert gen.main(["--check", "--job", "other", "-o", RULES]) == 1


@pytest.mark.parametrize("argv", [["--job", 'a"b'], ["--for", "LVMVGNope=1m"], ["--for", "LVMDriftNoVGs=soon"],
                                  ["--scan-slow-seconds", "60"]])
def test_generator_refuses_bad_parameters(argv, tmp_path, capsys):
    assert generator().main(argv + ["-o", str(tmp_path / "x.yml")]) == 2
    assert "alerts/generate.py:" in capsys.readouterr().err and not (tmp_path / "x.yml").exists()
