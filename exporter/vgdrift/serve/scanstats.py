"""What the scan loop leaves for scrapes: the last result and the counters.

The scan loop hands every finished scan (or failure) to a `ScanStats`; the
collector turns a snapshot of it into metric families at scrape time.  A
scrape never touches a disk.
"""

import os
import threading
import time
from dataclasses import dataclass
from typing import Dict, Optional, Tuple

from .. import model
from ..verdict.actions import unknown_actions

# Whole scans take from about a millisecond (a few cached VGs, page-cached
# reads) to the scan timeout (a hung path); the last bucket covers 60 s.
SCAN_DURATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                         0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

# Readiness: the last completed scan must be younger than this many
# intervals (LVMDriftScanFailing's threshold is the same 5 intervals).
READY_INTERVALS = 5


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


def keep_unknown(previous: Optional[model.CheckResult], result: model.CheckResult) -> model.CheckResult:
    """`result`, plus the VGs of `previous` that it lost only because their
    cache directory could not be listed, in state unknown.

    A VG whose series vanish resolves its drift and unsafe alerts: "I cannot
    tell" must not look like "nothing to report".  A VG whose directory was
    listed and whose file is gone was removed (its series go); one whose file
    is there but unreadable is already reported unknown by the scan.  The
    cached side (identity, seqno, mtime) is what was last read; the disk side
    and the PV counts are dropped, since nothing about them is known now.
    """
    if previous is None:
        return result
    present = {vg.name for vg in result.vgs}
    unlisted = {e.where: e for e in result.errors
                if e.reason in (model.REASON_CACHE, model.REASON_PERMISSION) and e.vg is None}
    if not unlisted:
        return result
    kept = []
    for vg in previous.vgs:
        if vg.name in present:
            continue
        error = unlisted.get(os.path.dirname(vg.cache.path))
        if error is None:
            continue
        present.add(vg.name)
        kept.append(vg._replace(state=model.UNKNOWN, disk=None, pvs=(), changes=(),
                                actions=unknown_actions(vg.cache.path), reason=error.reason,
                                duration_seconds=0.0))
    if not kept:
        return result
    return result._replace(vgs=tuple(result.vgs) + tuple(kept), unknown=True)


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
        self._last_monotonic: Optional[float] = None
        self._last_success = False

    @property
    def ready(self) -> bool:
        """True once a scan has finished (successfully or not)."""
        with self._lock:
            return self._scans > 0

    def readiness(self, interval: float, now: Optional[float] = None) -> str:
        """"" when ready; otherwise why not, in a few words: no scan has
        finished yet, or the last one finished more than READY_INTERVALS
        intervals ago (the scan loop is stuck or dead)."""
        with self._lock:
            last = self._last_monotonic
        if last is None:
            return "no scan has finished yet"
        age = (time.monotonic() if now is None else now) - last
        if age > READY_INTERVALS * interval:
            return "the last scan finished %.0f s ago (more than %d scan intervals)" % (age, READY_INTERVALS)
        return ""

    @property
    def generation(self) -> int:
        """Changes exactly when what the collector yields changes."""
        with self._lock:
            return self._scans

    def record(self, result: model.CheckResult) -> model.CheckResult:
        """Account a completed scan and make its result the one exported;
        returns what is exported (see keep_unknown)."""
        with self._lock:
            result = keep_unknown(self._result, result)
            self._count_scan(result.duration_seconds,
                             result.started + result.duration_seconds,
                             result.success)
            for err in result.errors:
                self._count_error(err.reason)
            self._reads += result.reads
            self._read_bytes += result.read_bytes
            self._result = result
            return result

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
        self._last_monotonic = time.monotonic()
        self._last_success = success

    def _count_error(self, reason: str) -> None:
        # The reason label set is fixed so that series and alerts stay stable;
        # anything unexpected is by definition an internal error.
        if reason not in self._errors:
            reason = model.REASON_INTERNAL
        self._errors[reason] += 1
