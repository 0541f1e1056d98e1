"""The disk side of a check: find the cached PVs, read their labels,
metadata-area headers and committed texts (pvread.py does each read).

Runs inside a worker process (worker.py), because a read from a dead path
can block in the kernel for ever.  Reads go out concurrently on threads; a
batch waits at most `timeout`, and a device that has not answered by then is
never asked again in this scan.  Observations are handed to `emit` as soon
as they exist, so the parent keeps them even if it gives up on us.
"""

import _thread
import os
import time
from functools import partial
from queue import SimpleQueue
from threading import Event, Lock
from typing import Callable, Dict, FrozenSet, List, NamedTuple, Optional, Sequence, Set, Tuple, Union

from ..model import REASON_INTERNAL
from . import locate
from .diskio import Device, Peeked
from .pvread import (
    HEAD_READ,
    LABEL_READ,
    NOT_PV,
    HeadObs,
    TextObs,
    internal_error,
    new_scan,
    read_head,
    read_label_area,
    read_text,
    retrying,
)

MAX_WORKERS = 64
# Reads of local or page-cached devices finish in tens of microseconds, and
# then a few threads do them fastest: 256 O_DIRECT reads of loop devices on
# two cores took 4.4 ms on 4 threads and 23 ms on 64 (the GIL handed
# around).  Slow paths need many reads in flight instead: as soon as no read
# has finished for GROW_AFTER while reads still wait for a thread, each of
# them gets one (up to MAX_WORKERS); a thread stuck on a dead path is never
# what the others wait for.
START_WORKERS = 2
GROW_AFTER = 0.001

# (path, identity, bytes to read, PV uuids whose header to read or None for all)
HeadTarget = Tuple[str, tuple, int, Optional[FrozenSet[str]]]


class WantedVG(NamedTuple):
    id: str
    pvs: Tuple[Tuple[str, Optional[str]], ...]    # (PV uuid, cached device hint)


class Plan(NamedTuple):
    vgs: Tuple[WantedVG, ...]
    patterns: Tuple[str, ...]          # candidate globs; () = every disk in sysfs
    timeout: float
    skip: FrozenSet[tuple] = frozenset()   # identities with a read still outstanding
    # Discovery (issue 11): also read the label of every candidate and the
    # metadata of PVs that no cached VG lists (known_pvs: every cached
    # VG's PV uuids, whether checked or not).
    discover: bool = False
    known_pvs: FrozenSet[str] = frozenset()


class _Threads:
    """Reading threads kept between batches and, in the exporter's
    long-lived worker, between scans.  run(work, k) has `work` (a batch's
    loop over its reads) run on k threads: idle ones first, new ones for
    the rest.  A thread counts as idle only once its batch loop returned,
    so a thread stuck in a read from a dead path is never counted on: the
    next batch gets a new thread instead, and no read waits for a thread
    that will never come.  Bare threads: threading.Thread.start() waits
    for each new thread to say it started, and with the GIL contended that
    handshake cost a check of 256 PVs ~45 ms; like daemon threads they do
    not keep a process alive, and none is ever joined.  After a fork the
    child has none of its parent's threads: it starts its own."""

    def __init__(self) -> None:
        self.lock = Lock()
        self.tasks: SimpleQueue = SimpleQueue()
        self.idle = 0
        self.pid = os.getpid()

    def _loop(self) -> None:
        while True:
            work = self.tasks.get()
            try:
                work()
            finally:
                with self.lock:
                    self.idle += 1

    def run(self, work: Callable[[], None], k: int) -> None:
        with self.lock:
            if self.pid != os.getpid():
                self.tasks, self.idle, self.pid = SimpleQueue(), 0, os.getpid()
            take = min(self.idle, k)
            self.idle -= take
        for _ in range(k):
            self.tasks.put(work)
        for _ in range(k - take):
            _thread.start_new_thread(self._loop, ())


_POOL = _Threads()


def run_concurrently(fns: List[Callable], timeout: float, workers: int = MAX_WORKERS,
                     on_error: Optional[Callable[[int, Exception], None]] = None) -> Dict[int, object]:
    """Calls fns on up to `workers` daemon threads (START_WORKERS at first,
    more when reads are slow); returns {index: result} of those that
    returned within `timeout`.  A thread stuck in a read from a dead path is
    simply left behind: the worker process exits around it.  An fn that
    raises an Exception is handed to `on_error(index, error)` (one device's
    failure must not end the others' reads); without on_error, and for any
    other BaseException, it is re-raised here.
    The caller sleeps until all are done, waking every GROW_AFTER only to
    see whether reads are slow: waking for each result would hand the GIL
    back and forth once per read.
    (Not concurrent.futures: its import alone costs the one-shot CLI ~5 ms.)"""
    if not fns:
        return {}
    total = len(fns)
    items = iter(list(enumerate(fns)))
    lock = Lock()
    finished = Event()
    results: List[Tuple[int, object, Optional[BaseException]]] = []
    claimed = [0]

    def work():
        while True:
            with lock:
                item = next(items, None)
                if item is None:
                    return
                claimed[0] += 1
            i, fn = item
            outcome: Tuple[int, object, Optional[BaseException]]
            try:
                outcome = (i, fn(), None)
            except BaseException as e:  # re-raised below, in the scan's thread
                outcome = (i, None, e)
            with lock:
                results.append(outcome)
                error = outcome[2]
                if len(results) == total or (error is not None and (
                        on_error is None or not isinstance(error, Exception))):
                    finished.set()

    limit = min(workers, total)
    started = min(START_WORKERS, limit)
    _POOL.run(work, started)
    deadline = time.monotonic() + timeout
    seen = 0
    while True:
        left = deadline - time.monotonic()
        growing = started < limit
        if left <= 0 or finished.wait(min(left, GROW_AFTER) if growing else left):
            break
        if not growing:
            continue
        with lock:
            progress, waiting = len(results), total - claimed[0]
        if progress == seen:
            # Nothing finished for GROW_AFTER: slow or stuck reads.
            more = min(limit - started, waiting)
            if more > 0:
                _POOL.run(work, more)
                started += more
            else:
                started = limit     # every read has its thread already
        seen = progress
    with lock:
        outcomes = list(results)
    got: Dict[int, object] = {}
    for i, result, error in outcomes:
        if error is not None:
            if on_error is None or not isinstance(error, Exception):
                raise error
            on_error(i, error)
            continue
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
        self.hung: Set[tuple] = set()
        # Devices first read by discovery: sent as "discovered", so that
        # the cached VGs' verdicts do not depend on whether it ran.
        self.discovery_only: Set[tuple] = set()
        self.extra: Set[str] = set()      # PV uuids whose texts discovery reads
        self.scanned = False
        self.wanted = frozenset(u for vg in plan.vgs for u, _ in vg.pvs)
        self.vg_ids = frozenset(vg.id for vg in plan.vgs)
        self._candidates: Optional[List[Tuple[str, tuple]]] = None

    def count(self, dev: Union[Device, Peeked]) -> None:
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
        flush = getattr(self.emit, "flush", None)
        if flush is not None:
            flush()     # what is known reaches the parent before any read that may hang
        failed: Dict[int, Exception] = {}
        got = run_concurrently([fn for _, _, fn in todo], self.plan.timeout, on_error=failed.__setitem__)
        for i, (ident, path, _) in enumerate(todo):
            if i in failed:
                self._internal(ident, path, failed[i])
            elif i not in got:
                self._timeout(ident, path, f"no answer within {self.plan.timeout:g}s")
        return [got[i] for i in sorted(got)]

    def _internal(self, ident, path, error: Exception) -> None:
        """A read that raised (pvread turns errors into observations, so
        this is a bug): that device is unreadable with reason internal, and
        still the PV its label named, if it was read before."""
        old = self.heads.get(ident)
        obs = old if old is not None and old.pv_uuid else HeadObs(path, ident)
        self._head(obs._replace(error=internal_error(path, error), reason=REASON_INTERNAL,
                                elapsed=time.monotonic() - self.t0))

    def _timeout(self, ident, path, why):
        self.hung.add(ident)
        obs = HeadObs(path, ident)
        old = self.heads.get(ident)
        if old is not None and old.pv_uuid:
            obs = old    # it answered before and hangs now: still that PV, now unreadable
        self._head(obs._replace(error=f"{path}: {why}", reason="timeout",
                                elapsed=time.monotonic() - self.t0))

    def _head(self, obs: HeadObs) -> None:
        if obs.ident in self.hung and obs.reason != "timeout":
            return
        self.heads[obs.ident] = obs
        if obs.reason != NOT_PV:
            self.emit("discovered" if obs.ident in self.discovery_only else "head", obs)

    def _text(self, obs: TextObs) -> None:
        self.texts[obs.key] = obs
        self.emit("text", obs)

    def read_heads(self, targets: Sequence[HeadTarget]) -> None:
        """targets: (path, ident, bytes to read, PV uuids whose header to read)."""
        jobs: List[Tuple[tuple, str, Callable[[], HeadObs]]] = []
        for path, ident, n, w in targets:
            if n == LABEL_READ:     # a sweep of candidates: most are no PV
                jobs.append((ident, path, partial(read_label_area, path, ident, w, self.count, self.t0)))
            else:
                jobs.append((ident, path, partial(read_head, path, ident, n, w, self.count, self.t0)))
        for obs in self._batch(jobs):
            self._head(obs)

    def read_texts(self) -> None:
        """One text read per distinct committed copy among wanted PVs; when
        that read fails, the same copy is tried on another PV holding it."""
        tried: Set[tuple] = set()
        while True:
            by_key: Dict[tuple, HeadObs] = {}
            for head in self.heads.values():
                key = head.text_key
                if key is None or head.reason is not None or head.ident in tried:
                    continue
                if key in self.texts and self.texts[key].vg is not None:
                    continue
                if (head.pv_uuid not in self.wanted and head.pv_uuid not in self.disk_listed()
                        and head.pv_uuid not in self.extra and not self.plan.patterns):
                    # With explicit --devices every copy named there is read
                    # once (one text per distinct copy): a PV that only an
                    # older copy of a wanted VG lists (an outdated PV) shows
                    # only in its own text.
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
        """Computed once per scan, here in the worker, and sent to the parent
        (which needs the names --devices matched): globbing again there could
        see another set of devices."""
        if self._candidates is None:
            found = locate.identified(locate.candidate_paths(self.plan.patterns))
            self._candidates = locate.unique(found)
            self.emit("candidates", tuple(path for path, _ in found))
        return self._candidates

    def find(self, uuids: FrozenSet[str], hints) -> None:
        """Hinted devices first; the candidate scan only for what is left.

        With explicit --devices every candidate's label area is read along
        with the hints, in the same round trip: the operator named them, and
        only reading them shows a second path or a clone of a PV.  Without,
        the candidates are every disk of the host, read only when a hint
        misses."""
        targets: List[HeadTarget] = [(p, i, HEAD_READ, None) for p, i in self._targets(hints)]
        # Labels read before these PVs were wanted lack their header.
        targets += [(h.path, h.ident, HEAD_READ, None) for h in self.heads.values()
                    if h.pv_uuid in uuids and h.label is not None and h.mda_count
                    and h.mda is None and h.reason is None]
        named = False
        if self.plan.patterns:
            # Hints are names on some node: the on-disk copy's are the
            # writer's.  A hinted name outside --devices is not ours to read
            # (on a shared host it may be the other node's path to the PV).
            allowed = {i for _, i in self.candidates()}
            targets = [t for t in targets if t[1] in allowed]
            if not self.scanned:
                self.scanned = named = True
                seen = {t[1] for t in targets}
                # The label area of every other named device, in the same
                # round: a second device with a wanted PV uuid gets its
                # header read at once (a clone agrees, a stale replica does
                # not).  Most named devices are not PVs, and 4 KiB is all
                # that shows it.
                targets += [(p, i, LABEL_READ, uuids) for p, i in self.candidates()
                            if i not in seen and i not in self.heads]
        self.read_heads(targets)
        if named:
            # Any other PV named there: its header tells whether it holds
            # a copy at all (an outdated PV of a wanted VG shows only in its
            # own text, read_texts).
            self.read_heads([(h.path, h.ident, HEAD_READ, None) for h in self.heads.values()
                             if h.label is not None and h.mda is None and h.mda_count and h.reason is None
                             and h.pv_uuid not in self.wanted])
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
            heads = [h for u in members for h in located.get(u, ()) if h.ident not in self.hung
                     and not self._outdated(h, newest)]
            for h in heads:
                # An ignored area (pvchange --metadataignore) holds no copy to agree on.
                if h.mda is not None and not h.mda.ignored and h.reason is None:
                    keys.add(h.text_key)
            if len(keys) > 1 or any(h.reason == "corrupt" or h.damaged for h in heads):
                out += [(h.path, h.ident) for h in heads]
        return out

    def _outdated(self, head: HeadObs, newest) -> bool:
        """A PV holding an older copy of `newest`'s VG that `newest` no longer
        lists (vgreduce --removemissing while it was unreachable): a lasting
        state that LVM ignores, not a commit in flight."""
        text = self.texts.get(head.text_key) if head.text_key is not None else None
        return (text is not None and text.vg is not None and text.vg.id == newest.id
                and text.vg.seqno < newest.seqno and head.pv_uuid not in {pv.id for pv in newest.pvs})

    def run(self) -> None:
        hints = [hint for vg in self.plan.vgs for _, hint in vg.pvs]
        self.find(self.wanted, hints)
        self.read_texts()
        # PVs that the disk lists and the cache does not (vgextend elsewhere);
        # a candidate sweep may have seen their labels already, not headers.
        new = self.disk_listed() - self.wanted
        if new:
            disk_hints = [pv.device for t in self.texts.values() if t.vg and t.vg.id in self.vg_ids
                          for pv in t.vg.pvs if pv.id in new]
            self.wanted = self.wanted | new
            self.find(frozenset(new), disk_hints)
            self.read_texts()
        # Copies that disagree may be a commit in flight on another node:
        # look again, with the same pauses as any torn read.
        def settled() -> None:
            again = self.disagreeing()
            if again:
                raise _Disagreeing(again)

        def look_again(error: BaseException) -> None:
            self.read_heads([(p, i, HEAD_READ, None) for p, i in dict(error.args[0]).items()])
            self.read_texts()

        try:
            retrying(settled, _Disagreeing, look_again)
        except _Disagreeing:
            pass   # still disagreeing: the comparison says so
        if self.plan.discover:
            self.discover()

    def discover(self) -> None:
        """VGs on the candidates that no cache file describes: one label
        read per candidate not read yet (no header), then the header of each
        PV no cached VG lists, then one text per distinct committed copy
        among those (one per VG when its copies agree).  An orphan PV (no
        committed copy) costs its header read and yields nothing."""
        new = [(p, i) for p, i in self.candidates() if i not in self.heads]
        self.discovery_only.update(i for _, i in new)
        self.read_heads([(p, i, LABEL_READ, frozenset()) for p, i in new])
        known = self.plan.known_pvs | self.wanted | self.disk_listed()
        heads = [h for h in self.heads.values() if h.pv_uuid and h.label is not None and h.reason is None
                 and h.pv_uuid not in known]
        self.extra.update(h.pv_uuid for h in heads if h.pv_uuid)
        self.read_heads([(h.path, h.ident, HEAD_READ, None) for h in heads
                         if h.mda is None and h.mda_count])
        self.read_texts()


class _Disagreeing(Exception):
    """Copies of a wanted VG still differ (args[0]: the devices to re-read)."""


def run(plan: Plan, emit: Callable) -> dict:
    """Runs a scan, emitting observations; returns the I/O statistics."""
    new_scan()
    scan = DiskScan(plan, emit)
    scan.run()
    return {"reads": scan.reads, "read_bytes": scan.read_bytes, "hung": sorted(scan.hung)}
