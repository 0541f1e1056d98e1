"""The disk side of a check: find the cached PVs, read their labels,
metadata-area headers and committed texts.

Runs inside a worker process (worker.py), because a read from a dead path
can block in the kernel for ever.  Reads go out concurrently on threads; a
batch waits at most `timeout`, and a device that has not answered by then is
never asked again in this scan.  Observations are handed to `emit`
as soon as they exist, so the parent keeps them even if it gives up on us.
"""

import time
from dataclasses import dataclass, replace
from queue import Empty, SimpleQueue
from threading import Lock, Thread
from typing import Callable, Dict, FrozenSet, List, Optional, Tuple

from . import locate, ondisk
from .diskio import Device, DeviceError
from .textmeta import TextError, VGMeta, parse_vg

# The label sits in sectors 0-3 and the first metadata area's header at
# 4096 on every PV made with default alignment, so 8 KiB answers both in
# one read; a candidate scan needs only the label area.
HEAD_READ = 8192
LABEL_READ = ondisk.LABEL_AREA
MAX_WORKERS = 64
READ_ATTEMPTS = 4                 # a torn read is re-read before "corrupt"
RETRY_DELAYS = (0.05, 0.1, 0.2)   # between attempts and consistency rounds

NOT_PV = "not_pv"


@dataclass(frozen=True)
class WantedVG:
    id: str
    pvs: Tuple[Tuple[str, Optional[str]], ...]    # (PV uuid, cached device hint)


@dataclass(frozen=True)
class Plan:
    vgs: Tuple[WantedVG, ...]
    patterns: Tuple[str, ...]          # candidate globs; () = every disk in sysfs
    timeout: float
    skip: FrozenSet[tuple] = frozenset()   # identities with a read still outstanding


@dataclass(frozen=True)
class HeadObs:
    """What the start of one device says."""
    path: str
    ident: tuple
    label: Optional[ondisk.Label] = None
    mda: Optional[ondisk.MdaHeader] = None    # first usable metadata area
    mda_count: int = 0
    claimed_uuid: Optional[str] = None        # from a label whose checksum failed
    error: Optional[str] = None               # about the label, or about the mda if label is set
    damaged: Optional[str] = None             # a metadata area was corrupt, another one is in use
    reason: Optional[str] = None              # timeout, io_error, permission, corrupt, not_pv
    elapsed: float = 0.0

    @property
    def pv_uuid(self) -> Optional[str]:
        if self.label:
            return ondisk.format_uuid(self.label.pv_uuid)
        return self.claimed_uuid

    @property
    def text_key(self) -> Optional[tuple]:
        if self.mda is None or self.mda.committed is None or self.mda.ignored:
            return None
        return (self.mda.committed.checksum, self.mda.committed.size)


@dataclass(frozen=True)
class TextObs:
    key: tuple
    path: str
    vg: Optional[VGMeta] = None
    error: Optional[str] = None
    reason: Optional[str] = None
    elapsed: float = 0.0


def _claimed_uuid(buf: bytes) -> Optional[str]:
    """The PV uuid a label claims, read without trusting its checksum, so a
    corrupt label is still attributed to the PV it belongs to."""
    for sector in range(ondisk.LABEL_SCAN_SECTORS):
        base = sector * ondisk.SECTOR
        if buf[base:base + 8] == ondisk.LABEL_ID and len(buf) >= base + ondisk.SECTOR:
            off = int.from_bytes(buf[base + 20:base + 24], "little")
            if 32 <= off <= ondisk.SECTOR - ondisk.ID_LEN:
                raw = buf[base + off:base + off + ondisk.ID_LEN]
                if raw.isalnum() and raw.isascii():
                    return ondisk.format_uuid(raw.decode())
    return None


def _attempts(fn):
    """Calls fn until it returns without a retryable (torn-read) error."""
    for delay in RETRY_DELAYS + (None,):
        try:
            return fn()
        except ondisk.RETRYABLE:
            if delay is None:
                raise
            time.sleep(delay)


def read_head(path: str, ident: tuple, length: int, want: Optional[FrozenSet[str]],
              counter: Callable[[Device], None], t0: float) -> HeadObs:
    """Label plus the first usable metadata-area header of one device.
    `want`: read the header only for these PV uuids (None: always)."""
    obs = HeadObs(path, ident)
    try:
        dev = Device(path)
    except DeviceError as e:
        return replace(obs, error=str(e), reason=e.reason, elapsed=time.monotonic() - t0)
    try:
        def label_once():
            buf = dev.read(0, length)
            return buf, ondisk.find_label(buf[:ondisk.LABEL_AREA], path)
        try:
            buf, label = _attempts(label_once)
        except ondisk.NoLabelError as e:
            return replace(obs, error=str(e), reason=NOT_PV)
        except ondisk.TruncatedError as e:
            return replace(obs, error=str(e), reason=NOT_PV)
        except ondisk.OnDiskError as e:
            return replace(obs, claimed_uuid=_claimed_uuid(dev.read(0, ondisk.LABEL_AREA)),
                           error=str(e), reason="corrupt")
        obs = replace(obs, label=label, mda_count=len(label.metadata_areas))
        if want is not None and ondisk.format_uuid(label.pv_uuid) not in want:
            return obs
        first_error = None
        for area in label.metadata_areas:
            def header_once(area=area):
                end = area.offset + ondisk.MDA_HEADER_SIZE
                hb = buf[area.offset:end] if end <= len(buf) else dev.read(area.offset, ondisk.MDA_HEADER_SIZE)
                return ondisk.parse_mda_header(hb, path, area.offset, dev.size)
            try:
                mda = _attempts(header_once)
            except ondisk.OnDiskError as e:
                first_error = first_error or e
                continue
            if not mda.ignored:
                return replace(obs, mda=mda, damaged=str(first_error) if first_error else None)
            obs = replace(obs, mda=mda)   # keep looking: another area may be in use
        if first_error is not None and obs.mda is None:
            return replace(obs, error=str(first_error), reason="corrupt")
        return obs
    except DeviceError as e:
        return replace(obs, error=str(e), reason=e.reason)
    finally:
        counter(dev)
        dev.close()


def read_text(head: HeadObs, counter, t0: float) -> Tuple[HeadObs, TextObs]:
    """The committed text of a device's metadata area, checksum verified.
    A mismatch can be a writer on another node moving the text under us:
    re-read the header too, then the text it points to."""
    path = head.path
    try:
        dev = Device(path)
    except DeviceError as e:
        return head, TextObs(head.text_key, path, error=str(e), reason=e.reason)
    state = {"head": head}
    try:
        def once():
            h = state["head"]
            data = b"".join(dev.read(off, n) for off, n in ondisk.ring_pieces(h.mda))
            return ondisk.check_text(data, h.mda, path)

        def reread_head():
            hb = dev.read(state["head"].mda.start, ondisk.MDA_HEADER_SIZE)
            mda = ondisk.parse_mda_header(hb, path, state["head"].mda.start, dev.size)
            state["head"] = replace(state["head"], mda=mda)

        text = None
        for delay in RETRY_DELAYS + (None,):
            try:
                text = once()
                break
            except ondisk.RETRYABLE as e:
                if delay is None:
                    raise
                time.sleep(delay)
                reread_head()
                if state["head"].text_key is None:
                    # The area no longer holds a VG: report that, not the race.
                    return state["head"], TextObs(head.text_key, path, error=str(e), reason="corrupt")
        h = state["head"]
        source = f"{path} (metadata at offset {h.mda.start + h.mda.committed.offset})"
        try:
            vg = parse_vg(text, source)
        except TextError as e:
            return h, TextObs(h.text_key, path, error=str(e), reason="corrupt",
                              elapsed=time.monotonic() - t0)
        return h, TextObs(h.text_key, path, vg=vg, elapsed=time.monotonic() - t0)
    except ondisk.OnDiskError as e:
        return state["head"], TextObs(state["head"].text_key or head.text_key, path,
                                      error=str(e), reason="corrupt")
    except DeviceError as e:
        return state["head"], TextObs(head.text_key, path, error=str(e), reason=e.reason)
    finally:
        counter(dev)
        dev.close()


def run_concurrently(fns: List[Callable], timeout: float, workers: int = MAX_WORKERS) -> Dict[int, object]:
    """Calls fns on up to `workers` daemon threads; returns {index: result}
    of those that returned within `timeout`.  A thread stuck in a read from
    a dead path is simply left behind: the worker process exits around it.
    (Not concurrent.futures: its import alone costs the one-shot CLI ~5 ms.)"""
    results: SimpleQueue = SimpleQueue()
    items = iter(list(enumerate(fns)))
    lock = Lock()

    def work():
        while True:
            with lock:
                item = next(items, None)
            if item is None:
                return
            i, fn = item
            try:
                results.put((i, fn(), None))
            except BaseException as e:  # re-raised below, in the scan's thread
                results.put((i, None, e))

    for _ in range(min(workers, len(fns))):
        Thread(target=work, daemon=True).start()
    deadline = time.monotonic() + timeout
    got: Dict[int, object] = {}
    while len(got) < len(fns):
        try:
            i, result, error = results.get(timeout=max(0.0, deadline - time.monotonic()))
        except Empty:
            break
        if error is not None:
            raise error
        got[i] = result
    return got


class DiskScan:
    """One scan's orchestration; `emit(kind, obs)` receives heads and texts."""

    def __init__(self, plan: Plan, emit: Callable):
        self.plan = plan
        self.emit = emit
        self.t0 = time.monotonic()
        self.lock = Lock()
        self.reads = 0
        self.read_bytes = 0
        self.heads: Dict[tuple, HeadObs] = {}
        self.texts: Dict[tuple, TextObs] = {}
        self.text_failures: Dict[tuple, TextObs] = {}
        self.hung = set()
        self.scanned = False
        self.wanted = frozenset(u for vg in plan.vgs for u, _ in vg.pvs)
        self.vg_ids = frozenset(vg.id for vg in plan.vgs)
        self._candidates: Optional[List[Tuple[str, tuple]]] = None

    def count(self, dev: Device) -> None:
        with self.lock:
            self.reads += dev.reads
            self.read_bytes += dev.bytes_read

    # --- batches ---------------------------------------------------------

    def _batch(self, jobs: List[Tuple[tuple, str, Callable]]) -> List:
        """Runs jobs (ident, path, fn) concurrently; a job not done within the
        timeout marks its device hung.  Returns the finished results, in
        submission order (hinted devices first, in cache order): which PV a
        shared copy is read from must not depend on thread timing, or one
        disk state gets two answers."""
        todo = []
        for ident, path, fn in jobs:
            if ident in self.hung:
                continue
            if ident in self.plan.skip:
                self._timeout(ident, path, "a read from an earlier scan has not returned yet")
                continue
            todo.append((ident, path, fn))
        if not todo:
            return []
        got = run_concurrently([fn for _, _, fn in todo], self.plan.timeout)
        for i, (ident, path, _) in enumerate(todo):
            if i not in got:
                self._timeout(ident, path, f"no answer within {self.plan.timeout:g}s")
        return [got[i] for i in sorted(got)]

    def _timeout(self, ident, path, why):
        self.hung.add(ident)
        obs = HeadObs(path, ident)
        old = self.heads.get(ident)
        if old is not None and old.pv_uuid:
            obs = old    # it answered before and hangs now: still that PV, now unreadable
        self._head(replace(obs, error=f"{path}: {why}", reason="timeout",
                           elapsed=time.monotonic() - self.t0))

    def _head(self, obs: HeadObs) -> None:
        if obs.ident in self.hung and obs.reason != "timeout":
            return
        self.heads[obs.ident] = obs
        if obs.reason != NOT_PV:
            self.emit("head", obs)

    def _text(self, obs: TextObs) -> None:
        self.texts[obs.key] = obs
        self.emit("text", obs)

    def read_heads(self, targets: List[Tuple[str, tuple, int, Optional[FrozenSet[str]]]]) -> None:
        """targets: (path, ident, bytes to read, PV uuids whose header to read)."""
        for obs in self._batch([
                (ident, path, lambda p=path, i=ident, n=n, w=w: read_head(p, i, n, w, self.count, self.t0))
                for path, ident, n, w in targets]):
            self._head(obs)

    def read_texts(self) -> None:
        """One text read per distinct committed copy among wanted PVs; when
        that read fails, the same copy is tried on another PV holding it."""
        tried = set()
        while True:
            by_key: Dict[tuple, HeadObs] = {}
            for head in self.heads.values():
                key = head.text_key
                if key is None or head.reason is not None or head.ident in tried:
                    continue
                if key in self.texts and self.texts[key].vg is not None:
                    continue
                if head.pv_uuid not in self.wanted and head.pv_uuid not in self.disk_listed():
                    continue
                by_key.setdefault(key, head)
            if not by_key:
                return
            tried.update(h.ident for h in by_key.values())
            jobs = [(h.ident, h.path, lambda h=h: read_text(h, self.count, self.t0))
                    for h in by_key.values()]
            for head, text in self._batch(jobs):
                if head.mda != self.heads.get(head.ident, head).mda:
                    self._head(head)
                if text.vg is None:
                    self.text_failures[head.ident] = text
                    self.emit("text_failure", (head.ident, text))
                if text.key is not None and (text.vg is not None or text.key not in self.texts):
                    self._text(text)

    def disk_listed(self) -> FrozenSet[str]:
        """PV uuids that on-disk copies of the wanted VGs list."""
        return frozenset(pv.id for t in self.texts.values() if t.vg and t.vg.id in self.vg_ids
                         for pv in t.vg.pvs)

    def located(self) -> Dict[str, List[HeadObs]]:
        out: Dict[str, List[HeadObs]] = {}
        for head in self.heads.values():
            if head.pv_uuid:
                out.setdefault(head.pv_uuid, []).append(head)
        return out

    # --- phases ----------------------------------------------------------

    def _targets(self, paths) -> List[Tuple[str, tuple]]:
        return locate.distinct(paths, self.heads)

    def candidates(self) -> List[Tuple[str, tuple]]:
        if self._candidates is None:
            self._candidates = locate.candidates(self.plan.patterns)
        return self._candidates

    def find(self, uuids: FrozenSet[str], hints) -> None:
        """Hinted devices first; the candidate scan only for what is left.

        With explicit --devices every candidate's label area is read along
        with the hints, in the same round trip: the operator named them, and
        only reading them shows a second path or a clone of a PV.  Without,
        the candidates are every disk of the host, read only when a hint
        misses."""
        targets = [(p, i, HEAD_READ, None) for p, i in self._targets(hints)]
        # Labels read before these PVs were wanted lack their header.
        targets += [(h.path, h.ident, HEAD_READ, None) for h in self.heads.values()
                    if h.pv_uuid in uuids and h.label is not None and h.mda_count
                    and h.mda is None and h.reason is None]
        if self.plan.patterns:
            # Hints are names on some node: the on-disk copy's are the
            # writer's.  A hinted name outside --devices is not ours to read
            # (on a shared host it may be the other node's path to the PV).
            allowed = {i for _, i in self.candidates()}
            targets = [t for t in targets if t[1] in allowed]
            if not self.scanned:
                self.scanned = True
                seen = {t[1] for t in targets}
                targets += [(p, i, LABEL_READ, self.wanted) for p, i in self.candidates()
                            if i not in seen and i not in self.heads]
        self.read_heads(targets)
        missing = uuids - set(self.located())
        if missing and not self.scanned:
            self.scanned = True
            self.read_heads([(p, i, LABEL_READ, self.wanted) for p, i in self.candidates()
                             if i not in self.heads])

    def disagreeing(self) -> List[Tuple[str, tuple]]:
        """Devices of wanted VGs whose copies differ from the newest one, or
        whose header could not be trusted: worth one more look."""
        located = self.located()
        out = []
        for vg_id in self.vg_ids:
            copies = [t.vg for t in self.texts.values() if t.vg and t.vg.id == vg_id]
            if not copies:
                continue
            newest = max(copies, key=lambda v: v.seqno)
            members = {pv.id for pv in newest.pvs} | {u for v in self.plan.vgs if v.id == vg_id
                                                      for u, _ in v.pvs}
            keys = set()
            heads = [h for u in members for h in located.get(u, ()) if h.ident not in self.hung]
            for h in heads:
                if h.mda_count and h.reason is None:
                    keys.add(h.text_key)
            if len(keys) > 1 or any(h.reason == "corrupt" or h.damaged for h in heads):
                out += [(h.path, h.ident) for h in heads]
        return out

    def run(self) -> None:
        hints = [hint for vg in self.plan.vgs for _, hint in vg.pvs]
        self.find(self.wanted, hints)
        self.read_texts()
        # PVs that the disk lists and the cache does not (vgextend elsewhere).
        new = self.disk_listed() - set(self.located())
        if new:
            disk_hints = [pv.device for t in self.texts.values() if t.vg and t.vg.id in self.vg_ids
                          for pv in t.vg.pvs if pv.id in new]
            self.wanted = self.wanted | new
            self.find(frozenset(new), disk_hints)
            self.read_texts()
        # Copies that disagree may be a commit in flight on another node.
        for delay in RETRY_DELAYS:
            again = self.disagreeing()
            if not again:
                break
            time.sleep(delay)
            self.read_heads([(p, i, HEAD_READ, None) for p, i in dict(again).items()])
            self.read_texts()

def run(plan: Plan, emit: Callable) -> dict:
    """Runs a scan, emitting observations; returns the I/O statistics."""
    scan = DiskScan(plan, emit)
    scan.run()
    return {"reads": scan.reads, "read_bytes": scan.read_bytes, "hung": sorted(scan.hung)}
