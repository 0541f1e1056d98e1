"""The prometheus_client collector over a `ScanStats`.

Families are built from the descriptor table (metrics.py) at scrape time,
from a snapshot of what the last scan left in memory.  The scan counters
live in scanstats.py, the node_exporter textfile in textfile.py and the
HTTP render cache in exposition.py; the names are re-exported here for the
callers that predate the split.
"""

import platform
from dataclasses import replace
from typing import Any, Dict, Iterator, List, Optional

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric

from .. import __version__, model
from .metrics import BY_NAME
from .scanstats import SCAN_DURATION_BUCKETS, ScanStats, Snapshot
from .textfile import TextfileError, render_textfile, write_textfile

__all__ = ["SCAN_DURATION_BUCKETS", "ScanStats", "Snapshot", "TextfileError", "VgdriftCollector",
           "family", "render_textfile", "write_textfile"]

_KINDS = {"gauge": GaugeMetricFamily, "counter": CounterMetricFamily}


def family(name: str, **kwargs: Any) -> Any:
    """An empty (or valued, with value=) family of the table's metric `name`."""
    desc = BY_NAME[name]
    kind = _KINDS[desc.type]
    if desc.labels:
        return kind(name, desc.help, labels=list(desc.labels), **kwargs)
    return kind(name, desc.help, **kwargs)


class VgdriftCollector:
    """prometheus_client custom collector over a `ScanStats`."""

    def __init__(self, stats: ScanStats, version: str = __version__,
                 python: Optional[str] = None) -> None:
        self._stats = stats
        self._build_labels = [version, python or platform.python_version()]

    def describe(self) -> Iterator[Metric]:
        # The registry only needs the names: a snapshot "after a scan" with
        # no VGs yields every family, without samples for the VG ones.
        # (and "after a discovery": the discovery families are named too).
        return self._families(replace(ScanStats().snapshot(), last_scan_timestamp=0.0,
                                      result=model.CheckResult("", 0.0, 0.0, (), discovered=0.0)))

    def collect(self) -> Iterator[Metric]:
        return self._families(self._stats.snapshot())

    def _families(self, snap: Snapshot) -> Iterator[Metric]:
        yield from _vg_families(snap.result)
        yield from _scan_families(snap)
        info = family("vgdrift_build_info")
        info.add_metric(self._build_labels, 1)
        yield info


_VG_FAMILIES = ("vgdrift_vg_state", "vgdrift_vg_drift", "vgdrift_vg_seqno", "vgdrift_vg_mtime_seconds",
                "vgdrift_vg_drift_seconds", "vgdrift_vg_pvs", "vgdrift_vg_info",
                "vgdrift_vg_scan_duration_seconds", "vgdrift_vg_blocked", "vgdrift_vg_owned",
                "vgdrift_vg_autoactivation")


def _vg_families(result: Optional[model.CheckResult]) -> Iterator[Metric]:
    f: Dict[str, Any] = {name: family(name) for name in _VG_FAMILIES}
    seen = set()
    for vg in result.vgs if result else ():
        # Two cache dirs may hold the same VG name; duplicate label sets would
        # make the whole exposition invalid, so the first one wins.
        if vg.name in seen:
            continue
        seen.add(vg.name)
        for s in model.VG_STATES:
            f["vgdrift_vg_state"].add_metric([vg.name, s], 1 if vg.state == s else 0)
        f["vgdrift_vg_drift"].add_metric([vg.name], 1 if vg.drifted else 0)
        f["vgdrift_vg_seqno"].add_metric([vg.name, "cache"], vg.cache.seqno)
        f["vgdrift_vg_mtime_seconds"].add_metric([vg.name, "cache"], vg.cache.mtime)
        if vg.disk is not None:
            f["vgdrift_vg_seqno"].add_metric([vg.name, "disk"], vg.disk.seqno)
            f["vgdrift_vg_mtime_seconds"].add_metric([vg.name, "disk"], vg.disk.mtime)
        delta = vg.disk.mtime - vg.cache.mtime if vg.drifted and vg.disk else 0
        f["vgdrift_vg_drift_seconds"].add_metric([vg.name], delta)
        for s, n in vg.pv_counts().items():
            f["vgdrift_vg_pvs"].add_metric([vg.name, s], n)
        # vg_uuid: the id of the VG read from disk, the key that joins a VG
        # across nodes; the cached id only when no disk copy was read.
        # Under uuid_mismatch it is the disk's VG, never the cached id.
        join_uuid = vg.disk.uuid if vg.disk is not None and vg.disk.uuid else vg.uuid
        f["vgdrift_vg_info"].add_metric([vg.name, join_uuid, vg.cache.host,
                                         vg.disk.host if vg.disk else "", vg.system_id], 1)
        f["vgdrift_vg_scan_duration_seconds"].add_metric([vg.name], vg.duration_seconds)
        # Readiness: every reason always present; ownership and
        # autoactivation only where known (0 would be a confident answer).
        for reason, n in vg.blocker_counts().items():
            f["vgdrift_vg_blocked"].add_metric([vg.name, reason], n)
        if vg.owner is not None and vg.owner.this_node is not None:
            f["vgdrift_vg_owned"].add_metric([vg.name], 1 if vg.owner.this_node else 0)
        if vg.autoactivation is not None:
            f["vgdrift_vg_autoactivation"].add_metric([vg.name], 1 if vg.autoactivation else 0)
    yield from f.values()
    yield from _unknown_families(result)
    info = family("vgdrift_node_lvm_info")
    if result is not None and result.lvm is not None:
        info.add_metric(node_lvm_labels(result.lvm), 1)
    yield info


def _unknown_families(result: Optional[model.CheckResult]) -> Iterator[Metric]:
    """VGs the last discovery found that no cache file describes.  The
    count and the timestamp are absent until a discovery ran (0 would say
    "none" before anything was looked at)."""
    info = family("vgdrift_unknown_vg_info")
    seen = set()
    for u in result.unknown_vgs if result else ():
        if u.uuid in seen:
            continue
        seen.add(u.uuid)
        info.add_metric([u.name, u.uuid, u.system_id, u.host], 1)
    yield info
    if result is not None and result.discovered is not None:
        yield family("vgdrift_unknown_vgs", value=len(seen))
        yield family("vgdrift_last_discovery_timestamp_seconds", value=result.discovered)


def node_lvm_labels(lvm: model.NodeLVMInfo) -> List[str]:
    """vgdrift_node_lvm_info's labels: use_devicesfile "1", "0" or
    "unknown"; local_system_id "" for none, "unknown" when vgdrift cannot
    tell (system_id_source appmachineid, or a configuration it could not
    read)."""
    use = {True: "1", False: "0", None: "unknown"}[lvm.use_devicesfile]
    local = "unknown" if lvm.local_system_id is None else lvm.local_system_id
    return [use, lvm.system_id_source, local]


def _scan_families(snap: Snapshot) -> Iterator[Metric]:
    cumulative = 0
    buckets: List = []
    for bound, n in zip(SCAN_DURATION_BUCKETS + (float("inf"),), snap.buckets):
        cumulative += n
        buckets.append((_le(bound), cumulative))
    name = "vgdrift_scan_duration_seconds"
    yield HistogramMetricFamily(name, BY_NAME[name].help, buckets=buckets, sum_value=snap.duration_sum)
    yield family("vgdrift_scans_total", value=snap.scans)
    errors = family("vgdrift_scan_errors_total")
    for reason, n in zip(model.ERROR_REASONS, snap.errors):
        errors.add_metric([reason], n)
    yield errors
    # Absent rather than 0 before the first scan: a zero timestamp would look
    # like a scan that has been stale since 1970.
    if snap.last_scan_timestamp is not None:
        yield family("vgdrift_last_scan_timestamp_seconds", value=snap.last_scan_timestamp)
        yield family("vgdrift_last_scan_success", value=1 if snap.last_scan_success else 0)
    yield family("vgdrift_device_reads_total", value=snap.reads)
    yield family("vgdrift_device_read_bytes_total", value=snap.read_bytes)


def _le(bound: float) -> str:
    return "+Inf" if bound == float("inf") else repr(float(bound))
