"""The result of a check: states, exit codes and the frozen records that the
CLI renders and the exporter turns into metrics.  No I/O here."""

from dataclasses import dataclass
from typing import Optional, Tuple

# VG states, in the order the text report and the metrics list them.
IN_SYNC = "in_sync"
DRIFT = "drift"
CACHE_AHEAD = "cache_ahead"
CONFLICT = "conflict"
UUID_MISMATCH = "uuid_mismatch"
PARTIAL = "partial"
MISSING = "missing"
INCONSISTENT = "inconsistent"
UNREADABLE = "unreadable"

VG_STATES = (IN_SYNC, DRIFT, CACHE_AHEAD, CONFLICT, UUID_MISMATCH, PARTIAL,
             MISSING, INCONSISTENT, UNREADABLE)

EXIT_OK = 0
EXIT_DRIFT = 1
EXIT_UNSAFE = 2
EXIT_UNKNOWN = 3

STATE_EXIT = {
    IN_SYNC: EXIT_OK,
    DRIFT: EXIT_DRIFT,
    CACHE_AHEAD: EXIT_UNSAFE,
    CONFLICT: EXIT_UNSAFE,
    UUID_MISMATCH: EXIT_UNSAFE,
    PARTIAL: EXIT_UNSAFE,
    MISSING: EXIT_UNSAFE,
    INCONSISTENT: EXIT_UNSAFE,
    UNREADABLE: EXIT_UNSAFE,
}

# States in which cache and disk disagree about the VG (vgdrift_vg_drift).
DRIFT_STATES = frozenset((DRIFT, CACHE_AHEAD, CONFLICT, UUID_MISMATCH))

# A PV view's status when its device was found and read (views -> compare).
FOUND = "found"

# PV states.
PV_OK = "ok"
PV_MISSING = "missing"
PV_DUPLICATE = "duplicate"
PV_UNREADABLE = "unreadable"
PV_CORRUPT = "corrupt"
PV_STATES = (PV_OK, PV_MISSING, PV_DUPLICATE, PV_UNREADABLE, PV_CORRUPT)

# Reasons carried by errors and by unreadable/corrupt PVs; also the label
# values of vgdrift_scan_errors_total.
REASON_TIMEOUT = "timeout"
REASON_IO = "io_error"
REASON_PERMISSION = "permission"
REASON_CORRUPT = "corrupt"
REASON_CACHE = "cache"
REASON_INTERNAL = "internal"
ERROR_REASONS = (REASON_TIMEOUT, REASON_IO, REASON_PERMISSION, REASON_CORRUPT,
                 REASON_CACHE, REASON_INTERNAL)


@dataclass(frozen=True)
class CacheInfo:
    path: str
    seqno: int
    mtime: int            # creation_time of the backup: the VG's mtime
    host: str
    description: str


@dataclass(frozen=True)
class DiskInfo:
    name: str             # VG name on disk (differs from the cache after a rename)
    seqno: int
    mtime: int
    host: str
    system_id: str


@dataclass(frozen=True)
class PVReport:
    uuid: str
    device: Optional[str]  # where it was found (None when missing)
    hint: Optional[str]    # the cached device hint
    state: str             # one of PV_STATES
    seqno: Optional[int]   # seqno of the committed copy on this PV, None without one
    error: Optional[str] = None


@dataclass(frozen=True)
class Change:
    kind: str              # e.g. lv_added, lv_resized, pv_added, vg_renamed
    message: str           # one human sentence
    id: Optional[str] = None
    name: Optional[str] = None
    old: Optional[object] = None
    new: Optional[object] = None


@dataclass(frozen=True)
class Action:
    command: Optional[str]  # a shell command for this node, or None for advice
    reason: str


@dataclass(frozen=True)
class VGReport:
    name: str              # the VG's name in the cache (this node's point of view)
    uuid: str
    state: str             # one of VG_STATES
    cache: CacheInfo
    disk: Optional[DiskInfo]
    pvs: Tuple[PVReport, ...]
    changes: Tuple[Change, ...] = ()
    actions: Tuple[Action, ...] = ()
    reason: Optional[str] = None      # why, for states other than in_sync
    duration_seconds: float = 0.0     # this VG's part of the scan

    @property
    def exit_code(self) -> int:
        return STATE_EXIT[self.state]

    @property
    def drifted(self) -> bool:
        return self.state in DRIFT_STATES

    @property
    def system_id(self) -> str:
        return self.disk.system_id if self.disk else ""

    def pv_counts(self) -> dict:
        counts = {s: 0 for s in PV_STATES}
        for pv in self.pvs:
            counts[pv.state] += 1
        return counts


@dataclass(frozen=True)
class ErrorItem:
    reason: str            # one of ERROR_REASONS
    where: str             # path or device the error is about
    message: str           # one line
    vg: Optional[str] = None


@dataclass(frozen=True)
class CheckResult:
    host: str
    started: float         # epoch seconds
    duration_seconds: float
    vgs: Tuple[VGReport, ...]
    errors: Tuple[ErrorItem, ...] = ()
    reads: int = 0         # block reads issued to devices
    read_bytes: int = 0
    unknown: bool = False  # the answer as a whole is unknown (exit 3)
    warnings: Tuple[ErrorItem, ...] = ()

    @property
    def exit_code(self) -> int:
        if self.unknown:
            return EXIT_UNKNOWN
        return max((vg.exit_code for vg in self.vgs), default=EXIT_OK)

    @property
    def success(self) -> bool:
        return not self.unknown
