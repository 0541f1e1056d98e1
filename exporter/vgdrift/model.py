"""The result of a check: states, exit codes and the frozen records that the
CLI renders and the exporter turns into metrics.  No I/O here."""

from enum import Enum, IntEnum
from typing import Dict, NamedTuple, Optional, Tuple


class VGState(str, Enum):
    """A VG's one state, in the order the text report and the metrics list
    them.  Everything that lists states (text, actions, alert rules,
    runbook, dashboard) is derived from this or checked against it."""
    IN_SYNC = "in_sync"
    DRIFT = "drift"
    CACHE_AHEAD = "cache_ahead"
    CONFLICT = "conflict"
    UUID_MISMATCH = "uuid_mismatch"
    PARTIAL = "partial"
    BLOCKED = "blocked"          # this node's LVM, as configured, would not activate it
    MISSING = "missing"
    INCONSISTENT = "inconsistent"
    UNREADABLE = "unreadable"
    UNKNOWN = "unknown"          # this node cannot tell (its cached copy cannot be read)

    def __str__(self) -> str:
        return self.value


class PVState(str, Enum):
    OK = "ok"
    MISSING = "missing"
    DUPLICATE = "duplicate"
    OUTDATED = "outdated"        # holds an older copy of the VG and is no longer in it
    UNREADABLE = "unreadable"
    CORRUPT = "corrupt"

    def __str__(self) -> str:
        return self.value


class ErrorReason(str, Enum):
    """Reasons carried by errors and by unreadable/corrupt PVs; also the
    label values of vgdrift_scan_errors_total."""
    TIMEOUT = "timeout"
    IO = "io_error"
    PERMISSION = "permission"
    CORRUPT = "corrupt"
    CACHE = "cache"
    INTERNAL = "internal"
    CONFIG = "config"            # this node's LVM configuration cannot be read

    def __str__(self) -> str:
        return self.value


class VGReason(str, Enum):
    """Why a VG is in its state (VGReport.reason); error reasons are used
    as VG reasons too, for unreadable and inconsistent VGs."""
    SEQNO = "seqno"
    CONTENT = "content"
    VG_ID = "vg_id"
    NO_METADATA = "no_metadata"
    NOT_FOUND = "not_found"
    REMOVED = "removed"
    PV_MISSING = "pv_missing"
    COPIES_DISAGREE = "copies_disagree"
    DIVERGENT_DUPLICATE = "divergent_duplicate"
    READINESS = "readiness"      # unknown: whether this node's LVM would use the VG

    def __str__(self) -> str:
        return self.value


class BlockReason(str, Enum):
    """Why this node's LVM, as configured, would not activate a VG (state
    blocked), in report order; also the label values of
    vgdrift_vg_blocked."""
    DEVICES_FILE = "devices_file"    # devices file in use, a PV not listed
    FILTER = "filter"                # filter/global_filter rejects a PV's device
    SYSTEM_ID = "system_id"          # another host's VG, and this node has no system ID
    EXPORTED = "exported"            # vgexport: vgimport first

    def __str__(self) -> str:
        return self.value


class Exit(IntEnum):
    OK = 0
    DRIFT = 1       # refresh, then go
    UNSAFE = 2
    UNKNOWN = 3


STATE_EXIT: Dict[str, Exit] = {
    VGState.IN_SYNC: Exit.OK,
    VGState.DRIFT: Exit.DRIFT,
    VGState.CACHE_AHEAD: Exit.UNSAFE,
    VGState.CONFLICT: Exit.UNSAFE,
    VGState.UUID_MISMATCH: Exit.UNSAFE,
    VGState.PARTIAL: Exit.UNSAFE,
    VGState.BLOCKED: Exit.UNSAFE,
    VGState.MISSING: Exit.UNSAFE,
    VGState.INCONSISTENT: Exit.UNSAFE,
    VGState.UNREADABLE: Exit.UNSAFE,
    VGState.UNKNOWN: Exit.UNKNOWN,
}
assert set(STATE_EXIT) == set(VGState), "every VG state needs its exit code"

# States in which cache and disk disagree about the VG (vgdrift_vg_drift).
DRIFT_STATES = frozenset((VGState.DRIFT, VGState.CACHE_AHEAD, VGState.CONFLICT, VGState.UUID_MISMATCH))

# A PV view's status when its device was found and read (views -> compare).
FOUND = "found"

# Short names used throughout the package.
VG_STATES = tuple(VGState)
PV_STATES = tuple(PVState)
ERROR_REASONS = tuple(ErrorReason)
VG_REASONS = tuple(VGReason)
BLOCK_REASONS = tuple(BlockReason)
(IN_SYNC, DRIFT, CACHE_AHEAD, CONFLICT, UUID_MISMATCH, PARTIAL, BLOCKED, MISSING, INCONSISTENT,
 UNREADABLE, UNKNOWN) = VG_STATES
PV_OK, PV_MISSING, PV_DUPLICATE, PV_OUTDATED, PV_UNREADABLE, PV_CORRUPT = PV_STATES
(REASON_TIMEOUT, REASON_IO, REASON_PERMISSION, REASON_CORRUPT, REASON_CACHE,
 REASON_INTERNAL, REASON_CONFIG) = ERROR_REASONS
EXIT_OK, EXIT_DRIFT, EXIT_UNSAFE, EXIT_UNKNOWN = tuple(Exit)

# Records are typing.NamedTuples, not frozen dataclasses: `import
# dataclasses` (it imports inspect) and the methods each frozen dataclass
# execs cost ~30 ms of a ~190 ms `vgdrift check`, a NamedTuple ~0.1 ms.
# They are tuples: no field named count or index, `_replace` to change one,
# and never isinstance(x, tuple) where x may be a record.


class CacheInfo(NamedTuple):
    path: str
    seqno: int
    mtime: int            # creation_time of the backup: the VG's mtime
    host: str
    description: str


class DiskInfo(NamedTuple):
    name: str             # VG name on disk (differs from the cache after a rename)
    seqno: int
    mtime: int
    host: str
    system_id: str
    # The on-disk VG's id: the key that joins this VG across nodes (issue
    # 11); under uuid_mismatch it is not the cached id.
    uuid: str = ""


class PVReport(NamedTuple):
    uuid: str
    device: Optional[str]  # where it was found (None when missing)
    hint: Optional[str]    # the cached device hint
    state: str             # one of PV_STATES
    seqno: Optional[int]   # seqno of the committed copy on this PV, None without one
    error: Optional[str] = None


class Change(NamedTuple):
    kind: str              # e.g. lv_added, lv_resized, pv_added, vg_renamed
    message: str           # one human sentence
    id: Optional[str] = None
    name: Optional[str] = None
    old: Optional[object] = None
    new: Optional[object] = None


class Action(NamedTuple):
    command: Optional[str]  # a shell command for this node, or None for advice
    reason: str


class Blocker(NamedTuple):
    """One reason this node's LVM would not activate the VG."""
    reason: str              # one of BLOCK_REASONS
    pv: Optional[str]        # PV uuid, None for VG-wide reasons
    device: Optional[str]    # where vgdrift found the PV
    message: str


class Owner(NamedTuple):
    """Whose VG it is, by LVM system ID."""
    system_id: str                   # the VG's ("" none)
    local_system_id: Optional[str]   # this node's ("" none, None unknown)
    this_node: Optional[bool]        # None when either is unknown


class NodeLVMInfo(NamedTuple):
    """This node's LVM configuration as far as the check used it."""
    system_dir: str
    use_devicesfile: Optional[bool]  # the setting (None unknown)
    devices_file: Optional[str]      # the file LVM uses; None when none is in use
    system_id_source: str
    local_system_id: Optional[str]   # "" none, None unknown


class VGReport(NamedTuple):
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
    # Readiness (this node's LVM configuration): None when not evaluated.
    blockers: Tuple[Blocker, ...] = ()
    owner: Optional[Owner] = None
    autoactivation: Optional[bool] = None   # would this node activate it by itself at boot
    notes: Tuple[str, ...] = ()             # readiness warnings, reported among the check's warnings

    def blocker_counts(self) -> dict:
        counts = {str(r): 0 for r in BLOCK_REASONS}
        for b in self.blockers:
            counts[str(b.reason)] += 1
        return counts

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
        counts: Dict[str, int] = {s: 0 for s in PV_STATES}
        for pv in self.pvs:
            counts[pv.state] += 1
        return counts


class ErrorItem(NamedTuple):
    reason: str            # one of ERROR_REASONS
    where: str             # path or device the error is about
    message: str           # one line
    vg: Optional[str] = None


class UnknownPV(NamedTuple):
    uuid: str
    device: Optional[str]  # where this node found it (None: listed by the VG, not seen here)


class UnknownVG(NamedTuple):
    """A VG on this node's candidate devices that no cache file describes
    (check --discover, serve's discovery): this node could not take it over
    before importing or refreshing it."""
    name: str
    uuid: str
    seqno: int
    mtime: int             # creation_time of the newest on-disk copy
    host: str              # creation_host of that copy
    system_id: str
    pvs: Tuple[UnknownPV, ...]
    actions: Tuple[Action, ...] = ()
    blockers: Tuple[Blocker, ...] = ()

    @property
    def exit_code(self) -> int:
        # Refresh (vgcfgbackup) first: at least 1; unsafe while this node's
        # LVM would not even see or own it.
        return EXIT_UNSAFE if self.blockers else EXIT_DRIFT


class CheckResult(NamedTuple):
    host: str
    started: float         # epoch seconds
    duration_seconds: float
    vgs: Tuple[VGReport, ...]
    errors: Tuple[ErrorItem, ...] = ()
    reads: int = 0         # block reads issued to devices
    read_bytes: int = 0
    unknown: bool = False  # the answer as a whole is unknown (exit 3)
    warnings: Tuple[ErrorItem, ...] = ()
    lvm: Optional[NodeLVMInfo] = None   # None: this node's LVM configuration was not consulted
    unknown_vgs: Tuple[UnknownVG, ...] = ()
    discovered: Optional[float] = None  # epoch seconds of the discovery unknown_vgs is from; None: none ran

    @property
    def exit_code(self) -> int:
        if self.unknown:
            return EXIT_UNKNOWN
        return max([vg.exit_code for vg in self.vgs] + [u.exit_code for u in self.unknown_vgs],
                   default=EXIT_OK)

    @property
    def success(self) -> bool:
        return not self.unknown
