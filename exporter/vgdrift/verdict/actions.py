"""What this node should run, in order, for a VG's state.  Pure.

The contract with failover scripts (README, "Actions"): a script may run
every non-null `command` in the order given, each with `sh -c`, stopping at
the first failure.  So:
- every command moves this node toward `in_sync` (a refresh writes the file
  vgdrift reads; a condition a script cannot judge stays advice, command
  null);
- no command destroys the only copy of metadata newer than the disks: this
  node's backup is copied (cache_ahead, conflict) or moved (uuid_mismatch)
  out of the cache directory before anything could overwrite it;
- names and paths are shell-quoted;
- a VG with another host's system ID (or one this node cannot tell is
  its own) is read with `vgcfgbackup --foreign`, which works whether or
  not this node owns it (plain vgcfgbackup fails on a VG that another host
  owns: "Cannot access VG ... with system ID ...");
- a VG that this node's LVM would not activate (blocked) gets the fix
  first: `lvm lvmdevices --adddev DEVICE` for each PV missing from a
  devices file in use (never without one: with no file that command
  creates one listing that device alone, hiding every other PV), advice
  for the rest, then the refresh;
- what must be done on another node (vgimport, turning autoactivation
  off) is advice, never a command: commands run on this node.

Every state has its own branch in BRANCHES (tests check it against
model.VGState)."""

import os
import shlex
from typing import Callable, Dict, Mapping, NamedTuple, Optional, Tuple

from .. import model as m
from ..model import FOUND
from ..node.cache import DEFAULT_DIR as LVM_BACKUP_DIR
from ..textmeta import VGMeta
from .readiness import Readiness
from .views import PVView

# Where backups moved or copied out of the cache directory go: a sibling of
# it (/etc/lvm/vgdrift-saved for /etc/lvm/backup), which no cache reader
# lists and LVM does not touch.
SAVED_DIR = "vgdrift-saved"

Actions = Tuple[m.Action, ...]


def q(word: object) -> str:
    return shlex.quote(str(word))


def saved_dir(cache_path: str) -> str:
    """The directory beside the cache directory that holds saved backups."""
    return os.path.join(os.path.dirname(os.path.dirname(cache_path)), SAVED_DIR)


def saved_path(cache_path: str, vg: VGMeta) -> str:
    """Where this node's backup of `vg` is kept when it is saved: named by
    VG name, id and seqno, so saves of different versions never collide
    (and cp/mv --backup=numbered keep an earlier save of the same one)."""
    return os.path.join(saved_dir(cache_path), f"{vg.name.replace('/', '_')}_{vg.id}_seqno{vg.seqno}")


class Ctx(NamedTuple):
    state: str
    cache: VGMeta
    cache_path: str
    disk: Optional[VGMeta]
    views: Mapping[str, PVView]
    chg: Tuple[m.Change, ...]
    ready: Optional[Readiness] = None     # this node's LVM's verdict, when consulted
    backup_dir: str = LVM_BACKUP_DIR      # where this node's LVM writes backups

    def refresh(self, vg: VGMeta, why: str) -> m.Action:
        owned = self.ready.owner.this_node if self.ready is not None else None
        return refresh(self.cache_path, vg, why, self.backup_dir, owned)

    @property
    def name(self) -> str:
        """The VG's current name: on disk when the disk holds this VG id."""
        d = self.disk
        return d.name if d is not None and d.id == self.cache.id else self.cache.name

    @property
    def unseen(self):
        return [v for v in self.views.values() if v.status != FOUND]


def refresh_target(cache_path: str, vg: VGMeta) -> str:
    """The file a refresh of `vg` writes: <cache dir>/<VG name>."""
    return os.path.join(os.path.dirname(cache_path), vg.name)


def refresh(cache_path: str, vg: VGMeta, why: str, backup_dir: str = LVM_BACKUP_DIR,
            owned: Optional[bool] = None) -> m.Action:
    """`vgcfgbackup` of `vg` into the cache directory vgdrift reads.

    Plain `vgcfgbackup VG` writes LVM's backup_dir (backup/backup_dir of
    this node's lvm.conf, /etc/lvm/backup by default).  For another cache
    directory the file is named with -f, so that the refresh always lands
    where the next check looks.  LVM expands -f as a printf template (%s =
    VG name): a literal % is doubled.  `owned`: whether the VG's system ID
    is this node's (None: unknown); any other VG with a system ID needs
    --foreign."""
    cmd = ["vgcfgbackup"]
    notes = []
    if vg.system_id and owned is not True:
        cmd.append("--foreign")
        notes.append(f"--foreign: the VG has system ID {vg.system_id!r}, not this node's; reading it "
                     f"does not take it over")
    cache_dir = os.path.dirname(cache_path)
    if os.path.normpath(cache_dir) != os.path.normpath(backup_dir):
        cmd += ["-f", refresh_target(cache_path, vg).replace("%", "%%")]
        notes.append(f"-f: the cache directory {cache_dir} is not LVM's backup directory {backup_dir}")
    cmd.append(vg.name)
    return m.Action(" ".join(q(w) for w in cmd), why + (f" ({'; '.join(notes)})" if notes else ""))


def save(cache_path: str, vg: VGMeta, why: str, move: bool = False) -> m.Action:
    """Copy (or move) this node's backup out of the cache directory."""
    dest = saved_path(cache_path, vg)
    tool = "mv" if move else "cp -p"
    # 0700 like LVM's own backup and archive directories.
    return m.Action(f"mkdir -p -m 0700 -- {q(saved_dir(cache_path))} && "
                    f"{tool} --backup=numbered -- {q(cache_path)} {q(dest)}", why)


def _drop_old_file(ctx: Ctx, vg: VGMeta) -> Actions:
    """After a refresh, the cached file under another name (a renamed VG,
    or a backup file not named after its VG) would keep the old version
    beside the new one."""
    if os.path.normpath(refresh_target(ctx.cache_path, vg)) == os.path.normpath(ctx.cache_path):
        return ()
    return (m.Action(f"rm -f -- {q(ctx.cache_path)}",
                     f"the refreshed copy is {refresh_target(ctx.cache_path, vg)}; the old file "
                     f"{ctx.cache_path} would stay behind with the older version"),)


# ------------------------------------------------------------------ branches

def _in_sync(ctx: Ctx) -> Actions:
    return ()


def _no_disk(ctx: Ctx) -> Actions:
    return (m.Action(None, f"do not activate: no on-disk copy of {ctx.cache.name} was read; check again"),)


def _drift(ctx: Ctx) -> Actions:
    disk = ctx.disk
    if disk is None or disk.id != ctx.cache.id:
        return _no_disk(ctx)
    return (ctx.refresh(disk, f"refresh this node's cached metadata (seqno {ctx.cache.seqno} -> "
                              f"{disk.seqno})"),) + _drop_old_file(ctx, disk)


def _blocked(ctx: Ctx) -> Actions:
    """The fixes for this node's LVM first (only commands that change this
    node's own configuration: lvmdevices --adddev while the devices file
    is in use), then, for a drifted VG, the refresh, which needs LVM to see
    every PV."""
    disk = ctx.disk
    if disk is None or disk.id != ctx.cache.id:
        return _no_disk(ctx)
    if ctx.ready is None or not ctx.ready.blockers:
        return (m.Action(None, "do not activate: this node's LVM, as configured, would not activate the "
                               "VG; check again"),)
    out = []
    for b in ctx.ready.blockers:
        if b.action:
            out.append(m.Action(b.action, b.message))
        else:
            out.append(m.Action(None, f"do not activate: {b.message}"))
    if disk.seqno > ctx.cache.seqno:
        out += _drift(ctx)
    return tuple(out)


def _cache_ahead(ctx: Ctx) -> Actions:
    disk = ctx.disk
    if disk is None:
        return _no_disk(ctx)
    kept = saved_path(ctx.cache_path, ctx.cache)
    return (m.Action(None, f"do not activate: disk seqno {disk.seqno} is older than this node's cached "
                           f"seqno {ctx.cache.seqno}; check that the right LUNs (not a snapshot or an old "
                           f"replica) are presented to this node"),
            save(ctx.cache_path, ctx.cache,
                 f"keep this node's copy (seqno {ctx.cache.seqno}), maybe the only copy of the newer metadata, "
                 f"as {kept} before anything overwrites it"),
            m.Action(f"vgcfgrestore --list {q(ctx.cache.name)}",
                     "compare the disk's version with this node's archive"),
            ctx.refresh(disk, f"only once the disks are known to be the right ones: accept them "
                                          f"(this node's copy stays in {kept})")
            ) + _drop_old_file(ctx, disk)


def _conflict(ctx: Ctx) -> Actions:
    disk = ctx.disk
    host = disk.creation_host if disk is not None else "?"
    kept = saved_path(ctx.cache_path, ctx.cache)
    return (m.Action(None, f"do not activate: two writers committed seqno {ctx.cache.seqno} with different "
                           f"content (cached from {ctx.cache.creation_host}, on disk from {host}); "
                           f"decide which version is right before anything else"),
            save(ctx.cache_path, ctx.cache, f"keep this node's version, maybe its only copy, as {kept}"),
            m.Action(f"vgcfgrestore --list {q(ctx.cache.name)}", "find the archived versions of both"))


def _uuid_mismatch(ctx: Ctx) -> Actions:
    disk = ctx.disk
    if disk is None:
        return _no_disk(ctx)
    kept = saved_path(ctx.cache_path, ctx.cache)
    return (m.Action(None, f"do not activate: the PVs now hold VG {disk.name} with id {disk.id}, not the "
                           f"cached {ctx.cache.name} ({ctx.cache.id}); confirm that this is the VG to use"),
            # First out of the cache directory (where it would still be read
            # as a second VG), then the refresh, which may reuse its name.
            save(ctx.cache_path, ctx.cache, f"move the backup of VG id {ctx.cache.id} out of the cache "
                                            f"directory, to {kept}", move=True),
            ctx.refresh(disk, f"once VG {disk.name} ({disk.id}) is confirmed as the one to use: "
                                          f"cache it"))


def _partial(ctx: Ctx) -> Actions:
    missing = ", ".join(v.uuid for v in ctx.unseen if v.status == m.PV_MISSING) or "some PVs"
    return (m.Action(None, f"do not activate: PV(s) {missing} are not visible on this node; present the "
                           f"LUNs (rescan the SCSI bus, check zoning and multipath -ll), then check again"),)


def _missing(ctx: Ctx) -> Actions:
    return (m.Action(None, f"do not activate: no PV of {ctx.cache.name} on this node holds the VG; present "
                           f"its LUNs, or if it was removed on purpose, move {ctx.cache_path} out of the "
                           f"cache directory"),)


def _inconsistent(ctx: Ctx) -> Actions:
    # A repair writes the shared metadata: that is for the node that owns
    # the VG, and only if waiting does not clear it; never a blind step here.
    return (m.Action(None, "do not activate: the VG's on-disk copies disagree or one is corrupt; let the "
                           "writing node finish, then check again"),
            m.Action(None, f"if the disagreement persists, repair on the node that owns the VG and sees all "
                           f"its PVs: vgck --updatemetadata {q(ctx.name)}"))


def _unreadable(ctx: Ctx) -> Actions:
    denied = sorted(v.device or v.uuid for v in ctx.unseen if v.reason == m.REASON_PERMISSION)
    if denied:   # not a path problem: this process may not open the devices
        return (m.Action(None, f"do not activate: permission denied reading {', '.join(denied)}; run "
                               f"vgdrift as root, or give it the capability CAP_DAC_READ_SEARCH"),)
    errs = sorted({v.error for v in ctx.unseen if v.error})
    return (m.Action(None, "do not activate: the metadata could not be read"
                           + (f" ({errs[0]})" if errs else "") + "; check the paths (multipath -ll, dmesg)"),)


def unknown_actions(cache_path: str, reason: str = m.REASON_PERMISSION) -> Actions:
    """For a VG whose cached copy cannot be read or parsed (scan.py builds
    such reports without any metadata, hence no Ctx)."""
    if reason == m.REASON_PERMISSION:
        fix = "restore read access to it (and its directory) for vgdrift"
    else:
        # A file LVM itself would refuse: only a fresh backup replaces it.
        fix = ("move it out of the cache directory and refresh it with vgcfgbackup once the VG is known "
               "to be in a good state (the error above says what is wrong with it)")
    return (m.Action(None, f"do not activate: this node's cached copy {cache_path} cannot be "
                           f"{'read' if reason == m.REASON_PERMISSION else 'parsed'}, so nothing can be told "
                           f"about the VG; {fix}, then check again"),)


def _unknown(ctx: Ctx) -> Actions:
    if ctx.ready is not None and ctx.ready.unknown:
        # The comparison itself was fine: what this node's LVM would do is
        # not known.  A drifted VG may still be refreshed.
        out = [m.Action(None, f"do not activate before this is settled: cannot tell whether this "
                              f"node's LVM would use the VG ({'; '.join(ctx.ready.unknown)})")]
        disk = ctx.disk
        if disk is not None and disk.id == ctx.cache.id and disk.seqno > ctx.cache.seqno:
            out += _drift(ctx)
        return tuple(out)
    return unknown_actions(ctx.cache_path)


BRANCHES: Dict[m.VGState, Callable[[Ctx], Actions]] = {
    m.VGState.IN_SYNC: _in_sync,
    m.VGState.DRIFT: _drift,
    m.VGState.CACHE_AHEAD: _cache_ahead,
    m.VGState.CONFLICT: _conflict,
    m.VGState.UUID_MISMATCH: _uuid_mismatch,
    m.VGState.PARTIAL: _partial,
    m.VGState.BLOCKED: _blocked,
    m.VGState.MISSING: _missing,
    m.VGState.INCONSISTENT: _inconsistent,
    m.VGState.UNREADABLE: _unreadable,
    m.VGState.UNKNOWN: _unknown,
}


def actions(state: str, cache: VGMeta, cache_path: str, disk: Optional[VGMeta],
            views: Mapping[str, PVView], chg: Tuple[m.Change, ...],
            ready: Optional[Readiness] = None, backup_dir: Optional[str] = None) -> Actions:
    # str-valued enum members hash and compare as their value: "drift"
    # finds VGState.DRIFT.  A state without a branch gets no other
    # state's advice (tests keep BRANCHES complete).
    branch = BRANCHES.get(state)   # type: ignore[call-overload]
    if branch is None:
        return (m.Action(None, f"do not activate: no advice for state {state!r}"),)
    return branch(Ctx(state, cache, cache_path, disk, views, chg, ready, backup_dir or LVM_BACKUP_DIR))


def readiness_notes(ready: Readiness) -> Actions:
    """Advice for readiness warnings (a stale devices-file entry, a VG this
    node would autoactivate), after everything else.  Advice, not commands:
    none of them is needed to reach in_sync, and turning autoactivation off
    writes the VG's metadata, which only the node that owns it may do."""
    return tuple(m.Action(None, f"{n.message}: {n.action}" if n.action and n.action not in n.message
                          else n.message) for n in ready.warnings)


def outdated_actions(state: str, name: str, uuids) -> Actions:
    """Advice for outdated PVs (older copies of the VG on PVs the newest copy
    no longer lists); `name` comes shell-quoted.  Cleaning them writes the
    shared metadata: for the node that owns the VG, never a blind step on
    this one."""
    # NOTE (section 5 helper): re-added with the signature compare.py calls,
    # after the rewrite of this file overwrote the version appended for
    # outdated PVs; its owner may replace the body.
    # Only in in_sync and drift (and blocked, which is one of them that this
    # node's LVM would not activate): in the other states the disks
    # themselves are in question, and a commit there could overwrite the
    # one copy that needs a decision first.
    if not uuids or state not in (m.IN_SYNC, m.DRIFT, m.BLOCKED):
        return ()
    return (m.Action(None, f"PV(s) {', '.join(uuids)} hold an outdated copy of the VG, which LVM ignores; "
                           f"on the node that owns the VG, clean them up: vgck --updatemetadata {name}"),)


def divergent_actions(groups) -> Actions:
    """Advice for a VG that is inconsistent because one PV uuid sits on
    devices that disagree (reason divergent_duplicate): a stale snapshot or
    replica presented beside or instead of the real LUN.  Waiting does not
    clear it and no LVM repair is right while LVM may pick either device.
    `groups`: (PV uuid, device paths) for each such PV."""
    where = "; ".join(f"PV {uuid} on {', '.join(paths)}" for uuid, paths in groups)
    return (m.Action(None, f"do not activate: one PV uuid on devices holding different metadata ({where}); "
                           f"LVM would use one of them by its own rules. Find out which LUN is the real "
                           f"one, stop presenting the stale copy to this node (or reject it with an "
                           f"lvm.conf filter), then check again"),)


def discovered_actions(vg: VGMeta, pv_devices: Mapping[str, Optional[str]], cache_path: str,
                       backup_dir: str, ready: Optional[Readiness]) -> Actions:
    """For a VG on this node's disks that no cache file describes (issue
    11): the fixes for whatever would keep this node's LVM from seeing it
    (devices file, filter), as for blocked VGs, then `vgcfgbackup
    [--foreign] NAME` into the cache directory (`cache_path`: the file it
    would write)."""
    out = []
    missing = [u for u, d in pv_devices.items() if not d]
    if missing:
        out.append(m.Action(None, f"PV(s) {', '.join(missing)} of VG {vg.name} are not visible on this node; "
                                  f"present the LUNs before taking the VG over"))
    owned = None
    if ready is not None:
        owned = ready.owner.this_node
        for b in ready.blockers:
            out.append(m.Action(b.action, b.message) if b.action else m.Action(None, f"do not activate: {b.message}"))
        for u in ready.unknown:
            out.append(m.Action(None, f"cannot tell whether this node's LVM would use the VG: {u}"))
    out.append(refresh(cache_path, vg, f"VG {vg.name} ({vg.id}, seqno {vg.seqno}, created on "
                                       f"{vg.creation_host or '?'}) is on this node's disks but in no cache "
                                       f"file: cache it", backup_dir, owned))
    return tuple(out)
