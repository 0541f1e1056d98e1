"""Prometheus metrics of the last scan.

The scan loop hands every finished scan to a `ScanStats`; the collector turns
a snapshot of it into metric families at scrape time.  A scrape never touches
a disk: it only reads what the last completed scan left in memory.  The same
collector renders the node_exporter textfile for one-shot `check` runs.
"""

import os
import platform
import tempfile
import threading
import zlib
from dataclasses import dataclass, replace
from typing import Dict, Iterator, Optional, Tuple

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import choose_encoder

from .. import __version__, model

# Whole scans take from about a millisecond (a few cached VGs, page-cached
# reads) to the scan timeout (a hung path); the last bucket covers 60 s.
SCAN_DURATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                         0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


@dataclass(frozen=True)
class Snapshot:
    """Everything a scrape needs, copied out under the lock."""
    result: Optional[model.CheckResult]       # last completed scan's result
    scans: int
    errors: Tuple[int, ...]                   # per model.ERROR_REASONS
    buckets: Tuple[int, ...]                  # per SCAN_DURATION_BUCKETS, +Inf last; not cumulative
    duration_sum: float
    reads: int
    read_bytes: int
    last_scan_timestamp: Optional[float]      # None until the first scan ends
    last_scan_success: bool


class ScanStats:
    """Counters and the last result, updated by the scan loop under a lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._result: Optional[model.CheckResult] = None
        self._scans = 0
        self._errors: Dict[str, int] = {r: 0 for r in model.ERROR_REASONS}
        self._buckets = [0] * (len(SCAN_DURATION_BUCKETS) + 1)
        self._duration_sum = 0.0
        self._reads = 0
        self._read_bytes = 0
        self._last_timestamp: Optional[float] = None
        self._last_success = False

    @property
    def ready(self) -> bool:
        """True once a scan has finished (successfully or not)."""
        with self._lock:
            return self._scans > 0

    @property
    def generation(self) -> int:
        """Changes exactly when what the collector yields changes."""
        with self._lock:
            return self._scans

    def record(self, result: model.CheckResult) -> None:
        """Account a completed scan and make its result the one exported."""
        with self._lock:
            self._count_scan(result.duration_seconds,
                             result.started + result.duration_seconds,
                             result.success)
            for err in result.errors:
                self._count_error(err.reason)
            self._reads += result.reads
            self._read_bytes += result.read_bytes
            self._result = result

    def record_failure(self, started: float, duration: float,
                       reason: str = model.REASON_INTERNAL) -> None:
        """Account a scan that produced no result at all.

        The previous result stays exported on purpose: dropping its series
        would resolve drift alerts just because a scan failed.
        vgdrift_last_scan_success=0 tells the story instead.
        """
        with self._lock:
            self._count_scan(duration, started + duration, False)
            self._count_error(reason)

    def snapshot(self) -> Snapshot:
        with self._lock:
            return Snapshot(
                result=self._result, scans=self._scans,
                errors=tuple(self._errors[r] for r in model.ERROR_REASONS),
                buckets=tuple(self._buckets), duration_sum=self._duration_sum,
                reads=self._reads, read_bytes=self._read_bytes,
                last_scan_timestamp=self._last_timestamp,
                last_scan_success=self._last_success)

    def _count_scan(self, duration: float, finished: float, success: bool) -> None:
        self._scans += 1
        self._duration_sum += duration
        index = len(SCAN_DURATION_BUCKETS)
        for i, bound in enumerate(SCAN_DURATION_BUCKETS):
            if duration <= bound:
                index = i
                break
        self._buckets[index] += 1
        self._last_timestamp = finished
        self._last_success = success

    def _count_error(self, reason: str) -> None:
        # The reason label set is fixed so that series and alerts stay stable;
        # anything unexpected is by definition an internal error.
        if reason not in self._errors:
            reason = model.REASON_INTERNAL
        self._errors[reason] += 1


class VgdriftCollector:
    """prometheus_client custom collector over a `ScanStats`."""

    def __init__(self, stats: ScanStats, version: str = __version__,
                 python: Optional[str] = None) -> None:
        self._stats = stats
        self._build_labels = [version, python or platform.python_version()]

    def describe(self) -> Iterator[Metric]:
        # The registry only needs the names: a snapshot "after a scan" with
        # no VGs yields every family, without samples for the VG ones.
        return self._families(replace(ScanStats().snapshot(), last_scan_timestamp=0.0))

    def collect(self) -> Iterator[Metric]:
        return self._families(self._stats.snapshot())

    def _families(self, snap: Snapshot) -> Iterator[Metric]:
        yield from _vg_families(snap.result)
        yield from _scan_families(snap)
        info = GaugeMetricFamily("vgdrift_build_info", "vgdrift version and Python version.",
                                 labels=["version", "python"])
        info.add_metric(self._build_labels, 1)
        yield info


def _vg_families(result: Optional[model.CheckResult]) -> Iterator[Metric]:
    state = GaugeMetricFamily(
        "vgdrift_vg_state", "1 for the VG's current state, 0 for the other states.",
        labels=["vg", "state"])
    drift = GaugeMetricFamily(
        "vgdrift_vg_drift", "1 when cache and disk disagree about the VG.", labels=["vg"])
    seqno = GaugeMetricFamily(
        "vgdrift_vg_seqno", "VG metadata sequence number in the cache and on disk.",
        labels=["vg", "source"])
    mtime = GaugeMetricFamily(
        "vgdrift_vg_mtime_seconds", "VG metadata creation time in the cache and on disk.",
        labels=["vg", "source"])
    drift_seconds = GaugeMetricFamily(
        "vgdrift_vg_drift_seconds",
        "Disk metadata time minus cached metadata time while drifted, else 0.",
        labels=["vg"])
    pvs = GaugeMetricFamily(
        "vgdrift_vg_pvs", "PVs of the VG per state.", labels=["vg", "state"])
    info = GaugeMetricFamily(
        "vgdrift_vg_info", "VG identity as seen in the cache and on disk.",
        labels=["vg", "vg_uuid", "cache_host", "disk_host", "system_id"])
    duration = GaugeMetricFamily(
        "vgdrift_vg_scan_duration_seconds", "Time spent on this VG in the last scan.",
        labels=["vg"])

    seen = set()
    for vg in result.vgs if result else ():
        # Two cache dirs may hold the same VG name; duplicate label sets would
        # make the whole exposition invalid, so the first one wins.
        if vg.name in seen:
            continue
        seen.add(vg.name)
        for s in model.VG_STATES:
            state.add_metric([vg.name, s], 1 if vg.state == s else 0)
        drift.add_metric([vg.name], 1 if vg.drifted else 0)
        seqno.add_metric([vg.name, "cache"], vg.cache.seqno)
        mtime.add_metric([vg.name, "cache"], vg.cache.mtime)
        if vg.disk is not None:
            seqno.add_metric([vg.name, "disk"], vg.disk.seqno)
            mtime.add_metric([vg.name, "disk"], vg.disk.mtime)
        delta = vg.disk.mtime - vg.cache.mtime if vg.drifted and vg.disk else 0
        drift_seconds.add_metric([vg.name], delta)
        for s, n in vg.pv_counts().items():
            pvs.add_metric([vg.name, s], n)
        info.add_metric([vg.name, vg.uuid, vg.cache.host,
                         vg.disk.host if vg.disk else "", vg.system_id], 1)
        duration.add_metric([vg.name], vg.duration_seconds)
    return (state, drift, seqno, mtime, drift_seconds, pvs, info, duration)


def _scan_families(snap: Snapshot) -> Iterator[Metric]:
    cumulative, buckets = 0, []
    for bound, n in zip(SCAN_DURATION_BUCKETS + (float("inf"),), snap.buckets):
        cumulative += n
        buckets.append((_le(bound), cumulative))
    yield HistogramMetricFamily("vgdrift_scan_duration_seconds", "Duration of whole scans.",
                                buckets=buckets, sum_value=snap.duration_sum)
    yield CounterMetricFamily("vgdrift_scans_total", "Scans run.", value=snap.scans)
    errors = CounterMetricFamily("vgdrift_scan_errors_total", "Scan errors by reason.",
                                 labels=["reason"])
    for reason, n in zip(model.ERROR_REASONS, snap.errors):
        errors.add_metric([reason], n)
    yield errors
    # Absent rather than 0 before the first scan: a zero timestamp would look
    # like a scan that has been stale since 1970.
    if snap.last_scan_timestamp is not None:
        yield GaugeMetricFamily("vgdrift_last_scan_timestamp_seconds",
                                "When the last scan finished.",
                                value=snap.last_scan_timestamp)
        yield GaugeMetricFamily("vgdrift_last_scan_success",
                                "1 if the last scan produced a usable answer.",
                                value=1 if snap.last_scan_success else 0)
    yield CounterMetricFamily("vgdrift_device_reads_total", "Block reads issued to devices.",
                              value=snap.reads)
    yield CounterMetricFamily("vgdrift_device_read_bytes_total", "Bytes read from devices.",
                              value=snap.read_bytes)


def _le(bound: float) -> str:
    return "+Inf" if bound == float("inf") else repr(float(bound))


# --- node_exporter textfile -------------------------------------------------

class TextfileError(Exception):
    """The textfile could not be written; str() is one line."""


def render_textfile(result: model.CheckResult, python: Optional[str] = None) -> bytes:
    """The metrics of one scan in the text exposition format."""
    stats = ScanStats()
    stats.record(result)
    registry = CollectorRegistry(auto_describe=True)
    registry.register(VgdriftCollector(stats, python=python))
    return generate_latest(registry)


def write_textfile(path: str, result: model.CheckResult) -> None:
    """Atomically replace `path` with the metrics of `result`.

    node_exporter may read the file at any moment, so it must never see a
    partial one: write a temp file in the same directory (rename is atomic
    only within a filesystem), fsync it, then rename over the target.  The
    temp name does not end in .prom, so node_exporter ignores it.
    """
    data = render_textfile(result)
    directory = os.path.dirname(os.path.abspath(path))
    try:
        fd, tmp = tempfile.mkstemp(dir=directory,
                                   prefix="." + os.path.basename(path) + ".", suffix=".tmp")
    except OSError as e:
        raise TextfileError("cannot write textfile %s: %s" % (path, e.strerror or e)) from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            # mkstemp makes 0600 files; node_exporter usually runs as another user.
            os.fchmod(f.fileno(), 0o644)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise TextfileError("cannot write textfile %s: %s" % (path, e.strerror or e)) from None
    _fsync_dir(directory)


def _fsync_dir(directory: str) -> None:
    # Makes the rename itself durable; best effort, the data is already safe.
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class Exposition:
    """What /metrics serves.  The scan's families change only when a scan
    finishes, so they are rendered (and compressed) once per scan and format,
    and a scrape costs a copy; the `live` registry (process_*) is rendered
    per request and appended.  At 64 VGs rendering alone takes ~10 ms, the
    whole budget of a scrape."""

    _EOF = b"# EOF\n"

    def __init__(self, stats: ScanStats, live: CollectorRegistry):
        self.stats = stats
        self.scan_registry = CollectorRegistry(auto_describe=True)
        self.scan_registry.register(VgdriftCollector(stats))
        self.live = live
        self._lock = threading.Lock()
        self._cache: Dict[tuple, tuple] = {}
        self._asked: Dict[tuple, str] = {}    # (content type, gzip) -> an Accept asking for it

    def warm(self) -> None:
        """Renders the new scan for the formats scrapers asked for so far, so
        that no scrape pays for it (called by the scan loop after a scan)."""
        with self._lock:
            wanted = list(self._asked.items())
        for (_, gzipped), accept in wanted:
            self._scan_part(accept, gzipped)

    def render(self, accept: str, gzipped: bool) -> Tuple[bytes, str]:
        """(body, content type) for a request's Accept header."""
        encoder, content_type = choose_encoder(accept)
        head, comp = self._scan_part(accept, gzipped)
        tail = encoder(self.live)
        if comp is None:
            return head + tail, content_type
        c = comp.copy()
        return head + c.compress(tail) + c.flush(), content_type

    def _scan_part(self, accept: str, gzipped: bool) -> tuple:
        encoder, content_type = choose_encoder(accept)
        key = (self.stats.generation, content_type, gzipped)
        with self._lock:
            cached = self._cache.get(key)
            if len(self._asked) < 8:     # a few formats, not one per odd client
                self._asked.setdefault((content_type, gzipped), accept)
        if cached is None:
            head = encoder(self.scan_registry)
            if head.endswith(self._EOF):      # OpenMetrics: only the very end says EOF
                head = head[:-len(self._EOF)]
            comp = None
            if gzipped:
                # One gzip member for both parts: the compressor is kept
                # after a sync flush and copied for each request's tail.
                comp = zlib.compressobj(6, zlib.DEFLATED, 31)
                head = comp.compress(head) + comp.flush(zlib.Z_SYNC_FLUSH)
            cached = (head, comp)
            with self._lock:
                self._cache = {k: v for k, v in self._cache.items() if k[0] == key[0]}
                self._cache[key] = cached
        return cached
