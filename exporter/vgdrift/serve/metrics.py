"""The exporter's metrics, described once.

The collector builds its families from this table, the README's metric
table is checked against it (tests/test_metrics_table.py) and so is the
golden exposition: a metric added, renamed or relabelled here and not there
fails a test instead of drifting silently.
"""

from dataclasses import dataclass
from typing import Dict, Tuple


@dataclass(frozen=True)
class Desc:
    name: str
    type: str                    # gauge, counter, histogram
    labels: Tuple[str, ...]
    help: str
    source: str = "scan"         # scan: from the last scan (collector, textfile); http: the server's own


METRICS: Tuple[Desc, ...] = (
    Desc("vgdrift_vg_state", "gauge", ("vg", "state"),
         "1 for the VG's current state, 0 for the other states."),
    Desc("vgdrift_vg_drift", "gauge", ("vg",),
         "1 when cache and disk disagree about the VG."),
    Desc("vgdrift_vg_seqno", "gauge", ("vg", "source"),
         "VG metadata sequence number in the cache and on disk."),
    Desc("vgdrift_vg_mtime_seconds", "gauge", ("vg", "source"),
         "VG metadata creation time in the cache and on disk."),
    Desc("vgdrift_vg_drift_seconds", "gauge", ("vg",),
         "Disk metadata time minus cached metadata time while drifted, else 0."),
    Desc("vgdrift_vg_pvs", "gauge", ("vg", "state"), "PVs of the VG per state."),
    Desc("vgdrift_vg_info", "gauge", ("vg", "vg_uuid", "cache_host", "disk_host", "system_id"),
         "VG identity as seen in the cache and on disk."),
    Desc("vgdrift_vg_scan_duration_seconds", "gauge", ("vg",),
         "Time spent on this VG in the last scan."),
    Desc("vgdrift_vg_blocked", "gauge", ("vg", "reason"),
         "Reasons this node's LVM, as configured, would not activate the VG: blockers per reason."),
    Desc("vgdrift_vg_owned", "gauge", ("vg",),
         "1 when the VG's LVM system ID is this node's (absent when this node's is unknown)."),
    Desc("vgdrift_vg_autoactivation", "gauge", ("vg",),
         "1 when this node's LVM would activate the VG by itself at boot (absent when unknown)."),
    Desc("vgdrift_unknown_vg_info", "gauge", ("vg", "vg_uuid", "system_id", "creation_host"),
         "A VG on this node's candidate devices that no cache file describes (last discovery); always 1."),
    Desc("vgdrift_unknown_vgs", "gauge", (),
         "VGs on this node's candidate devices that no cache file describes (last discovery)."),
    Desc("vgdrift_last_discovery_timestamp_seconds", "gauge", (),
         "When the last discovery of VGs that no cache file describes ran (absent before the first)."),
    Desc("vgdrift_node_lvm_info", "gauge", ("use_devicesfile", "system_id_source", "local_system_id"),
         "This node's LVM configuration as the last scan read it; always 1."),
    Desc("vgdrift_scan_duration_seconds", "histogram", (), "Duration of whole scans."),
    Desc("vgdrift_scans_total", "counter", (), "Scans run."),
    Desc("vgdrift_scan_errors_total", "counter", ("reason",), "Scan errors by reason."),
    Desc("vgdrift_last_scan_timestamp_seconds", "gauge", (), "When the last scan finished."),
    Desc("vgdrift_last_scan_success", "gauge", (), "1 if the last scan produced a usable answer."),
    Desc("vgdrift_device_reads_total", "counter", (), "Block reads issued to devices."),
    Desc("vgdrift_device_read_bytes_total", "counter", (), "Bytes read from devices."),
    Desc("vgdrift_build_info", "gauge", ("version", "python"), "vgdrift version and Python version."),
    Desc("vgdrift_http_refused_total", "counter", ("reason",),
         "HTTP connections refused or cut off by the server's limits, by reason.", source="http"),
)

BY_NAME: Dict[str, Desc] = {d.name: d for d in METRICS}

# vgdrift_http_refused_total's reasons, fixed so that its series exist from
# the start: over capacity (503), one client's share full (503), an idle
# connection closed to make room, a deadline passed (first byte, request
# head, whole connection), a request that could not be parsed safely (4xx).
HTTP_REFUSAL_REASONS = ("capacity", "client_limit", "evicted", "deadline", "bad_request")
