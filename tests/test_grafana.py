"""grafana/: the committed dashboard is what grafana/generate.py produces, is
importable (datasource input and variables), its layout is sane, every panel
queries the `${datasource}` variable, and every query is valid PromQL once
the template variables are replaced (checked by promtool, which CI installs:
a missing promtool is a failure, not a skip).

dashboard_queries() is meant for reuse by an end-to-end test against a real
Prometheus: it returns the dashboard's queries with concrete values."""

import importlib.util
import itertools
import json
import os
import re
import subprocess
import sys

import pytest
import yaml

from helpers import EXPORTER_METRICS, require_tool

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GENERATOR = os.path.join(ROOT, "grafana", "generate.py")
DASHBOARD = os.path.join(ROOT, "grafana", "vgdrift.json")

# Concrete values for the dashboard's template variables and Grafana's
# built-in interval variables ("All" of a multi-value variable is ".+").
VARIABLE_VALUES = {
    "job": "vgdrift",
    "instance": ".+",
    "vg": ".+",
    "__rate_interval": "2m",
    "__interval": "30s",
    "__range": "6h",
}

# The exporter's metric contract (names are fixed), plus Prometheus' up.
METRICS = EXPORTER_METRICS | {"up"}

_VARIABLE = re.compile(r"\$(?:\{(\w+)\}|(\w+))")
_LABEL_VALUES = re.compile(r"^\s*label_values\((.*),\s*(\w+)\s*\)\s*$", re.S)


def load_generator():
    spec = importlib.util.spec_from_file_location("vgdrift_grafana_generate", GENERATOR)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_dashboard(path=DASHBOARD):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def all_panels(dashboard):
    """Every panel, including those nested in collapsed rows."""
    for p in dashboard["panels"]:
        yield p
        yield from p.get("panels", ())


def substitute(expr, values):
    """Replace $var and ${var}; an unknown variable is an error."""
    def repl(m):
        name = m.group(1) or m.group(2)
        if name not in values:
            raise KeyError(f"no value for template variable ${name} in {expr!r}")
        return values[name]
    return _VARIABLE.sub(repl, expr)


def raw_queries(dashboard):
    """[(where, expr with template variables)] for panel targets and for the
    series selectors of label_values() query variables."""
    out = []
    for p in all_panels(dashboard):
        for t in p.get("targets", ()):
            out.append((f"panel {p['id']} {p['title']!r} {t['refId']}", t["expr"]))
    for v in dashboard["templating"]["list"]:
        if v["type"] != "query":
            continue
        m = _LABEL_VALUES.match(v["query"])
        assert m, f"variable {v['name']}: not label_values(selector, label)"
        out.append((f"variable {v['name']}", m.group(1)))
    return out


def dashboard_queries(values=None, path=DASHBOARD, variables=True):
    """The dashboard's PromQL queries with template variables replaced by
    concrete values (VARIABLE_VALUES, overridden by `values`), in dashboard
    order, without duplicates.  With `variables`, the series selectors of the
    label_values() template variables are included."""
    vals = dict(VARIABLE_VALUES, **(values or {}))
    out = []
    for where, expr in raw_queries(load_dashboard(path)):
        if not variables and where.startswith("variable "):
            continue
        q = substitute(expr, vals)
        if q not in out:
            out.append(q)
    return out


# --- dashboards as code ---------------------------------------------------

def test_committed_json_is_the_generated_one():
    with open(DASHBOARD, encoding="utf-8") as f:
        committed = f.read()
    assert committed == load_generator().render(), (
        "grafana/vgdrift.json is stale: run python3 grafana/generate.py")


def test_generator_check_mode():
    res = subprocess.run([sys.executable, GENERATOR, "--check"],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr


def test_generator_states_match_the_model():
    sys.path.insert(0, os.path.join(ROOT, "exporter"))
    try:
        from vgdrift import model
    finally:
        sys.path.pop(0)
    gen = load_generator()
    assert tuple(gen.VG_STATES) == tuple(model.VG_STATES)
    assert set(gen.UNSAFE_STATES) == {s for s in model.VG_STATES
                                      if model.STATE_EXIT[s] == model.EXIT_UNSAFE}
    assert set(gen.STATE_COLORS) == set(model.VG_STATES)
    assert set(gen.PV_STATE_COLORS) == set(model.PV_STATES)


# --- structure ------------------------------------------------------------

def test_importable_with_datasource_input_and_variables():
    d = load_dashboard()
    assert d["id"] is None and d["uid"] and d["title"]
    inputs = {i["name"]: i for i in d["__inputs"]}
    assert inputs["DS_PROMETHEUS"]["type"] == "datasource"
    assert inputs["DS_PROMETHEUS"]["pluginId"] == "prometheus"
    variables = {v["name"]: v for v in d["templating"]["list"]}
    assert set(variables) >= {"datasource", "job", "instance", "vg"}
    ds = variables["datasource"]
    assert ds["type"] == "datasource" and ds["query"] == "prometheus"
    assert ds["current"]["value"] == "${DS_PROMETHEUS}"
    for name in ("job", "instance", "vg"):
        v = variables[name]
        assert v["type"] == "query", name
        assert v["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, name
    for name in ("instance", "vg"):
        assert variables[name]["multi"] and variables[name]["includeAll"], name
    required = {r["id"] for r in d["__requires"]}
    assert {"grafana", "prometheus"} <= required
    assert {p["type"] for p in all_panels(d) if p["type"] != "row"} <= required


def test_unique_panel_ids():
    ids = [p["id"] for p in all_panels(load_dashboard())]
    assert all(isinstance(i, int) for i in ids)
    assert len(ids) == len(set(ids)), sorted(ids)


def test_grid_positions_do_not_overlap():
    panels = list(all_panels(load_dashboard()))
    for p in panels:
        g = p["gridPos"]
        assert g["w"] > 0 and g["h"] > 0 and g["x"] >= 0 and g["y"] >= 0, p["title"]
        assert g["x"] + g["w"] <= 24, p["title"]
    for a, b in itertools.combinations(panels, 2):
        ga, gb = a["gridPos"], b["gridPos"]
        overlap = (ga["x"] < gb["x"] + gb["w"] and gb["x"] < ga["x"] + ga["w"]
                   and ga["y"] < gb["y"] + gb["h"] and gb["y"] < ga["y"] + ga["h"])
        assert not overlap, (a["title"], ga, b["title"], gb)


def test_every_panel_uses_the_datasource_variable():
    for p in all_panels(load_dashboard()):
        assert p.get("datasource") == {"type": "prometheus", "uid": "${datasource}"}, p["title"]
        for t in p.get("targets", ()):
            assert t.get("datasource") == p["datasource"], (p["title"], t["refId"])
        if p["type"] != "row":
            assert p["targets"], p["title"]


def test_no_hardcoded_datasource_uid():
    text = json.dumps(load_dashboard())
    uids = set(re.findall(r'"uid": "([^"]*)"', text)) - {load_dashboard()["uid"]}
    assert uids <= {"${datasource}", "-- Grafana --"}, uids


def test_required_views_are_present():
    exprs = " ".join(e for _, e in raw_queries(load_dashboard()))
    for needle in ("vgdrift_vg_state", "vgdrift_vg_seqno", "vgdrift_vg_drift_seconds",
                   "vgdrift_vg_pvs", "histogram_quantile(0.9",
                   "vgdrift_scan_duration_seconds_bucket", "vgdrift_device_reads_total",
                   "vgdrift_device_read_bytes_total", "vgdrift_scan_errors_total",
                   "vgdrift_build_info", "up{", "instance_vg_uuid:vgdrift_vg_state:join",
                   "vg_uuid:vgdrift_vg_disk_seqno:max", "vgdrift_unknown_vg_info"):
        assert needle in exprs, needle
    kinds = {p["type"] for p in all_panels(load_dashboard())}
    assert {"stat", "state-timeline", "timeseries", "table"} <= kinds


# --- queries --------------------------------------------------------------

# Series recorded by alerts/vgdrift.rules.yml (level:metric:operations),
# which the cross-node panels share with the alerts.
_RECORDED = re.compile(r"\b([a-z_]+:vgdrift_\w+:\w+)\s*(\{[^}]*\})?")


def recorded_names():
    with open(os.path.join(ROOT, "alerts", "vgdrift.rules.yml"), encoding="utf-8") as f:
        doc = yaml.safe_load(f)
    return {r["record"] for g in doc["groups"] for r in g["rules"] if "record" in r}


def test_queries_use_the_contract_and_the_variables():
    records = recorded_names()
    for where, expr in raw_queries(load_dashboard()):
        recorded = _RECORDED.findall(expr)
        for name, matchers in recorded:
            assert name in records, (where, name)
            assert 'job="$job"' in matchers, (where, name)
            # Per-node series select the instances; per-VG-id ones have none.
            if name.startswith("instance"):
                assert 'instance=~"$instance"' in matchers, (where, name)
        expr = _RECORDED.sub("", expr)
        metrics = re.findall(r"\b(vgdrift_\w+|up)\b\s*(\{[^}]*\})?", expr)
        assert metrics or recorded, where
        for metric, matchers in metrics:
            assert metric in METRICS, (where, metric)
            if where.startswith("variable job"):
                continue
            assert 'job="$job"' in matchers, (where, metric)
            if where != "variable instance":
                assert 'instance=~"$instance"' in matchers, (where, metric)


def test_dashboard_queries_are_concrete():
    queries = dashboard_queries()
    assert len(queries) >= 20
    for q in queries:
        assert "$" not in q, q
    assert any('instance=~"node-b:9867"' in q
               for q in dashboard_queries({"instance": "node-b:9867"}))
    with pytest.raises(KeyError):
        substitute("rate(x[$__unknown])", VARIABLE_VALUES)


def test_queries_are_valid_promql(tmp_path):
    """Each concrete query as a recording rule; promtool parses them all."""
    queries = dashboard_queries()
    rules = {"groups": [{"name": "dashboard", "rules": [
        {"record": f"dashboard:query_{i}", "expr": q} for i, q in enumerate(queries)]}]}
    path = tmp_path / "dashboard.rules.yml"
    path.write_text(yaml.safe_dump(rules, sort_keys=False))
    res = subprocess.run([require_tool("promtool", package="prometheus"), "check", "rules", str(path)],
                         capture_output=True, text=True, timeout=120)
    numbered = "\n".join(f"{i}: {q}" for i, q in enumerate(queries))
    assert res.returncode == 0, f"{res.stdout}{res.stderr}\n{numbered}"
    assert f"SUCCESS: {len(queries)} rules found" in res.stdout, res.stdout


def test_invalid_promql_is_caught(tmp_path):
    """The check above is not vacuous."""
    path = tmp_path / "bad.rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "g", "rules": [
        {"record": "dashboard:bad", "expr": "sum by (instance (up)"}]}]}))
    res = subprocess.run([require_tool("promtool", package="prometheus"), "check", "rules", str(path)],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode != 0
