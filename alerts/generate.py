#!/usr/bin/env python3
# ruff: noqa: E501
# (The template holds the rules file as rendered: long PromQL and Go templates.)
"""Render alerts/vgdrift.rules.yml, the Prometheus rules for vgdrift.

    python3 alerts/generate.py                     # rewrite alerts/vgdrift.rules.yml (the defaults)
    python3 alerts/generate.py --check             # exit 1 if the committed file is stale
    python3 alerts/generate.py --job lvm-drift -o /etc/prometheus/rules/vgdrift.rules.yml
    python3 alerts/generate.py --for LVMVGNodesDisagree=20m --scan-slow-seconds 10 -o -

The selectors, `for` durations and thresholds are parameters (Params), not
text to edit: the rules are one template with [[name]] placeholders (Go
templates own {{ }} and PromQL owns single brackets), each of which must be
a parameter, and every parameter must be used.  The committed file is the
rendering with the defaults (tests/test_alerts.py checks it).  Standard
library only, like grafana/generate.py.
"""

import argparse
import os
import re
import sys
from dataclasses import dataclass, field
from typing import Dict, List, Optional

HERE = os.path.dirname(os.path.abspath(__file__))
OUTPUT = os.path.join(HERE, "vgdrift.rules.yml")

# alert name -> its `for` parameter
FOR_KEYS = {
    "LVMVGMetadataDrift": "drift",
    "LVMVGMetadataDriftPersistent": "drift_persistent",
    "LVMVGFailoverUnsafe": "unsafe",
    "LVMVGStateUnknown": "state_unknown",
    "LVMVGAutoactivationEnabled": "autoactivation",
    "LVMDriftScanFailing": "scan_failing",
    "LVMDriftExporterDown": "exporter_down",
    "LVMDriftScanSlow": "scan_slow",
    "LVMDriftNoVGs": "no_vgs",
    "LVMVGNodesDisagree": "nodes_disagree",
    "LVMVGUnknownOnNode": "unknown_on_node",
}
DEFAULT_FORS = {
    "drift": "15m", "drift_persistent": "4h", "unsafe": "5m", "state_unknown": "10m",
    "autoactivation": "30m", "scan_failing": "5m", "exporter_down": "5m", "scan_slow": "15m",
    "no_vgs": "15m", "nodes_disagree": "10m", "unknown_on_node": "30m",
}
_DURATION = re.compile(r"^(\d+(ms|s|m|h|d|w|y))+$")
_JOB = re.compile(r"^[A-Za-z0-9_.:/-]+$")      # a job name that needs no escaping in a matcher


@dataclass(frozen=True)
class Params:
    job: str = "vgdrift"
    fors: Dict[str, str] = field(default_factory=lambda: dict(DEFAULT_FORS))
    scan_stale_seconds: int = 150      # LVMDriftScanFailing: 5 scan intervals of 30 s
    scan_slow_seconds: int = 5         # LVMDriftScanSlow: below the histogram's largest finite bucket (60)
    nodes_disagree_seqnos: int = 0     # LVMVGNodesDisagree: a seqno difference above this
    runbook_prefix: str = "https://vgdrift.example.org/"

    def check(self) -> None:
        if not _JOB.match(self.job):
            raise ValueError(f"job {self.job!r}: letters, digits and _.:/- only")
        unknown = set(self.fors) - set(DEFAULT_FORS)
        if unknown:
            raise ValueError(f"unknown `for` parameter(s): {', '.join(sorted(unknown))}")
        for key, value in self.fors.items():
            if not _DURATION.match(value):
                raise ValueError(f"for {key}: {value!r} is not a Prometheus duration")
        if not 0 < self.scan_slow_seconds < 60:
            raise ValueError("scan_slow_seconds must be between 1 and 59 (the histogram's last bucket is 60 s)")
        if self.scan_stale_seconds <= 0 or self.nodes_disagree_seqnos < 0:
            raise ValueError("thresholds must be positive (nodes_disagree_seqnos: 0 or more)")
        if not self.runbook_prefix.endswith("/"):
            raise ValueError("runbook_prefix must end with /")

    def values(self) -> Dict[str, str]:
        out = {"job": self.job, "scan_stale_seconds": str(self.scan_stale_seconds),
               "scan_slow_seconds": str(self.scan_slow_seconds),
               "nodes_disagree_seqnos": str(self.nodes_disagree_seqnos),
               "runbook_prefix": self.runbook_prefix, "generated_with": self.describe()}
        fors = dict(DEFAULT_FORS)
        fors.update(self.fors)
        out.update({f"for_{k}": v for k, v in fors.items()})
        return out

    def describe(self) -> str:
        """The generator's arguments that differ from the defaults."""
        args = []
        default = Params()
        if self.job != default.job:
            args.append(f"--job {self.job}")
        for name, key in FOR_KEYS.items():
            if self.fors.get(key, DEFAULT_FORS[key]) != DEFAULT_FORS[key]:
                args.append(f"--for {name}={self.fors[key]}")
        for f in ("scan_stale_seconds", "scan_slow_seconds", "nodes_disagree_seqnos", "runbook_prefix"):
            if getattr(self, f) != getattr(default, f):
                args.append(f"--{f.replace('_', '-')} {getattr(self, f)}")
        return "arguments: " + " ".join(args) if args else "the defaults"


_PLACEHOLDER = re.compile(r"\[\[(\w+)(?::([^\]]*))?\]\]")


def render(params: Optional[Params] = None) -> str:
    params = params or Params()
    params.check()
    values = params.values()
    used = set()

    def sub(m: "re.Match[str]") -> str:
        name, spec = m.group(1), m.group(2) or ""
        if name not in values:
            raise KeyError(f"template placeholder [[{name}]] is not a parameter")
        used.add(name)
        return format(values[name], spec)

    text = _PLACEHOLDER.sub(sub, TEMPLATE)
    unused = set(values) - used
    if unused:
        raise KeyError(f"parameters not used by the template: {', '.join(sorted(unused))}")
    return text


def parse_args(argv: List[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="alerts/generate.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--job", default=Params.job, help="scrape job of the exporters (default vgdrift)")
    p.add_argument("--for", dest="fors", action="append", default=[], metavar="ALERT=DURATION",
                   help="`for` of one alert (repeatable): " + ", ".join(FOR_KEYS))
    p.add_argument("--scan-stale-seconds", type=int, default=Params.scan_stale_seconds)
    p.add_argument("--scan-slow-seconds", type=int, default=Params.scan_slow_seconds)
    p.add_argument("--nodes-disagree-seqnos", type=int, default=Params.nodes_disagree_seqnos)
    p.add_argument("--runbook-prefix", default=Params.runbook_prefix)
    p.add_argument("-o", "--output", default=OUTPUT, help="file to write, - for stdout (default the committed file)")
    p.add_argument("--check", action="store_true", help="exit 1 if --output differs from the rendering")
    return p.parse_args(argv)


def params_from(args: argparse.Namespace) -> Params:
    fors = dict(DEFAULT_FORS)
    for item in args.fors:
        name, sep, value = item.partition("=")
        if not sep or name not in FOR_KEYS:
            raise ValueError(f"--for {item}: expected ALERT=DURATION with ALERT one of {', '.join(FOR_KEYS)}")
        fors[FOR_KEYS[name]] = value
    return Params(job=args.job, fors=fors, scan_stale_seconds=args.scan_stale_seconds,
                  scan_slow_seconds=args.scan_slow_seconds, nodes_disagree_seqnos=args.nodes_disagree_seqnos,
                  runbook_prefix=args.runbook_prefix)


def main(argv: List[str]) -> int:
    args = parse_args(argv)
    try:
        text = render(params_from(args))
    except ValueError as e:
        print(f"alerts/generate.py: {e}", file=sys.stderr)
        return 2
    if args.check:
        try:
            with open(args.output, encoding="utf-8") as f:
                current = f.read()
        except OSError as e:
            print(f"alerts/generate.py: {e}", file=sys.stderr)
            return 1
        if current != text:
            print(f"{args.output} is not the rendering; run python3 alerts/generate.py", file=sys.stderr)
            return 1
        return 0
    if args.output == "-":
        sys.stdout.write(text)
        return 0
    tmp = args.output + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, args.output)
    return 0


TEMPLATE = r"""# Prometheus alerting rules for vgdrift: is each standby node's cached LVM
# metadata (/etc/lvm/backup) still current with the shared disks, i.e. can
# it take over its volume groups?
#
# GENERATED by alerts/generate.py ([[generated_with]]); do not edit by hand.
#
# Install: add this file to `rule_files:` in prometheus.yml.
# Check:   promtool check rules alerts/vgdrift.rules.yml
#          promtool test rules alerts/tests/*.yml
#
# SELECTOR -- every expression selects the exporter with  job="[[job]]".
# For a scrape job with another name, render the rules for it (the job, the
# `for` durations and the thresholds are parameters of the generator):
#     python3 alerts/generate.py --job lvm-drift --output /etc/prometheus/rules/vgdrift.rules.yml
# (the unit tests in alerts/tests/ are written for the default rendering).
# LVMDriftExporterDown uses absent(up{job="[[job]]"}) to notice the whole job
# vanishing (scrape config dropped, service discovery broken); a wrong job
# name therefore makes it fire, never stay silently green.  A single target
# removed from service discovery while others remain is NOT detected (removal
# is usually deliberate); with a fixed node list, add an alert on
# count(up{job="[[job]]"}) < <number of nodes>.
#
# ASSUMPTIONS: the exporter's default scan interval (30 s) and a scrape
# interval of 30 s or less.  Thresholds are expressed in multiples of that.
#
# | alert                          | severity | condition                                       | for  |
# |--------------------------------|----------|-------------------------------------------------|------|
# | LVMVGMetadataDrift             | warning  | VG state drift (cache behind disk)              | [[for_drift:<4]] |
# | LVMVGMetadataDriftPersistent   | critical | the same, still not refreshed                   | [[for_drift_persistent:<4]] |
# | LVMVGFailoverUnsafe            | critical | cache_ahead, conflict, uuid_mismatch, partial,  | [[for_unsafe:<4]] |
# |                                |          | blocked, missing, inconsistent or unreadable    |      |
# | LVMVGStateUnknown              | warning  | VG state unknown (its cached copy unreadable)   | [[for_state_unknown:<4]] |
# | LVMVGAutoactivationEnabled     | warning  | the node's LVM would activate the VG at boot    | [[for_autoactivation:<4]] |
# | LVMDriftScanFailing            | warning  | last scan failed, last scan older than [[scan_stale_seconds:<3]] s    | [[for_scan_failing:<4]] |
# |                                |          | (5 scan intervals), or none finished since start|      |
# | LVMDriftExporterDown           | critical | up == 0, or no up{job=...} at all               | [[for_exporter_down:<4]] |
# | LVMDriftScanSlow               | warning  | p90 scan duration over 10m above [[scan_slow_seconds:<3]] s           | [[for_scan_slow:<4]] |
# | LVMDriftNoVGs                  | warning  | scans succeed but report no VG                  | [[for_no_vgs:<4]] |
# | LVMVGNodesDisagree             | critical | nodes read different seqnos of one VG (vg_uuid) | [[for_nodes_disagree:<4]] |
# |                                |          | from disk: one does not see the others' disks   |      |
# | LVMVGUnknownOnNode             | warning  | a VG on the node's disks is in no cache file    | [[for_unknown_on_node:<4]] |
# |                                |          | (discovery; no look-back)                       |      |
#
# - Drift ([[for_drift]]): an LVM change on the active node (lvextend, lvcreate...)
#   leaves every standby in state drift until it refreshes its cache; [[for_drift]]
#   leaves time for an automatic refresh before anyone is told.
# - Drift persistent ([[for_drift_persistent]]): the refresh never happened; a failover now would
#   start from stale metadata.  Raise it above the period of any scheduled
#   refresh (e.g. a cron'ed vgcfgbackup) you rely on.
# - The VG state alerts use last_over_time(...[5m]) == 1 rather than the raw
#   state so that a missed scrape (exporter restart: its series go stale for
#   a moment) does not restart the [[for_drift_persistent]] `for` clock.  They start and resolve
#   on the first sample that changes the state, like the raw state would.
#   The price: when a VG's series disappear (its backup removed, the VG
#   excluded, the exporter down), its alert keeps firing for up to 5 more
#   minutes and then resolves on its own.  A "resolved" that arrives together
#   with LVMDriftExporterDown means nothing was fixed (see RUNBOOK.md).
# - Scan slow ([[scan_slow_seconds]] s): a healthy scan reads a few sectors per PV and takes well
#   under a second; [[scan_slow_seconds]] s means slow or failing paths, and the one-shot check a
#   failover script runs will be as slow.  The threshold must stay below the
#   largest finite bucket of vgdrift_scan_duration_seconds, or
#   histogram_quantile can never exceed it.
# - State unknown ([[for_state_unknown]], warning): the exporter cannot read the VG's cached
#   copy (cache directory or file deleted, or its permissions changed), so
#   it can tell nothing about the VG. The VG keeps its series in state
#   unknown rather than vanishing, so that this alert replaces the drift or
#   unsafe alert it had instead of resolving silently. A warning, not a
#   page: the disks did not change, the node's own view of them did; a
#   failover script on that node gets exit 3 and stops.
# - Autoactivation ([[for_autoactivation]], warning): the node's LVM, as configured, would
#   activate the VG by itself at boot (vgchange -aay); for a shared VG that
#   means two active nodes after a reboot, i.e. data corruption.  Not a
#   page: nothing is wrong until a reboot; [[for_autoactivation]] lets a deliberate change
#   (vgchange --setautoactivation n on the owner) land first.  Every VG in
#   the node's cache counts: exclude node-local VGs (the root VG) from the
#   exporter (vgs.exclude), or they fire too.
#
# SEVERITIES AND DOUBLE NOTIFICATION: the same drift first fires
# LVMVGMetadataDrift (warning) and, after [[for_drift_persistent]], also
# LVMVGMetadataDriftPersistent (critical); both stay active.  This is
# deliberate (a ticket first, a page when nobody acted).  The example
# Alertmanager config (alerts/alertmanager.example.yml) has an inhibit rule:
# a critical vgdrift alert mutes warning vgdrift alerts with the same job,
# instance and vg, so the page replaces the ticket instead of doubling it.
# LVMDriftExporterDown likewise mutes the scan warnings of its instance.
#
# - Nodes disagree ([[for_nodes_disagree]], critical): every node reads the same shared
#   disks, so every node that reads a VG (joined by vg_uuid, the id of the
#   VG read from disk: names are not unique, ids are) should see the same
#   seqno.  A commit in flight differs for at most a scan interval; a
#   lasting difference means one node sees other bytes than its peers: a
#   replica or snapshot LUN, a wrong LUN mapping, a stale multipath map.
#   That node says in_sync against its own (stale) cache: only this rule,
#   evaluated across nodes, can catch it.  A VG whose disk holds another VG
#   than the cache (uuid_mismatch) is joined under the disk's id, never the
#   cached one.
# - Unknown on node ([[for_unknown_on_node]], warning): discovery (vgdrift serve
#   --discovery.interval, default 10m) found a VG on the node's disks that no
#   cache file there describes (created elsewhere): the node could not take
#   it over.  No look-back: the exporter drops the series at the first scan
#   after a vgcfgbackup on that node, and the alert resolves then; an
#   exporter restart restarts the `for` clock.  Exclude unrelated VGs with
#   the exporter's vgs.exclude.
#
# RECORDING RULES (level:metric:operations) shared by these alerts and the
# dashboard:
#   instance_vg_uuid:vgdrift_vg_disk_seqno:join  each node's disk seqno of a VG, with vg_uuid
#   instance_vg_uuid:vgdrift_vg_state:join       each node's state of a VG (value 1), with vg_uuid
#   vg_uuid:vgdrift_vg_disk_seqno:max / :min     the newest and oldest disk seqno any node reads
#   vg_uuid:vgdrift_vg_disk_seqno:count          how many nodes read the VG from disk
#
# Labels: VG alerts carry job, instance, vg and state (the VG state);
# LVMVGUnknownOnNode carries job, instance, vg and vg_uuid; LVMVGNodesDisagree
# carries job, vg_uuid and vg (the name on the node with the newest seqno)
# and names the instances in its description; node alerts carry job and
# instance (LVMDriftExporterDown from absent() carries job only).  Every
# alert carries severity.
#
# RUNBOOK: runbook_url points at alerts/RUNBOOK.md; replace the
# [[runbook_prefix]] prefix with wherever you publish this
# repository, keeping the path and the #anchor.

groups:
  - name: vgdrift
    rules:
      # Recording rules first: a group evaluates its rules in order, so the
      # alerts below see this evaluation's values.
      - record: instance_vg_uuid:vgdrift_vg_disk_seqno:join
        expr: >-
          max without (source) (vgdrift_vg_seqno{job="[[job]]", source="disk"})
          * on (job, instance, vg) group_left (vg_uuid)
          vgdrift_vg_info{job="[[job]]"}

      - record: instance_vg_uuid:vgdrift_vg_state:join
        expr: >-
          (vgdrift_vg_state{job="[[job]]"} == 1)
          * on (job, instance, vg) group_left (vg_uuid)
          vgdrift_vg_info{job="[[job]]"}

      - record: vg_uuid:vgdrift_vg_disk_seqno:max
        expr: max by (job, vg_uuid) (instance_vg_uuid:vgdrift_vg_disk_seqno:join{job="[[job]]"})

      - record: vg_uuid:vgdrift_vg_disk_seqno:min
        expr: min by (job, vg_uuid) (instance_vg_uuid:vgdrift_vg_disk_seqno:join{job="[[job]]"})

      - record: vg_uuid:vgdrift_vg_disk_seqno:count
        expr: count by (job, vg_uuid) (instance_vg_uuid:vgdrift_vg_disk_seqno:join{job="[[job]]"})

      - alert: LVMVGMetadataDrift
        expr: last_over_time(vgdrift_vg_state{job="[[job]]", state="drift"}[5m]) == 1
        for: [[for_drift]]
        labels:
          severity: warning
        annotations:
          summary: Cached LVM metadata of a VG is behind the shared disks; the node needs a refresh before it can take over.
          description: >-
            On {{ $labels.instance }}, the cached metadata of VG {{ $labels.vg }}
            (/etc/lvm/backup) is behind the shared disks: cached seqno
            {{ with printf `vgdrift_vg_seqno{job=%q,instance=%q,vg=%q,source="cache"}` $labels.job $labels.instance $labels.vg | query }}{{ . | first | value }}{{ else }}unknown{{ end }},
            disk seqno
            {{ with printf `vgdrift_vg_seqno{job=%q,instance=%q,vg=%q,source="disk"}` $labels.job $labels.instance $labels.vg | query }}{{ . | first | value }}{{ else }}unknown{{ end }},
            the disk copy
            {{ with printf `vgdrift_vg_drift_seconds{job=%q,instance=%q,vg=%q}` $labels.job $labels.instance $labels.vg | query }}{{ . | first | value | humanizeDuration }}{{ else }}an unknown time{{ end }}
            newer. Refresh it on that node (`vgcfgbackup {{ $labels.vg }}`)
            before this node takes over the VG.
          runbook_url: [[runbook_prefix]]alerts/RUNBOOK.md#lvmvgmetadatadrift

      - alert: LVMVGMetadataDriftPersistent
        expr: last_over_time(vgdrift_vg_state{job="[[job]]", state="drift"}[5m]) == 1
        for: [[for_drift_persistent]]
        labels:
          severity: critical
        annotations:
          summary: Cached LVM metadata of a VG has been behind the shared disks for hours; the refresh never happened.
          description: >-
            On {{ $labels.instance }}, the cached metadata of VG {{ $labels.vg }}
            (/etc/lvm/backup) has been behind the shared disks for more than
            [[for_drift_persistent]]. A failover of VG {{ $labels.vg }} to this node would start
            from stale metadata. Refresh it on that node
            (`vgcfgbackup {{ $labels.vg }}`) and find out why the refresh did
            not happen.
          runbook_url: [[runbook_prefix]]alerts/RUNBOOK.md#lvmvgmetadatadriftpersistent

      - alert: LVMVGFailoverUnsafe
        expr: >-
          last_over_time(vgdrift_vg_state{job="[[job]]",
          state=~"cache_ahead|conflict|uuid_mismatch|partial|blocked|missing|inconsistent|unreadable"}[5m]) == 1
        for: [[for_unsafe]]
        labels:
          severity: critical
        annotations:
          summary: Failing an LVM VG over to this node is unsafe.
          description: >-
            On {{ $labels.instance }}, VG {{ $labels.vg }} is in state
            {{ $labels.state }}: cache and disks cannot be reconciled by a
            refresh, the VG's disks are not all readable from this node, or
            this node's LVM, as configured, would not activate it.
            Do not fail VG {{ $labels.vg }} over to this node
            (`vgdrift check --vg {{ $labels.vg }}` exits 2); see the runbook
            section for state {{ $labels.state }}.
          runbook_url: [[runbook_prefix]]alerts/RUNBOOK.md#lvmvgfailoverunsafe

      - alert: LVMVGStateUnknown
        expr: last_over_time(vgdrift_vg_state{job="[[job]]", state="unknown"}[5m]) == 1
        for: [[for_state_unknown]]
        labels:
          severity: warning
        annotations:
          summary: vgdrift cannot read this node's cached copy of a VG; its failover readiness is unknown.
          description: >-
            On {{ $labels.instance }}, vgdrift cannot read the cached metadata
            of VG {{ $labels.vg }} (its file in /etc/lvm/backup, or the
            directory, was removed or made unreadable), so nothing can be told
            about the VG on that node. A failover of VG {{ $labels.vg }} to
            this node is not checked (`vgdrift check --vg {{ $labels.vg }}`
            exits 3). Reasons so far: {{ range $i, $s := printf `increase(vgdrift_scan_errors_total{job=%q,instance=%q}[15m]) > 0` $labels.job $labels.instance | query | sortByLabel "reason" }}{{ if $i }}, {{ end }}{{ $s.Labels.reason }}{{ else }}none counted{{ end }}.
          runbook_url: [[runbook_prefix]]alerts/RUNBOOK.md#lvmvgstateunknown

      - alert: LVMVGAutoactivationEnabled
        expr: last_over_time(vgdrift_vg_autoactivation{job="[[job]]"}[5m]) == 1
        for: [[for_autoactivation]]
        labels:
          severity: warning
        annotations:
          summary: This node's LVM would activate a VG by itself at boot; a shared VG would be active on two nodes.
          description: >-
            On {{ $labels.instance }}, LVM as configured would autoactivate
            VG {{ $labels.vg }} at boot (vgchange -aay). If the VG is shared,
            a reboot of this node activates it beside the node that owns it:
            data corruption. On the node that owns VG {{ $labels.vg }}, run
            `vgchange --setautoactivation n {{ $labels.vg }}` (or exclude it
            with activation/auto_activation_volume_list on every node).
          runbook_url: [[runbook_prefix]]alerts/RUNBOOK.md#lvmvgautoactivationenabled

      # Three cases, told apart by the value: 0 the last scan failed; 1 the
      # target is up but no scan has finished yet (the exporter exports no
      # last-scan metrics until then); > [[scan_stale_seconds]] the age of the last scan.
      - alert: LVMDriftScanFailing
        expr: >-
          vgdrift_last_scan_success{job="[[job]]"} == 0
          or on (job, instance)
          time() - vgdrift_last_scan_timestamp_seconds{job="[[job]]"} > [[scan_stale_seconds]]
          or on (job, instance)
          (up{job="[[job]]"} == 1 unless on (job, instance) vgdrift_last_scan_timestamp_seconds{job="[[job]]"})
        for: [[for_scan_failing]]
        labels:
          severity: warning
        annotations:
          summary: vgdrift has no recent successful scan; the failover readiness of this node's VGs is unknown.
          description: >-
            On {{ $labels.instance }}, vgdrift has no recent successful scan
            ({{ if eq $value 0.0 }}the last scan failed{{ else if eq $value 1.0 }}no
            scan has finished since the exporter started{{ else }}the last scan
            finished {{ $value | humanizeDuration }} ago{{ end }}), so the
            state of its VGs ({{ range $i, $s := printf `last_over_time(vgdrift_vg_info{job=%q,instance=%q}[1h])` $labels.job $labels.instance | query | sortByLabel "vg" }}{{ if $i }}, {{ end }}{{ $s.Labels.vg }}{{ else }}none known{{ end }}) is
            unknown; its VG metrics and alerts cannot be trusted for a
            failover decision.
          runbook_url: [[runbook_prefix]]alerts/RUNBOOK.md#lvmdriftscanfailing

      - alert: LVMDriftExporterDown
        expr: up{job="[[job]]"} == 0 or absent(up{job="[[job]]"})
        for: [[for_exporter_down]]
        labels:
          severity: critical
        annotations:
          summary: The vgdrift exporter is down or not scraped; failover readiness is not monitored.
          description: >-
            {{ if $labels.instance }}The vgdrift exporter on {{ $labels.instance }}
            (job {{ $labels.job }}) cannot be scraped, so no VG of that node
            is monitored and its VG alerts have gone silent (VGs it reported
            in the last day: {{ range $i, $s := printf `last_over_time(vgdrift_vg_info{job=%q,instance=%q}[1d])` $labels.job $labels.instance | query | sortByLabel "vg" }}{{ if $i }}, {{ end }}{{ $s.Labels.vg }}{{ else }}none{{ end }}).{{ else }}No
            target of job {{ $labels.job }} is scraped at all (every instance
            gone: scrape configuration or service discovery broken), so no
            VG of any node is monitored.{{ end }}
          runbook_url: [[runbook_prefix]]alerts/RUNBOOK.md#lvmdriftexporterdown

      - alert: LVMDriftScanSlow
        expr: >-
          histogram_quantile(0.9,
            sum by (job, instance, le) (rate(vgdrift_scan_duration_seconds_bucket{job="[[job]]"}[10m]))
          ) > [[scan_slow_seconds]]
        for: [[for_scan_slow]]
        labels:
          severity: warning
        annotations:
          summary: vgdrift scans are slow; the pre-failover check will be slow too.
          description: >-
            On {{ $labels.instance }}, the 90th percentile of vgdrift scan
            duration over the last 10m is {{ $value | humanizeDuration }}
            (threshold [[scan_slow_seconds]]s). Some VG's disks answer slowly; a check that hits
            its timeout reports the VG as unreadable. Slowest VG in the last
            scan: {{ with printf `topk(1, vgdrift_vg_scan_duration_seconds{job=%q,instance=%q})` $labels.job $labels.instance | query }}{{ . | first | label "vg" }} ({{ . | first | value | humanizeDuration }}){{ else }}unknown{{ end }}.
          runbook_url: [[runbook_prefix]]alerts/RUNBOOK.md#lvmdriftscanslow

      - alert: LVMDriftNoVGs
        expr: >-
          vgdrift_last_scan_success{job="[[job]]"} == 1
          unless on (job, instance)
          vgdrift_vg_state{job="[[job]]"}
        for: [[for_no_vgs]]
        labels:
          severity: warning
        annotations:
          summary: vgdrift scans succeed but report no volume group; nothing is monitored on this node.
          description: >-
            On {{ $labels.instance }}, vgdrift scans succeed but report no VG:
            its cache directory holds no VG backup, or every VG is excluded
            by its options (VGs it reported in the last day: {{ range $i, $s := printf `last_over_time(vgdrift_vg_info{job=%q,instance=%q}[1d])` $labels.job $labels.instance | query | sortByLabel "vg" }}{{ if $i }}, {{ end }}{{ $s.Labels.vg }}{{ else }}none{{ end }}).
            The failover readiness of this node is not monitored.
          runbook_url: [[runbook_prefix]]alerts/RUNBOOK.md#lvmdriftnovgs

      # The value is the seqno difference; vg is the name on the node that
      # reads the newest seqno (topk), so that a rename seen by one node
      # only does not split the VG in two.
      - alert: LVMVGNodesDisagree
        expr: >-
          (vg_uuid:vgdrift_vg_disk_seqno:max{job="[[job]]"} - vg_uuid:vgdrift_vg_disk_seqno:min{job="[[job]]"}
            > [[nodes_disagree_seqnos]])
          * on (job, vg_uuid) group_left (vg)
          (topk by (job, vg_uuid) (1, instance_vg_uuid:vgdrift_vg_disk_seqno:join{job="[[job]]"}) * 0 + 1)
        for: [[for_nodes_disagree]]
        labels:
          severity: critical
        annotations:
          summary: Nodes read different versions of an LVM VG from the shared disks; one of them does not see the disks the others see.
          description: >-
            VG {{ $labels.vg }} ({{ $labels.vg_uuid }}) has different seqnos
            on different nodes' disks: {{ range $i, $s := printf `instance_vg_uuid:vgdrift_vg_disk_seqno:join{job=%q,vg_uuid=%q}` $labels.job $labels.vg_uuid | query | sortByLabel "instance" }}{{ if $i }}, {{ end }}{{ $s.Labels.instance }} seqno {{ $s.Value }}{{ end }}.
            A commit resolves within a scan interval; this has lasted
            [[for_nodes_disagree]]. A node with the older seqno reads other bytes than
            its peers (a replica or snapshot LUN, a wrong LUN mapping, a
            stale multipath map) and may say in_sync against its own cache:
            do not fail VG {{ $labels.vg }} over to it.
          runbook_url: [[runbook_prefix]]alerts/RUNBOOK.md#lvmvgnodesdisagree

      - alert: LVMVGUnknownOnNode
        expr: max without (system_id, creation_host) (vgdrift_unknown_vg_info{job="[[job]]"}) == 1
        for: [[for_unknown_on_node]]
        labels:
          severity: warning
        annotations:
          summary: A VG is on this node's disks but in none of its cache files; the node could not take it over.
          description: >-
            On {{ $labels.instance }}, VG {{ $labels.vg }} ({{ $labels.vg_uuid }})
            is on the node's disks but no cache file there describes it
            (created on another node{{ with printf `vgdrift_unknown_vg_info{job=%q,instance=%q,vg_uuid=%q}` $labels.job $labels.instance $labels.vg_uuid | query }}: {{ . | first | label "creation_host" }}{{ end }}).
            A failover of VG {{ $labels.vg }} to this node would fail. Refresh
            it there (`vgdrift check --discover --vg {{ $labels.vg }}` prints
            the commands: `vgcfgbackup {{ $labels.vg }}`, with --foreign for
            another host's system ID), or exclude it from the exporter if it
            does not belong to this cluster.
          runbook_url: [[runbook_prefix]]alerts/RUNBOOK.md#lvmvgunknownonnode
"""

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
