"""One check, end to end: cache, worker, views, comparison -> CheckResult.

Shared by `vgdrift check` (fork, one shot) and `vgdrift serve` (spawn, a
Scanner kept across scans that remembers devices whose reads never came
back, so that a hung path gets at most one outstanding read).

What only the verdict needs (verdict/, node/ besides lvmconf, report.py) is
imported while the worker reads (_load_verdict): a one-shot check has two
cores, and those imports are ~15 ms of its start-up."""

from __future__ import annotations

import glob
import os
import time
from typing import TYPE_CHECKING, Dict, List, NamedTuple, Optional, Tuple

from . import model as m
from .disk import locate, worker
from .disk.diskscan import Plan, WantedVG
from .node import lvmconf
from .node.cache import DEFAULT_DIR, CachedVG, read_cache
from .textmeta import VGMeta

if TYPE_CHECKING:
    from .node import devicesfile
    from .verdict.readiness import NodeContext
    from .verdict.views import PVView


def _load_verdict() -> None:
    """Imports what turns the worker's observations into a verdict; called
    while the worker reads, so that the imports overlap the reads."""
    from . import report  # noqa: F401 - rendered right after the scan (check)
    from .node import devicesfile, filters, systemid  # noqa: F401
    from .verdict import actions, compare, readiness, views  # noqa: F401

# The worker times each batch of reads out by itself; this is the parent's
# backstop in case the worker cannot even get that far.
BACKSTOP_BATCHES = 4
BACKSTOP_SLACK = 5.0


class ScanOptions(NamedTuple):
    # () means this node's LVM backup_dir (lvm_system_dir's, else DEFAULT_DIR).
    cache_dirs: Tuple[str, ...] = (DEFAULT_DIR,)
    device_globs: Tuple[str, ...] = ()
    vgs: Tuple[str, ...] = ()
    exclude_vgs: Tuple[str, ...] = ()
    timeout: float = 10.0
    # This node's LVM_SYSTEM_DIR, whose configuration judges whether its LVM
    # would see, own and activate each VG (readiness); None: not consulted
    # (library use; `check` and `serve` always give one).
    lvm_system_dir: Optional[str] = None
    # Discovery (issue 11): `discover` makes every scan look for VGs that no
    # cache file describes (check --discover); serve sets
    # `discovery_interval` instead (seconds, 0 = never) and reports the
    # last discovery's findings in the scans between.
    discover: bool = False
    discovery_interval: float = 0.0

    def wants(self, name: str) -> bool:
        """Whether the VG called `name` is one to report (--vg, --exclude-vg)."""
        return (not self.vgs or name in self.vgs) and name not in self.exclude_vgs


def node_context(conf: lvmconf.NodeLVM, devices: List[str],
                 warnings: List[m.ErrorItem]) -> Tuple[NodeContext, m.NodeLVMInfo]:
    """This node's LVM as it bears on the devices vgdrift found: the
    devices file, the filters' verdicts (one walk of /dev for all) and the
    local system ID.  Configuration files, /dev and sysfs only: no device
    is read."""
    from .node import devicesfile, filters, systemid
    from .verdict.readiness import NodeContext
    where = conf.system_dir or "LVM_SYSTEM_DIR"
    for w in conf.warnings:
        warnings.append(m.ErrorItem(m.REASON_CONFIG, where, w))
    df: Optional[devicesfile.DevicesFile] = None
    df_error = None
    try:
        df = devicesfile.read(conf.devices_file)
    except devicesfile.DevicesFileError as e:
        df_error = str(e)
        if conf.use_devicesfile is not False:
            warnings.append(m.ErrorItem(m.REASON_CONFIG, conf.devices_file, df_error))
    if df is not None and conf.use_devicesfile:
        for w in df.warnings:
            warnings.append(m.ErrorItem(m.REASON_CONFIG, conf.devices_file, w))
    local = systemid.local_system_id(conf.system_id_source, conf.local_system_id,
                                     conf.system_id_file, conf.etc_dir)
    for w in local.warnings:
        warnings.append(m.ErrorItem(m.REASON_CONFIG, where, w))
    # /dev is walked only if some device's other names are needed (a filter
    # that does not accept it by its own path, a stale devices-file entry).
    index = filters.LazyAliasIndex()
    names = filters.Names(devices, index)
    verdicts = filters.verdicts(devices, conf.global_filter, conf.filter, index)
    ctx = NodeContext(conf, local, df, df_error, verdicts, names)
    using = ctx.devices_file_in_use
    info = m.NodeLVMInfo(conf.system_dir, conf.use_devicesfile, conf.devices_file if using else None,
                         conf.system_id_source, local.value)
    return ctx, info


def _durations(chosen: List[CachedVG], views: Dict[str, PVView], out: worker.Outcome) -> Dict[str, float]:
    """Each VG's part of the scan: until its last label or text arrived."""
    at_path = {h.path: h.elapsed for h in out.heads.values()}
    at_vg: Dict[str, float] = {}
    for t in out.texts.values():
        if t.vg is not None:
            at_vg[t.vg.id] = max(at_vg.get(t.vg.id, 0.0), t.elapsed)
    result = {}
    for c in chosen:
        stamps = [at_path.get(views[pv.id].device or "", 0.0) for pv in c.vg.pvs if pv.id in views]
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


def _outdated_warnings(report: m.VGReport) -> List[m.ErrorItem]:
    """One warning per outdated PV: LVM works around it, but it stays until
    `vgck --updatemetadata` on the node that owns the VG wipes it."""
    return [m.ErrorItem(m.PV_OUTDATED, pv.device or pv.uuid,
                        f"VG {report.name}: PV {pv.uuid} on {pv.device} {pv.error}; clean it up with "
                        f"vgck --updatemetadata on the node that owns the VG", vg=report.name)
            for pv in report.pvs if pv.state == m.PV_OUTDATED]


def _internal_errors(out: worker.Outcome, known: List[m.ErrorItem]) -> List[m.ErrorItem]:
    """Reads that failed with an unexpected error, whichever PV they were
    for (a device whose label was never read belongs to no PV view): each
    makes the whole answer unknown."""
    seen = {e.message for e in known}
    failed = [(h.path, h.error) for h in out.heads.values() if h.reason == m.REASON_INTERNAL]
    failed += [(t.path, t.error) for t in list(out.texts.values()) + list(out.text_failures.values())
               if t.reason == m.REASON_INTERNAL]
    items = []
    for path, error in failed:
        message = error or f"{path}: internal error"
        if message not in seen:
            seen.add(message)
            items.append(m.ErrorItem(m.REASON_INTERNAL, path, message))
    return items


# --- unreadable cache files and device directories (issue 9) ---------------

def _unknown_vgs(options: ScanOptions, chosen: List[CachedVG],
                 errors: List[m.ErrorItem]) -> List[m.VGReport]:
    """A VG whose cache file is there but cannot be read or parsed is
    reported, in state unknown, rather than left out: a VG that vanishes
    from the report (and from the exporter's metrics) resolves its alerts.
    The file is named after its VG (LVM's convention for backup files).
    Its errors get the VG's name; a directory that cannot be listed names
    no VG (the exporter keeps the VGs it knew, serve/scanstats.py)."""
    names = {c.vg.name for c in chosen}
    reports: List[m.VGReport] = []
    for i, e in enumerate(list(errors)):
        if e.reason not in (m.REASON_CACHE, m.REASON_PERMISSION) or e.vg is not None \
                or e.where in options.cache_dirs or os.path.dirname(e.where) not in options.cache_dirs:
            continue
        name = os.path.basename(e.where)
        if name in names or not options.wants(name):
            continue
        names.add(name)
        errors[i] = m.ErrorItem(e.reason, e.where, e.message, vg=name)
        from .verdict.actions import unknown_actions
        reports.append(m.VGReport(name=name, uuid="", state=m.UNKNOWN,
                                  cache=m.CacheInfo(e.where, 0, 0, "", ""), disk=None, pvs=(),
                                  actions=unknown_actions(e.where, e.reason), reason=e.reason))
    if reports:
        # --vg NAME with NAME's file unreadable: it is in the cache, just not readable.
        listed = ", ".join(options.cache_dirs)
        errors[:] = [e for e in errors if not (e.where == listed and e.vg in names
                                               and "is not in the cache" in e.message)]
    return reports


def _listable(path: str, errors: List[m.ErrorItem], listing: bool) -> None:
    try:
        if listing:
            # Opening is enough (the permission to list is checked there),
            # and costs the same with ten entries or ten thousand.
            with os.scandir(path):
                pass
        else:
            os.stat(path)
    except PermissionError as e:
        what = "list" if listing else "look up"
        errors.append(m.ErrorItem(m.REASON_PERMISSION, path,
                                  f"{path}: cannot {what} devices: {e.strerror or e}"))
    except OSError:
        pass                # absent: "no device matches" says it (a warning)


def device_access_errors(globs: Tuple[str, ...], limit: int = 64) -> List[m.ErrorItem]:
    """Permission errors on the directories --devices globs walk (or on
    /sys/class/block and /dev without globs).  glob() returns nothing for a
    directory it may not list, so without this a device directory the
    exporter cannot read looked like PVs gone missing: a confident, wrong
    answer.  Bounded: at most `limit` directories are looked at."""
    errors: List[m.ErrorItem] = []
    if not globs:
        _listable(locate.SYS_BLOCK, errors, listing=True)
        _listable("/dev", errors, listing=True)
        return errors
    looked = 0
    for pattern in globs:
        parts = pattern.split(os.sep)
        current = [os.sep if pattern.startswith(os.sep) else os.curdir]
        for depth, part in enumerate(parts[1:] if pattern.startswith(os.sep) else parts):
            last = depth == len(parts) - (2 if pattern.startswith(os.sep) else 1)
            if not part:
                continue
            following = []
            for d in current:
                if looked >= limit:
                    return errors
                looked += 1
                if glob.has_magic(part):
                    before = len(errors)
                    _listable(d, errors, listing=True)
                    if len(errors) == before and not last:
                        following += [p for p in glob.glob(os.path.join(glob.escape(d), part))
                                      if os.path.isdir(p)]
                else:
                    path = os.path.join(d, part)
                    before = len(errors)
                    _listable(path, errors, listing=False)
                    if len(errors) == before and not last and os.path.isdir(path):
                        following.append(path)
            current = following
    return errors


# --- discovery (issue 11) ----------------------------------------------------

def _unlisted(errors: List[m.ErrorItem], o: ScanOptions) -> bool:
    """A cache directory could not be listed (cache.read_cache's error)."""
    return any(e.vg is None and e.where in o.cache_dirs and e.reason in (m.REASON_CACHE, m.REASON_PERMISSION)
               for e in errors)


def _discovered(out: worker.Outcome, known_ids: set, o: ScanOptions,
                warnings: List[m.ErrorItem]) -> List[Tuple[VGMeta, Dict[str, Optional[str]]]]:
    """The VGs the disks hold that no cache file describes: the newest copy
    of each, and where this node found each of its PVs.  Orphan PVs (no
    committed copy) give no text, hence no VG.  A candidate that could not
    be read is a warning: discovery may have missed a VG on it."""
    heads = list(out.heads.values()) + list(out.discovered.values())
    for h in out.discovered.values():
        if h.reason is not None and h.error:
            warnings.append(m.ErrorItem(h.reason, h.path, f"discovery: {h.error}"))
    newest: Dict[str, VGMeta] = {}
    for t in out.texts.values():
        vg = t.vg
        if vg is None or vg.id in known_ids:
            continue
        if not o.wants(vg.name):
            continue
        if vg.id not in newest or vg.seqno > newest[vg.id].seqno:
            newest[vg.id] = vg
    if not newest:
        return []
    wanted = {pv.id for vg in newest.values() for pv in vg.pvs}
    paths: Dict[str, List[str]] = {}
    for h in heads:
        if h.label is not None and h.reason is None:
            uuid = h.pv_uuid
            if uuid in wanted:
                paths.setdefault(uuid, []).append(h.path)
    found = []
    for vg_id in sorted(newest, key=lambda i: (newest[i].name, i)):
        vg = newest[vg_id]
        devs: Dict[str, Optional[str]] = {}
        for pv in vg.pvs:
            where = paths.get(pv.id)
            devs[pv.id] = locate.preferred(where, pv.device or None)[0] if where else None
        found.append((vg, devs))
    return found


def _unknown_record(vg: VGMeta, devs: Dict[str, Optional[str]], cache_dir: str, backup_dir: str,
                    node: Optional[NodeContext]) -> m.UnknownVG:
    from .verdict.actions import discovered_actions
    ready = node.evaluate(vg, devs) if node is not None else None
    return m.UnknownVG(vg.name, vg.id, vg.seqno, vg.creation_time, vg.creation_host, vg.system_id,
                       tuple(m.UnknownPV(pv.id, devs.get(pv.id)) for pv in vg.pvs),
                       discovered_actions(vg, devs, os.path.join(cache_dir, vg.name), backup_dir, ready),
                       tuple(b.record() for b in ready.blockers) if ready is not None else ())


class Scanner:
    def __init__(self, options: ScanOptions, isolation: str = "spawn"):
        if isolation not in ("fork", "spawn"):
            raise ValueError(f"isolation must be fork or spawn, not {isolation!r}")
        self.options = options
        # Kept across scans (serve): lvm.conf and lvmlocal.conf are parsed
        # again only when one of them changes.
        self.lvm_config = (lvmconf.ConfigCache(options.lvm_system_dir)
                           if options.lvm_system_dir is not None else None)
        self.isolation = isolation
        # serve: one long-lived worker process across scans (disk/worker.py).
        self.pool = worker.Persistent() if isolation == "spawn" else None
        self.abandoned: Dict[int, Tuple[worker.Running, frozenset]] = {}   # pid -> (worker, idents)
        self.parsed: dict = {}    # cache files parsed by earlier scans (cache.read_file)
        # The last discovery's findings (issue 11), kept for the scans between.
        self.discovered: Tuple[m.UnknownVG, ...] = ()
        self.discovered_at: Optional[float] = None
        self.discovered_mono: Optional[float] = None

    def _outstanding(self) -> frozenset:
        """Devices an earlier, abandoned worker is still blocked on."""
        for pid, (running, _) in list(self.abandoned.items()):
            if worker.exited(running):
                del self.abandoned[pid]
        return frozenset(i for _, idents in self.abandoned.values() for i in idents)

    def select(self, cached: List[CachedVG], errors: List[m.ErrorItem],
               warnings: List[m.ErrorItem], options: Optional[ScanOptions] = None) -> List[CachedVG]:
        """The cached VGs to check.  With --vg, a cache file that cannot be
        read and is not named after a chosen VG is a warning: it must not
        block the failover of a healthy VG.  (A directory that cannot be
        listed, or a file named after the VG, still makes the answer
        unknown.)"""
        o = options or self.options
        if o.vgs:
            for e in list(errors):
                if (e.reason in (m.REASON_CACHE, m.REASON_PERMISSION) and e.where not in o.cache_dirs
                        and os.path.basename(e.where) not in o.vgs):
                    errors.remove(e)
                    warnings.append(e)
        for name in o.vgs:
            if not any(c.vg.name == name for c in cached):
                errors.append(m.ErrorItem(m.REASON_CACHE, ", ".join(o.cache_dirs),
                                          f"VG {name} is not in the cache ({', '.join(o.cache_dirs)})", vg=name))
        return [c for c in cached if o.wants(c.vg.name)]

    def _plan(self, wanted: List[WantedVG], discover: bool, known_pvs: frozenset) -> Plan:
        o = self.options
        return Plan(tuple(wanted), tuple(o.device_globs), o.timeout, self._outstanding(), discover, known_pvs)

    def _start(self, plan: Plan) -> worker.Running:
        return worker.start(plan, self.isolation, self.pool)

    def _read_disks(self, plan: Plan, early: Optional[Tuple[Plan, worker.Running]] = None
                    ) -> Tuple[worker.Outcome, locate.Siblings]:
        """Runs the worker, or takes the one started early from the sketch
        of the cache when it was given this very plan (else that one is let
        go unheard and a new one starts).  The loop-device index (sysfs) is
        built later, only if the views need it (locate.Siblings): a PV seen
        twice."""
        o = self.options
        if early is not None and early[0] == plan:
            running = early[1]
        else:
            if early is not None:
                self._abandon(early[1])
            running = self._start(plan)
        deadline = time.monotonic() + BACKSTOP_BATCHES * o.timeout + BACKSTOP_SLACK
        _load_verdict()
        siblings = locate.Siblings()
        out = worker.finish(running, deadline)
        hung = frozenset(tuple(i) for i in (out.stats or {}).get("hung", ()))
        hung |= frozenset(i for i, h in out.heads.items() if h.reason == m.REASON_TIMEOUT)
        if hung:
            worker.retire(running)     # a read left behind: the next scan gets a new worker
        if hung and not worker.exited(running):
            self.abandoned[out.pid] = (running, hung - plan.skip)
        return out, siblings

    def _abandon(self, running: worker.Running) -> None:
        """Lets a worker go unheard: it stops at its next write, and is
        reaped with the others left behind (_outstanding)."""
        worker.abandon(running)
        self.abandoned[running.pid] = (running, frozenset())

    def _early(self, o: ScanOptions, discover: bool) -> Tuple[Optional[Tuple[Plan, worker.Running]], Optional[dict]]:
        """A one-shot check starts its worker from a sketch of the cache
        files (node/cache.py) and parses them while the worker reads; the
        parse then checks the sketch was right (_read_disks).  The exporter
        parses only the files that changed, and needs no sketch.  Returns
        (the plan and worker started, the files as read) or (None, None)."""
        if self.isolation != "fork":
            return None, None
        from .node.cache import sketch
        drawn = sketch(o.cache_dirs)
        if drawn is None:
            return None, None
        vgs, loaded = drawn
        wanted = [WantedVG(s.id, s.pvs) for s in vgs if o.wants(s.name)]
        if not wanted and not discover:
            return None, loaded
        plan = self._plan(wanted, discover, frozenset(pv for s in vgs for pv, _ in s.pvs))
        return (plan, self._start(plan)), loaded

    def _lvm_conf(self, errors: List[m.ErrorItem]) -> Tuple[Optional[lvmconf.NodeLVM], ScanOptions]:
        """This node's LVM configuration (None when not consulted or
        unusable: an error, the answer is then unknown) and the options
        with the cache directory resolved."""
        o = self.options
        conf = None
        if self.lvm_config is not None:
            try:
                conf = self.lvm_config.get()
            except lvmconf.ConfigError as e:
                errors.append(m.ErrorItem(m.REASON_CONFIG, self.lvm_config.sysdir or "LVM_SYSTEM_DIR",
                                          str(e)))
        if not o.cache_dirs:
            if conf is not None:
                default = conf.backup_dir
            elif self.lvm_config is not None:
                default = os.path.join(self.lvm_config.sysdir or "/", "backup")   # LVM's built-in default
            else:
                default = DEFAULT_DIR
            o = o._replace(cache_dirs=(default,))
        return conf, o

    def _discovery_due(self, discover: Optional[bool]) -> bool:
        if discover is not None:
            return discover
        if self.options.discover:
            return True
        every = self.options.discovery_interval
        return every > 0 and (self.discovered_mono is None or time.monotonic() - self.discovered_mono >= every)

    def scan(self, discover: Optional[bool] = None) -> m.CheckResult:
        """One check; with discovery when `discover` is True, or (None) when
        the options ask for it every scan or its interval has passed."""
        discover = self._discovery_due(discover)
        started, t0 = time.time(), time.monotonic()
        conf_errors: List[m.ErrorItem] = []
        conf, o = self._lvm_conf(conf_errors)
        early, loaded = self._early(o, discover)
        cached, errors, warnings = read_cache(o.cache_dirs, self.parsed, loaded)
        errors = conf_errors + errors
        chosen = self.select(cached, errors, warnings, o)
        lvm_info: Optional[m.NodeLVMInfo] = None
        if self.lvm_config is not None and conf is None:
            lvm_info = m.NodeLVMInfo(self.lvm_config.sysdir, None, None, "", None)
        reports: List[m.VGReport] = []
        stats: dict = {}
        unknown_vgs = _unknown_vgs(o, chosen, errors)
        if chosen or unknown_vgs:
            errors += device_access_errors(tuple(o.device_globs))
        found_unknown: List[Tuple[VGMeta, Dict[str, Optional[str]]]] = []
        if chosen or discover:
            plan = self._plan([WantedVG(c.vg.id, tuple((pv.id, pv.device or None) for pv in c.vg.pvs))
                               for c in chosen], discover, frozenset(pv.id for c in cached for pv in c.vg.pvs))
            out, siblings = self._read_disks(plan, early)
            early = None
            from .verdict.compare import compare, holding
            from .verdict.views import build_views
            stats = out.stats or {}
            if out.error:
                errors.append(m.ErrorItem(m.REASON_INTERNAL, "worker", f"device reader failed: {out.error}"))
            if o.device_globs and out.candidates == ():
                warnings.append(m.ErrorItem(m.REASON_CACHE, ", ".join(o.device_globs),
                                            f"no device matches --devices {' '.join(o.device_globs)}"))
            hints = {pv.id: pv.device or None for c in chosen for pv in c.vg.pvs}
            views = build_views(out, hints, o.device_globs, siblings)
            durations = _durations(chosen, views, out)
            node = None
            if discover:
                # The cache read again after the labels: a VG this node has
                # just created (vgcreate writes the disks, then its backup)
                # is not unknown here.
                again, _, _ = read_cache(o.cache_dirs, self.parsed)
                known = {c.vg.id for c in cached + again}
                found_unknown = _discovered(out, known, o, warnings)
            if conf is not None:
                found = sorted({v.device for v in views.values() if v.device}
                               | {d for _, devs in found_unknown for d in devs.values() if d})
                node, lvm_info = node_context(conf, found, warnings)
            held = holding(views)     # once: each VG's comparison then costs its own PVs
            for c in chosen:
                info = m.CacheInfo(c.path, c.vg.seqno, c.vg.creation_time, c.vg.creation_host, c.vg.description)
                report = compare(c.vg, info, views, durations[c.vg.id], node, held)
                reports.append(report)
                errors += _pv_errors(report, views)
                warnings += _outdated_warnings(report)
                warnings += [m.ErrorItem(m.REASON_CONFIG, report.cache.path, n, vg=report.name)
                             for n in report.notes]
            errors += _internal_errors(out, errors)
            if discover and out.complete and not out.error and not _unlisted(errors, o):
                # A VG the disks hold instead of a cached one (uuid_mismatch)
                # is reported there, under its own id.  (A worker that did
                # not finish leaves the last discovery, and its time, as
                # they were: a partial sweep must not clear findings.)
                shown = {r.disk.uuid for r in reports if r.disk is not None}
                backup_dir = node.conf.backup_dir if node is not None else DEFAULT_DIR
                self.discovered = tuple(
                    _unknown_record(vg, devs, o.cache_dirs[0], backup_dir, node)
                    for vg, devs in found_unknown if vg.id not in shown)
                self.discovered_at, self.discovered_mono = time.time(), time.monotonic()
            elif discover and not out.error:
                # The worker did not finish its plan (backstop deadline): the
                # sweep may have missed VGs.  `check --discover` cannot say
                # "none" then (unknown); serve keeps its last discovery.
                item = m.ErrorItem(m.REASON_INTERNAL, "discovery",
                                   "discovery did not finish: the device reader did not complete its plan")
                (errors if self.options.discover else warnings).append(item)
        elif conf is not None:
            _, lvm_info = node_context(conf, [], warnings)
        if early is not None:
            self._abandon(early[1])      # the parse found nothing to read after all
        reports += unknown_vgs
        # Between discoveries (serve): the last one's findings, less the VGs
        # cached since (a vgcfgbackup here resolves them at the next scan).
        cached_ids = {c.vg.id for c in cached}
        # A VG whose cache file is there but unreadable is reported (state
        # unknown) under its name already: not a second time here.
        unreadable = {r.name for r in unknown_vgs}
        # A cache directory that cannot be listed hides which VGs are
        # cached: every VG on the disks would look unknown.  Nothing is
        # reported unknown then (the answer is already unknown, exit 3).
        unknown_found: Tuple[m.UnknownVG, ...] = () if _unlisted(errors, o) else tuple(
            u for u in self.discovered if u.uuid not in cached_ids and u.name not in unreadable
            and o.wants(u.name))
        if unknown_found and o.vgs:
            # `--discover --vg NAME` for a VG created elsewhere: it is not in
            # the cache, and that is the answer (unknown_vgs, exit >= 1), not
            # an error that makes the whole answer unknown.
            found_names = {u.name for u in unknown_found}
            errors = [e for e in errors if not (e.reason == m.REASON_CACHE and e.vg in found_names
                                                and e.where == ", ".join(o.cache_dirs))]
        # Unknown: the cache could not be read, the worker failed, a device
        # could not even be opened for lack of permission, or this node's
        # LVM configuration could not be read.
        unknown = any(e.reason in (m.REASON_CACHE, m.REASON_INTERNAL, m.REASON_PERMISSION, m.REASON_CONFIG)
                      for e in errors)
        return m.CheckResult(os.uname().nodename, started, time.monotonic() - t0, tuple(reports),
                             tuple(errors), stats.get("reads", 0), stats.get("read_bytes", 0), unknown,
                             tuple(warnings), lvm_info, unknown_found, self.discovered_at)

    def adopt(self, other: Scanner) -> None:
        """Takes over the workers another Scanner left blocked on devices
        (after a reload), so they still count as outstanding reads here."""
        self.abandoned.update(other.abandoned)

    def close(self) -> None:
        self.abandoned.clear()
        if self.pool is not None:
            self.pool.close()
