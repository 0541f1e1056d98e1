"""One check, end to end: cache, worker, views, comparison -> CheckResult.

Shared by `vgdrift check` (fork, one shot) and `vgdrift serve` (spawn, a
Scanner kept across scans that remembers devices whose reads never came
back, so that a hung path gets at most one outstanding read)."""

import os
import time
from dataclasses import dataclass
from typing import Dict, List, Tuple

from . import model as m
from .disk import locate, worker
from .disk.diskscan import Plan, WantedVG
from .node.cache import DEFAULT_DIR, CachedVG, read_cache
from .verdict.compare import compare
from .verdict.views import PVView, build_views

# The worker times each batch of reads out by itself; this is the parent's
# backstop in case the worker cannot even get that far.
BACKSTOP_BATCHES = 4
BACKSTOP_SLACK = 5.0


@dataclass(frozen=True)
class ScanOptions:
    cache_dirs: Tuple[str, ...] = (DEFAULT_DIR,)
    device_globs: Tuple[str, ...] = ()
    vgs: Tuple[str, ...] = ()
    exclude_vgs: Tuple[str, ...] = ()
    timeout: float = 10.0


def _durations(chosen: List[CachedVG], views: Dict[str, PVView], out: worker.Outcome) -> Dict[str, float]:
    """Each VG's part of the scan: until its last label or text arrived."""
    at_path = {h.path: h.elapsed for h in out.heads.values()}
    at_vg: Dict[str, float] = {}
    for t in out.texts.values():
        if t.vg is not None:
            at_vg[t.vg.id] = max(at_vg.get(t.vg.id, 0.0), t.elapsed)
    result = {}
    for c in chosen:
        stamps = [at_path.get(views[pv.id].device, 0.0) for pv in c.vg.pvs if pv.id in views]
        result[c.vg.id] = max(stamps + [at_vg.get(c.vg.id, 0.0)])
    return result


def _pv_errors(report: m.VGReport, views: Dict[str, PVView]) -> List[m.ErrorItem]:
    """One error line per PV that could not be read or is corrupt."""
    out = []
    for pv in report.pvs:
        if pv.state in (m.PV_UNREADABLE, m.PV_CORRUPT) and pv.error:
            view = views.get(pv.uuid)
            reason = m.REASON_CORRUPT if pv.state == m.PV_CORRUPT else (
                view.reason if view is not None and view.reason else m.REASON_IO)
            out.append(m.ErrorItem(reason, pv.device or pv.hint or pv.uuid, pv.error, vg=report.name))
    return out


class Scanner:
    def __init__(self, options: ScanOptions, isolation: str = "spawn"):
        if isolation not in ("fork", "spawn"):
            raise ValueError(f"isolation must be fork or spawn, not {isolation!r}")
        self.options = options
        self.isolation = isolation
        self.abandoned: Dict[int, Tuple[worker.Running, frozenset]] = {}   # pid -> (worker, idents)
        self.parsed: dict = {}    # cache files parsed by earlier scans (cache.read_file)

    def _outstanding(self) -> frozenset:
        """Devices an earlier, abandoned worker is still blocked on."""
        for pid, (running, _) in list(self.abandoned.items()):
            if worker.exited(running):
                del self.abandoned[pid]
        return frozenset(i for _, idents in self.abandoned.values() for i in idents)

    def select(self, cached: List[CachedVG], errors: List[m.ErrorItem]) -> List[CachedVG]:
        o = self.options
        chosen = [c for c in cached if not o.vgs or c.vg.name in o.vgs]
        for name in o.vgs:
            if not any(c.vg.name == name for c in cached):
                errors.append(m.ErrorItem(m.REASON_CACHE, ", ".join(o.cache_dirs),
                                          f"VG {name} is not in the cache ({', '.join(o.cache_dirs)})", vg=name))
        return [c for c in chosen if c.vg.name not in o.exclude_vgs]

    def _read_disks(self, chosen: List[CachedVG]) -> Tuple[worker.Outcome, locate.Siblings]:
        """Runs the worker; meanwhile indexes loop devices (sysfs only)."""
        o = self.options
        plan = Plan(tuple(WantedVG(c.vg.id, tuple((pv.id, pv.device or None) for pv in c.vg.pvs))
                          for c in chosen),
                    tuple(o.device_globs), o.timeout, self._outstanding())
        deadline = time.monotonic() + BACKSTOP_BATCHES * o.timeout + BACKSTOP_SLACK
        running = worker.start(plan, self.isolation)
        siblings = locate.Siblings()
        if any(os.path.basename(os.path.realpath(pv.device or "/")).startswith("loop")
               for c in chosen for pv in c.vg.pvs):
            siblings.prepare()
        out = worker.finish(running, deadline)
        hung = frozenset(tuple(i) for i in (out.stats or {}).get("hung", ()))
        hung |= frozenset(i for i, h in out.heads.items() if h.reason == m.REASON_TIMEOUT)
        if hung and not worker.exited(running):
            self.abandoned[out.pid] = (running, hung - plan.skip)
        return out, siblings

    def scan(self) -> m.CheckResult:
        o = self.options
        started, t0 = time.time(), time.monotonic()
        cached, errors, warnings = read_cache(o.cache_dirs, self.parsed)
        chosen = self.select(cached, errors)
        reports: List[m.VGReport] = []
        stats: dict = {}
        if chosen:
            out, siblings = self._read_disks(chosen)
            stats = out.stats or {}
            if out.error:
                errors.append(m.ErrorItem(m.REASON_INTERNAL, "worker", f"device reader failed: {out.error}"))
            if o.device_globs and not locate.expand_globs(o.device_globs):
                warnings.append(m.ErrorItem(m.REASON_CACHE, ", ".join(o.device_globs),
                                            f"no device matches --devices {' '.join(o.device_globs)}"))
            hints = {pv.id: pv.device or None for c in chosen for pv in c.vg.pvs}
            views = build_views(out, hints, o.device_globs, siblings)
            durations = _durations(chosen, views, out)
            for c in chosen:
                info = m.CacheInfo(c.path, c.vg.seqno, c.vg.creation_time, c.vg.creation_host, c.vg.description)
                report = compare(c.vg, info, views, durations[c.vg.id])
                reports.append(report)
                errors += _pv_errors(report, views)
        # Unknown: the cache could not be read, the worker failed, or a
        # device could not even be opened for lack of permission.
        unknown = any(e.reason in (m.REASON_CACHE, m.REASON_INTERNAL, m.REASON_PERMISSION) for e in errors)
        return m.CheckResult(os.uname().nodename, started, time.monotonic() - t0, tuple(reports),
                             tuple(errors), stats.get("reads", 0), stats.get("read_bytes", 0), unknown,
                             tuple(warnings))

    def adopt(self, other: "Scanner") -> None:
        """Takes over the workers another Scanner left blocked on devices
        (after a reload), so they still count as outstanding reads here."""
        self.abandoned.update(other.abandoned)

    def close(self) -> None:
        self.abandoned.clear()
