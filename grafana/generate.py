#!/usr/bin/env python3
"""Generate grafana/vgdrift.json, the vgdrift Grafana dashboard.

    python3 grafana/generate.py           # rewrite grafana/vgdrift.json
    python3 grafana/generate.py --check   # exit 1 if the committed JSON is stale

Plain dicts, standard library only.  The grafana-foundation-sdk package was
considered: every release on PyPI requires Python >= 3.11, and vgdrift
supports Python >= 3.9, so the generator does not use it.

Every panel and query uses the datasource variable `${datasource}`; on import
Grafana asks for a Prometheus datasource (the DS_PROMETHEUS input), which
becomes that variable's default.  Queries select the exporter with
job="$job", instance=~"$instance" and, for per-VG metrics, vg=~"$vg"; "All"
for instance and vg is ".+".
"""

import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
OUTPUT = os.path.join(HERE, "vgdrift.json")

DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}

# States come from the exporter's model (vgdrift.model), never restated
# here: the state timeline encodes each VG state as its index in VG_STATES.
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "exporter"))
from vgdrift import model  # noqa: E402

VG_STATES = tuple(s.value for s in model.VGState)
UNSAFE_STATES = tuple(s.value for s in model.VGState if model.STATE_EXIT[s] == model.Exit.UNSAFE)
UNKNOWN_STATES = tuple(s.value for s in model.VGState if model.STATE_EXIT[s] == model.Exit.UNKNOWN)
# Colours are the one thing the model cannot say; tests check that every
# state has one.
STATE_COLORS = {"in_sync": "green", "drift": "yellow", "cache_ahead": "orange",
                "conflict": "red", "uuid_mismatch": "red", "partial": "red",
                "blocked": "dark-orange", "missing": "dark-red", "inconsistent": "red",
                "unreadable": "purple", "unknown": "blue"}
PV_STATE_COLORS = {"ok": "green", "missing": "red", "duplicate": "orange",
                   "outdated": "yellow", "unreadable": "purple", "corrupt": "dark-red"}

NODE = 'job="$job", instance=~"$instance"'
VG = 'job="$job", instance=~"$instance", vg=~"$vg"'
UNSAFE_RE = "|".join(UNSAFE_STATES)
UNKNOWN_RE = "|".join(UNKNOWN_STATES)
SCAN_STALE_SECONDS = 150   # LVMDriftScanFailing: 5 scan intervals of 30 s


# --- building blocks ------------------------------------------------------

def target(expr, legend="", ref="A", instant=False, table=False):
    t = {"datasource": DATASOURCE, "refId": ref, "expr": expr,
         "legendFormat": legend or "__auto", "editorMode": "code",
         "range": not instant, "instant": instant}
    if table:
        t["format"] = "table"
    return t


def targets(*specs, **kw):
    """targets((expr, legend), ...) with refIds A, B, C..."""
    return [target(expr, legend, ref=chr(ord("A") + i), **kw)
            for i, (expr, legend) in enumerate(specs)]


def thresholds(*steps):
    """thresholds("green", 1, "red") -> base green, red from 1."""
    out = [{"color": steps[0], "value": None}]
    for value, color in zip(steps[1::2], steps[2::2]):
        out.append({"color": color, "value": value})
    return {"mode": "absolute", "steps": out}


def value_mappings(pairs):
    """[(value, text, color)] -> one Grafana value mapping."""
    return [{"type": "value", "options": {
        str(value): {"text": text, "color": color, "index": i}
        for i, (value, text, color) in enumerate(pairs)}}]


def field_config(unit="short", mappings=(), steps=("green",), decimals=None,
                 custom=None, overrides=(), extra=None):
    defaults = {"unit": unit, "mappings": list(mappings),
                "thresholds": thresholds(*steps), "color": {"mode": "thresholds"}}
    if decimals is not None:
        defaults["decimals"] = decimals
    if custom is not None:
        defaults["custom"] = custom
    if extra:
        defaults.update(extra)
    return {"defaults": defaults, "overrides": list(overrides)}


def color_override(regex, color):
    return {"matcher": {"id": "byRegexp", "options": regex},
            "properties": [{"id": "color",
                            "value": {"mode": "fixed", "fixedColor": color}}]}


def timeseries_custom(stack=False, step=False, fill=10, threshold_line=False):
    return {"drawStyle": "line", "lineWidth": 1, "fillOpacity": fill,
            "thresholdsStyle": {"mode": "line" if threshold_line else "off"},
            "lineInterpolation": "stepAfter" if step else "linear",
            "showPoints": "never", "spanNulls": False,
            "stacking": {"mode": "normal" if stack else "none", "group": "A"},
            "axisPlacement": "auto", "axisSoftMin": 0}


def legend_table():
    return {"showLegend": True, "displayMode": "table", "placement": "right",
            "calcs": ["lastNotNull"]}


def panel(kind, title, pos, tgts, description="", field=None, options=None,
          transformations=None):
    p = {"type": kind, "title": title, "description": description,
         "datasource": DATASOURCE,
         "gridPos": dict(zip(("x", "y", "w", "h"), pos)),
         "targets": tgts,
         "fieldConfig": field or field_config(),
         "options": options or {}}
    if transformations:
        p["transformations"] = transformations
    return p


def row(title, y):
    # Rows carry the datasource too, so that every panel's comes from the
    # variable (Grafana ignores it on rows).
    return {"type": "row", "title": title, "collapsed": False,
            "datasource": DATASOURCE,
            "gridPos": {"x": 0, "y": y, "w": 24, "h": 1}, "panels": []}


def timeseries(title, pos, tgts, description="", unit="short", step=False,
               stack=False, overrides=(), decimals=None, steps=("green",)):
    return panel("timeseries", title, pos, tgts, description,
                 field_config(unit=unit,
                              custom=timeseries_custom(stack, step,
                                                       threshold_line=len(steps) > 1),
                              overrides=overrides, decimals=decimals,
                              steps=steps, extra={"color": {"mode": "palette-classic"}}),
                 {"legend": legend_table(),
                  "tooltip": {"mode": "multi", "sort": "desc"}})


def stat(title, pos, tgts, description="", mappings=(), steps=("green",),
         text_mode="value"):
    for t in tgts:   # the current value, not the last one in the time range
        t.update(range=False, instant=True)
    return panel("stat", title, pos, tgts, description,
                 field_config(mappings=mappings, steps=steps, decimals=0),
                 {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "",
                                    "values": False},
                  "colorMode": "background", "graphMode": "none",
                  "justifyMode": "auto", "orientation": "auto",
                  "textMode": text_mode})


def state_timeline(title, pos, tgts, description="", mappings=()):
    return panel("state-timeline", title, pos, tgts, description,
                 field_config(mappings=mappings,
                              custom={"fillOpacity": 80, "lineWidth": 0},
                              extra={"color": {"mode": "thresholds"}}),
                 {"showValue": "never", "mergeValues": True, "rowHeight": 0.9,
                  "alignValue": "left", "legend": {"showLegend": True,
                                                   "displayMode": "list",
                                                   "placement": "bottom"},
                  "tooltip": {"mode": "single", "sort": "none"}})


def table(title, pos, expr, description="", hide=(), overrides=()):
    exclude = {name: True for name in ("Time", "Value", "__name__", "job", *hide)}
    return panel("table", title, pos, [target(expr, instant=True, table=True)],
                 description, field_config(overrides=overrides),
                 {"showHeader": True, "cellHeight": "sm",
                  "footer": {"show": False, "reducer": ["sum"], "fields": ""}},
                 [{"id": "organize", "options": {"excludeByName": exclude,
                                                 "indexByName": {},
                                                 "renameByName": {}}}])


# --- queries --------------------------------------------------------------

def state_code(selector, by):
    """The VG state as its index in VG_STATES, one series per `by`."""
    terms = [f'(vgdrift_vg_state{{{selector}, state="{s}"}} == 1) * {i}'
             for i, s in enumerate(VG_STATES)]
    return f"max by ({by}) (\n  " + "\n  or ".join(terms) + "\n)"


def readiness():
    """Per node, what `vgdrift check` would exit with: 0 every VG in_sync,
    1 some drift, 2 some unsafe state, 3 unknown (a VG in state unknown,
    scan failed, no scan finished yet, target down)."""
    return ("max by (instance) (\n"
            f'  (vgdrift_vg_state{{{VG}, state="in_sync"}} == 1) * 0\n'
            f'  or (vgdrift_vg_state{{{VG}, state="drift"}} == 1) * 1\n'
            f'  or (vgdrift_vg_state{{{VG}, state=~"{UNSAFE_RE}"}} == 1) * 2\n'
            f'  or (vgdrift_vg_state{{{VG}, state=~"{UNKNOWN_RE}"}} == 1) * 3\n'
            f"  or (vgdrift_last_scan_success{{{NODE}}} == 0) + 3\n"
            f"  or (up{{{NODE}}} == 0) + 3\n"
            f"  or (up{{{NODE}}} == 1 unless on (job, instance) "
            f"vgdrift_last_scan_timestamp_seconds{{{NODE}}}) + 2\n"
            ")")


def rate(metric, selector=NODE):
    return f"rate({metric}{{{selector}}}[$__rate_interval])"


# --- the dashboard --------------------------------------------------------

def panels():
    state_mappings = value_mappings(
        [(i, s, STATE_COLORS[s]) for i, s in enumerate(VG_STATES)])
    readiness_mappings = value_mappings([
        (0, "ready", "green"), (1, "refresh needed", "yellow"),
        (2, "unsafe", "red"), (3, "unknown", "purple")])
    ok_mappings = value_mappings([(1, "ok", "green"), (0, "failed", "red")])
    state_text_override = {
        "matcher": {"id": "byName", "options": "state"},
        "properties": [
            {"id": "custom.cellOptions", "value": {"type": "color-background"}},
            {"id": "mappings", "value": value_mappings(
                [(s, s, STATE_COLORS[s]) for s in VG_STATES])}]}

    out = [row("Failover readiness", 0)]
    out += [
        stat("Failover readiness per node", (0, 1, 12, 6),
             [target(readiness(), "{{instance}}")],
             "What `vgdrift check` on each node would answer for the selected "
             "VGs: ready (exit 0), refresh needed (1: run vgcfgbackup VG), "
             "unsafe (2), unknown (3: a VG's cached copy unreadable, last scan "
             "failed, no scan finished yet or exporter down).",
             readiness_mappings, ("green", 1, "yellow", 2, "red", 3, "purple"),
             text_mode="value_and_name"),
        stat("VGs in sync", (12, 1, 6, 3),
             [target(f'count(vgdrift_vg_state{{{VG}, state="in_sync"}} == 1) or vector(0)')],
             "Node/VG pairs whose cache matches the disks."),
        stat("VGs needing a refresh", (18, 1, 6, 3),
             [target(f'count(vgdrift_vg_state{{{VG}, state="drift"}} == 1) or vector(0)')],
             "Node/VG pairs in state drift: the node must run vgcfgbackup VG "
             "before taking the VG over.", steps=("green", 1, "yellow")),
        stat("VGs unsafe for failover", (12, 4, 6, 3),
             [target(f'count(vgdrift_vg_state{{{VG}, state=~"{UNSAFE_RE}"}} == 1) or vector(0)')],
             "Node/VG pairs in " + ", ".join(UNSAFE_STATES[:-1]) + " or " + UNSAFE_STATES[-1] + ".",
             steps=("green", 1, "red")),
        stat("Exporters down or failing", (18, 4, 6, 3),
             [target(f"count(max by (instance) ((up{{{NODE}}} == 0) "
                     f"or (vgdrift_last_scan_success{{{NODE}}} == 0) "
                     f"or (up{{{NODE}}} unless on (job, instance) "
                     f"vgdrift_last_scan_timestamp_seconds{{{NODE}}}))) or vector(0)")],
             "Targets that cannot be scraped, whose last scan failed or that "
             "have not finished a scan yet: their VGs' readiness is unknown.",
             steps=("green", 1, "red")),
        table("Current VG state", (0, 7, 12, 8),
              f"vgdrift_vg_state{{{VG}}} == 1",
              "One row per node and VG with its current state.",
              overrides=[state_text_override]),
        panel("bargauge", "Drifting VGs: time since the disk changed", (12, 7, 12, 8),
              [target(f'(time() - vgdrift_vg_mtime_seconds{{{VG}, source="disk"}})\n'
                      f"and on (job, instance, vg) (vgdrift_vg_drift{{{VG}}} == 1)",
                      "{{instance}} {{vg}}", instant=True)],
              "For VGs whose cache and disk disagree: time since the last "
              "metadata change on disk, i.e. at least how long the node has "
              "been drifting (earlier changes may be missing too). Relies on "
              "the clocks of the nodes that changed the VG.",
              field_config(unit="s", steps=("yellow", 14400, "red"), decimals=0),
              {"orientation": "horizontal", "displayMode": "gradient",
               "showUnfilled": True, "valueMode": "color",
               "reduceOptions": {"calcs": ["lastNotNull"], "fields": "",
                                 "values": False}}),
    ]

    out.append(row("VG state over time", 15))
    out += [
        state_timeline("VG state per node", (0, 16, 24, 10),
                       [target(state_code(VG, "instance, vg"), "{{instance}} {{vg}}")],
                       "The state of each VG as seen from each node.",
                       state_mappings),
        timeseries("Cached vs disk seqno", (0, 26, 12, 8),
                   [target(f"vgdrift_vg_seqno{{{VG}}}", "{{instance}} {{vg}} {{source}}")],
                   "Metadata sequence number in the node's cache and on the "
                   "disks; they match when in sync.", step=True, decimals=0),
        timeseries("Seqno lag (disk − cache)", (12, 26, 12, 8),
                   [target(f'vgdrift_vg_seqno{{{VG}, source="disk"}}\n'
                           f'- ignoring (source) vgdrift_vg_seqno{{{VG}, source="cache"}}',
                           "{{instance}} {{vg}}")],
                   "How many metadata commits the cache is behind; negative: "
                   "the cache is ahead of the disks (unsafe).", step=True,
                   decimals=0),
        timeseries("How long each VG has been drifting", (0, 34, 12, 8),
                   [target(f"vgdrift_vg_drift_seconds{{{VG}}}", "{{instance}} {{vg}}")],
                   "vgdrift_vg_drift_seconds: while drifted, the disk "
                   "metadata's mtime minus the cached metadata's mtime "
                   "(how much newer the disk copy is); 0 when in sync.",
                   unit="s", step=True),
        timeseries("PVs by state", (12, 34, 12, 8),
                   [target(f"vgdrift_vg_pvs{{{VG}}} > 0", "{{instance}} {{vg}} {{state}}")],
                   "Physical volumes of each VG by state, as found from each node.",
                   step=True, decimals=0,
                   overrides=[color_override(f"/ {s}$/", c)
                              for s, c in PV_STATE_COLORS.items()]),
    ]

    out.append(row("Scans and exporter", 42))
    out += [
        timeseries("Scan duration quantiles", (0, 43, 12, 8),
                   targets(*[(f"histogram_quantile({q}, sum by (instance, le) "
                              f"({rate('vgdrift_scan_duration_seconds_bucket')}))",
                              f"p{int(q * 100)} {{{{instance}}}}")
                             for q in (0.5, 0.9, 0.99)]),
                   "Whole-scan duration from the vgdrift_scan_duration_seconds "
                   "histogram. LVMDriftScanSlow fires on p90 > 5s.", unit="s"),
        timeseries("Per-VG scan duration (last scan)", (12, 43, 12, 8),
                   [target(f"vgdrift_vg_scan_duration_seconds{{{VG}}}",
                           "{{instance}} {{vg}}")],
                   "Each VG's part of the last scan: finds the VG whose disks "
                   "are slow.", unit="s"),
        timeseries("Device reads", (0, 51, 8, 8),
                   [target(f"sum by (instance) ({rate('vgdrift_device_reads_total')})",
                           "{{instance}}")],
                   "Block reads issued to devices by scans.", unit="rps"),
        timeseries("Device read bytes", (8, 51, 8, 8),
                   [target(f"sum by (instance) ({rate('vgdrift_device_read_bytes_total')})",
                           "{{instance}}")],
                   "Bytes read from devices by scans.", unit="Bps"),
        timeseries("Scans and scan errors", (16, 51, 8, 8),
                   targets((f"sum by (instance) ({rate('vgdrift_scans_total')}) * 60",
                            "scans {{instance}}"),
                           (f"sum by (instance, reason) ({rate('vgdrift_scan_errors_total')}) * 60",
                            "errors {{instance}} {{reason}}")),
                   "Scans and errors per minute; errors by reason (timeout, "
                   "io_error, permission, corrupt, cache, internal).", unit="opm",
                   overrides=[color_override("/^errors/", "red")]),
        state_timeline("Exporter up and last scan result", (0, 59, 12, 7),
                       targets((f"up{{{NODE}}}", "{{instance}} scrape"),
                               (f"vgdrift_last_scan_success{{{NODE}}}",
                                "{{instance}} last scan")),
                       "Whether Prometheus can scrape the exporter, and whether "
                       "its last scan succeeded.", ok_mappings),
        timeseries("Time since last scan", (12, 59, 12, 7),
                   [target(f"time() - vgdrift_last_scan_timestamp_seconds{{{NODE}}}",
                           "{{instance}}")],
                   f"Age of the last scan; LVMDriftScanFailing fires above "
                   f"{SCAN_STALE_SECONDS}s.", unit="s",
                   steps=("green", SCAN_STALE_SECONDS, "red")),
        table("Exporter versions", (0, 66, 8, 7), f"vgdrift_build_info{{{NODE}}}",
              "vgdrift and Python version of each exporter."),
        table("VG identity", (8, 66, 16, 7), f"vgdrift_vg_info{{{VG}}}",
              "UUID, the hosts that last wrote the cached and the on-disk "
              "metadata, and the VG's system ID."),
    ]

    # Readiness as each node's own LVM sees it (issue 8): would it see, own
    # and activate each VG.
    out.append(row("Node LVM: blockers, ownership, autoactivation", 73))
    yes_no = value_mappings([(1, "yes", "orange"), (0, "no", "green")])
    out += [
        timeseries("Blockers per node and VG", (0, 74, 12, 8),
                   [target(f"vgdrift_vg_blocked{{{VG}}}", "{{instance}} {{vg}} {{reason}}")],
                   "Why each node's LVM, as configured, would not activate the VG "
                   "(state blocked), as blockers per reason (0: none): devices_file (a PV missing from the devices "
                   "file in use: lvm lvmdevices --adddev on that node), filter "
                   "(lvm.conf filter rejects a PV's device), system_id (another "
                   "host's VG, and the node has no system ID), exported (vgimport "
                   "first).", step=True, decimals=0),
        table("VG ownership (system ID)", (12, 74, 12, 8),
              f"vgdrift_vg_owned{{{VG}}}\n"
              f"* on (job, instance, vg) group_left (system_id) vgdrift_vg_info{{{VG}}}",
              "1 when the VG's LVM system ID is the node's own. A VG with "
              "another host's system ID is read with vgcfgbackup --foreign and "
              "taken over by the cluster (LVM-activate system_id mode)."),
        stat("Would the node autoactivate the VG at boot", (0, 82, 12, 6),
             [target(f"vgdrift_vg_autoactivation{{{VG}}}", "{{instance}} {{vg}}", instant=True)],
             "The node's LVM would activate the VG by itself at boot; for a "
             "shared VG that is two active nodes after a reboot. "
             "LVMVGAutoactivationEnabled fires after 30m; fix on the owner: "
             "vgchange --setautoactivation n VG.",
             yes_no, ("green", 1, "orange"), text_mode="value_and_name"),
        table("Node LVM configuration", (12, 82, 12, 6),
              f"vgdrift_node_lvm_info{{{NODE}}}",
              "Whether each node's LVM uses a devices file, where its system "
              "ID comes from and what it is (unknown: vgdrift cannot tell)."),
    ]

    # Across nodes (issue 11): a VG joined by the id each node read from
    # disk (vg_uuid), through the recording rules of alerts/vgdrift.rules.yml.
    out.append(row("Fleet: nodes compared", 88))
    fleet_state_override = {
        "matcher": {"id": "byRegexp", "options": "^(?!vg$|vg_uuid$).*"},
        "properties": [
            {"id": "custom.cellOptions", "value": {"type": "color-background"}},
            {"id": "mappings", "value": value_mappings(
                [(s, s, STATE_COLORS[s]) for s in VG_STATES])}]}
    out += [
        panel("table", "Fleet matrix: VG x node -> state", (0, 89, 24, 8),
              [target(f"instance_vg_uuid:vgdrift_vg_state:join{{{VG}}}", instant=True, table=True)],
              "The state of each VG (one row per VG id read from disk: names are not unique, a VG "
              "renamed on one node stays one row) on each node (one column per node). An empty cell: "
              "that node does not read the VG from disk (its cache lacks it, see the unknown VGs "
              "below, or its PVs are missing there).",
              field_config(overrides=[fleet_state_override]),
              {"showHeader": True, "cellHeight": "sm",
               "footer": {"show": False, "reducer": ["sum"], "fields": ""}},
              [{"id": "groupingToMatrix", "options": {"columnField": "instance", "rowField": "vg_uuid",
                                                      "valueField": "state", "emptyValue": "empty"}}]),
        timeseries("Disk seqno per node, by VG id", (0, 97, 12, 8),
                   [target(f"instance_vg_uuid:vgdrift_vg_disk_seqno:join{{{VG}}}",
                           "{{vg}} ({{vg_uuid}}) {{instance}}")],
                   "The seqno each node reads from disk for each VG. Lines of one VG that stay apart "
                   "for longer than a scan interval mean a node does not see the disks its peers see "
                   "(LVMVGNodesDisagree).", step=True, decimals=0),
        table("VGs whose nodes disagree", (12, 97, 12, 8),
              '((vg_uuid:vgdrift_vg_disk_seqno:max{job="$job"}\n'
              '  - vg_uuid:vgdrift_vg_disk_seqno:min{job="$job"}) > 0)\n'
              "* on (job, vg_uuid) group_left (vg)\n"
              f"(topk by (job, vg_uuid) (1, instance_vg_uuid:vgdrift_vg_disk_seqno:join{{{NODE}}}) * 0 + 1)",
              "VG ids whose nodes read different seqnos right now (Value: newest minus oldest). "
              "A commit in flight shows here for a scan interval; LVMVGNodesDisagree pages when it "
              "lasts.", hide=("instance",)),
        table("Unknown VGs: on a node's disks, in none of its cache files", (0, 105, 24, 7),
              f"vgdrift_unknown_vg_info{{{VG}}}",
              "VGs that the node's discovery (vgdrift serve --discovery.interval) found on its disks "
              "and that no cache file there describes: created elsewhere. The node could not take "
              "them over before vgcfgbackup VG (vgdrift check --discover prints the commands). "
              "LVMVGUnknownOnNode warns after 30m."),
    ]
    for i, p in enumerate(out, start=1):
        p["id"] = i
    return out


def query_variable(name, label, query, multi):
    v = {"type": "query", "name": name, "label": label,
         "datasource": DATASOURCE, "definition": query, "query": query,
         "refresh": 2, "sort": 1, "regex": "", "hide": 0,
         "multi": multi, "includeAll": multi, "options": []}
    if multi:
        v["allValue"] = ".+"
        v["current"] = {"selected": True, "text": ["All"], "value": ["$__all"]}
    else:
        v["current"] = {"selected": True, "text": "vgdrift", "value": "vgdrift"}
    return v


def build_dashboard():
    all_panels = panels()
    panel_types = sorted({p["type"] for p in all_panels if p["type"] != "row"})
    names = {"bargauge": "Bar gauge", "stat": "Stat", "state-timeline": "State timeline",
             "table": "Table", "timeseries": "Time series"}
    return {
        "__inputs": [{"name": "DS_PROMETHEUS", "label": "Prometheus",
                      "description": "Prometheus scraping the vgdrift exporters",
                      "type": "datasource", "pluginId": "prometheus",
                      "pluginName": "Prometheus"}],
        "__elements": {},
        "__requires": [
            {"type": "grafana", "id": "grafana", "name": "Grafana", "version": "10.0.0"},
            {"type": "datasource", "id": "prometheus", "name": "Prometheus", "version": "1.0.0"},
            *({"type": "panel", "id": t, "name": names[t], "version": ""} for t in panel_types),
        ],
        "id": None,
        "uid": "vgdrift",
        "title": "vgdrift: LVM VG metadata drift",
        "description": "Is each node's cached LVM metadata (/etc/lvm/backup) "
                       "current with the shared disks, i.e. can it take over "
                       "its volume groups? See alerts/RUNBOOK.md.",
        "tags": ["vgdrift", "lvm", "failover"],
        "editable": True,
        "graphTooltip": 1,
        "timezone": "browser",
        "time": {"from": "now-6h", "to": "now"},
        "refresh": "30s",
        "schemaVersion": 38,
        "version": 1,
        "links": [],
        "annotations": {"list": [{
            "builtIn": 1, "type": "dashboard", "name": "Annotations & Alerts",
            "datasource": {"type": "grafana", "uid": "-- Grafana --"},
            "enable": True, "hide": True, "iconColor": "rgba(0, 211, 255, 1)"}]},
        "templating": {"list": [
            {"type": "datasource", "name": "datasource", "label": "Data source",
             "query": "prometheus", "regex": "", "hide": 0, "refresh": 1,
             "current": {"selected": False, "text": "Prometheus",
                         "value": "${DS_PROMETHEUS}"},
             "options": []},
            query_variable("job", "Job", "label_values(vgdrift_build_info, job)", False),
            query_variable("instance", "Node",
                           'label_values(vgdrift_build_info{job="$job"}, instance)', True),
            query_variable("vg", "VG",
                           'label_values(vgdrift_vg_info{job="$job", instance=~"$instance"}, vg)',
                           True),
        ]},
        "panels": all_panels,
    }


def render():
    return json.dumps(build_dashboard(), indent=2, ensure_ascii=False) + "\n"


def main(argv):
    text = render()
    if argv[1:] == ["--check"]:
        try:
            with open(OUTPUT, encoding="utf-8") as f:
                current = f.read()
        except FileNotFoundError:
            current = None
        if current != text:
            print(f"{OUTPUT} is stale: run python3 {sys.argv[0]}", file=sys.stderr)
            return 1
        return 0
    if argv[1:]:
        print(f"usage: {argv[0]} [--check]", file=sys.stderr)
        return 2
    with open(OUTPUT, "w", encoding="utf-8") as f:
        f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
