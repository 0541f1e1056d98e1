"""Failover readiness: would this node's LVM, as configured, see, own and
activate a VG right now?  Pure: the configuration, the devices file, the
filters' verdicts and the local system ID are read by node/ modules.

Blockers (this node's LVM would not activate the VG):
- devices_file: the devices file is in use and a PV of the newest on-disk
  copy is not listed (action: `lvm lvmdevices --adddev DEVICE`, only ever
  advised while the file is in use: with no file that command creates one
  listing that device alone, hiding every other PV).
- filter: no devices file in use, and global_filter/filter rejects every
  name of a PV's device.
- system_id: the VG has a system ID and this node has none.
- exported: the newest copy is EXPORTED (vgimport, by whoever exported it).

Anything that cannot be decided goes to `unknown`, never to a verdict.
"""

import shlex
from typing import Mapping, NamedTuple, Optional, Sequence, Tuple

from .. import model as m
from ..model import BlockReason, Owner
from ..node.devicesfile import STALE_ACTION, DevicesFile, in_use, stale
from ..node.filters import Verdict
from ..node.lvmconf import NodeLVM
from ..node.systemid import LocalSystemID
from ..textmeta import LVMeta, VGMeta

EXPORTED_FLAG = "EXPORTED"
NOAUTOACTIVATE = "NOAUTOACTIVATE"
ACTIVATION_SKIP = "ACTIVATION_SKIP"
VISIBLE = "VISIBLE"
# Debian 12 installs no `lvmdevices` command, only `lvm lvmdevices`; the
# `lvm` form runs everywhere.
ADDDEV = "lvm lvmdevices --adddev"


BLOCK_REASONS = tuple(r.value for r in BlockReason)


class Blocker(NamedTuple):
    reason: BlockReason
    pv: Optional[str]            # PV uuid (dashed), None for VG-wide reasons
    device: Optional[str]        # where vgdrift found the PV
    message: str
    action: Optional[str] = None   # a shell command for this node, None: advice only

    def record(self) -> "m.Blocker":
        """The report's form (model.Blocker): the action goes to actions[]."""
        return m.Blocker(str(self.reason), self.pv, self.device, self.message)


class Note(NamedTuple):
    """A warning about readiness, with the command that fixes it."""
    message: str
    action: Optional[str] = None


class Readiness(NamedTuple):
    blockers: Tuple[Blocker, ...]
    owner: Owner
    autoactivation: Optional[bool]
    warnings: Tuple[Note, ...] = ()
    unknown: Tuple[str, ...] = ()    # what could not be decided, one line each

    @property
    def reason(self) -> Optional[BlockReason]:
        return self.blockers[0].reason if self.blockers else None


def adddev_command(device: str) -> str:
    return f"{ADDDEV} {shlex.quote(device)}"


def owner(vg: VGMeta, local: LocalSystemID, extra_system_ids: Sequence[str] = ()) -> Owner:
    """Whose VG this is.  LVM takes a VG as its own when its system ID is
    the local one or one of local/extra_system_ids, and only when the node
    has a system ID at all."""
    sid = vg.system_id
    if local.value is None:
        return Owner(sid, None, None)
    mine = bool(sid) and bool(local.value) and (sid == local.value or sid in extra_system_ids)
    return Owner(sid, local.value, mine)


def _list_matches(entries: Sequence[object], vg: VGMeta, lv: LVMeta) -> Optional[bool]:
    """LVM's volume-list match (activate.c, _lv_passes_volumes_filter):
    "vg", "vg/lv", "@tag" on the LV or the VG; "@*" any host tag (unknown
    to vgdrift: None when the LV or VG has tags).  Non-strings and empty
    strings are ignored, as LVM ignores them."""
    unsure = False
    for e in entries:
        if not isinstance(e, str) or not e or e == "@":
            continue
        if e == "@*":
            if lv.tags or vg.tags:
                unsure = True
            continue
        if e.startswith("@"):
            if e[1:] in lv.tags or e[1:] in vg.tags:
                return True
            continue
        if e == vg.name or e == f"{vg.name}/{lv.name}":
            return True
    return None if unsure else False


def _lv_autoactivates(conf: NodeLVM, vg: VGMeta, lv: LVMeta) -> Optional[bool]:
    if VISIBLE not in lv.status:
        return False      # activated with the LV that uses it, if at all
    if NOAUTOACTIVATE in lv.flags or NOAUTOACTIVATE in lv.status:
        return False
    if ACTIVATION_SKIP in lv.flags or ACTIVATION_SKIP in lv.status:
        return False      # -aay honours the skip flag
    answer: Optional[bool] = True
    for entries in (conf.volume_list, conf.auto_activation_volume_list):
        if entries is None:
            continue      # unset: every LV
        got = _list_matches(entries, vg, lv)
        if got is False:
            return False
        if got is None:
            answer = None
    return answer


def autoactivation(conf: NodeLVM, vg: VGMeta, own: Owner) -> Optional[bool]:
    """Whether this node's LVM would activate the VG by itself (vgchange
    -aay at boot): the VG is not foreign or exported, has no NOAUTOACTIVATE
    flag, and at least one of its visible LVs passes activation/volume_list
    and activation/auto_activation_volume_list (unset: all; set but empty:
    none) and has neither NOAUTOACTIVATE nor ACTIVATION_SKIP."""
    if EXPORTED_FLAG in vg.status:
        return False
    if vg.system_id:
        if own.this_node is None:
            return None
        if not own.this_node:
            return False      # a foreign VG is never autoactivated
    if NOAUTOACTIVATE in vg.flags or NOAUTOACTIVATE in vg.status:
        return False
    answers = [_lv_autoactivates(conf, vg, lv) for lv in vg.lvs]
    if any(a is True for a in answers):
        return True
    if any(a is None for a in answers):
        return None
    return False


def evaluate(conf: NodeLVM, vg: VGMeta, local: LocalSystemID,
             pv_devices: Mapping[str, Optional[str]],
             devices_file: Optional[DevicesFile] = None,
             devices_file_error: Optional[str] = None,
             filter_verdicts: Optional[Mapping[str, Verdict]] = None,
             names: Optional[Mapping[str, Tuple[str, ...]]] = None) -> Readiness:
    """The readiness of `vg` (the newest on-disk copy) on this node.
    pv_devices: PV uuid -> the device vgdrift found it on (None: not found).
    devices_file: as read (None with devices_file_error when it exists but
    could not be read).  filter_verdicts: device -> filters.Verdict.
    names: device -> its /dev names, for spotting stale devices-file
    entries."""
    blockers = []
    warnings = []
    unknown = []
    names = names or {}
    filter_verdicts = filter_verdicts or {}

    # --- devices file, else filters
    if devices_file is None and devices_file_error:
        using: Optional[bool] = None if conf.use_devicesfile is not False else False
        if using is None:
            unknown.append(f"devices file: {devices_file_error}")
    else:
        using = in_use(conf.use_devicesfile, devices_file)
        if using is None:
            unknown.append(f"devices file {conf.devices_file} exists, but whether LVM uses it "
                           f"(devices/use_devicesfile) is unknown")
    if using and devices_file is not None:
        if devices_file.system_id and local.value is not None and devices_file.system_id != local.value:
            # LVM warns and still uses it: most often a file copied from
            # another node, whose device IDs may not be this node's.
            warnings.append(Note(f"devices file {devices_file.path} was written by system ID "
                                 f"{devices_file.system_id}, this node's is "
                                 f"{local.value or 'none'}"))
        for pv in vg.pvs:
            dev = pv_devices.get(pv.id)
            if not devices_file.listed(pv.id):
                where = dev or "a device vgdrift did not find"
                blockers.append(Blocker(
                    BlockReason.DEVICES_FILE, pv.id, dev,
                    f"PV {pv.id} ({where}) is not listed in the devices file "
                    f"{devices_file.path}: this node's LVM ignores it",
                    adddev_command(dev) if dev else None))
            elif dev:
                # The device's other /dev names (a walk of /dev) only when
                # the entry's DEVNAME is not the path vgdrift found it at.
                st = stale(devices_file, pv.id, dev)
                if st is not None:
                    st = stale(devices_file, pv.id, dev, names.get(dev, ()))
                if st is not None:
                    warnings.append(Note(st.message, STALE_ACTION))
    elif using is False:
        for pv in vg.pvs:
            dev = pv_devices.get(pv.id)
            if not dev:
                continue      # not found: the VG is partial, not blocked
            v = filter_verdicts.get(dev)
            if v is None:
                unknown.append(f"{dev}: no filter verdict")
            elif v.accepted is None:
                unknown.append(v.message)
            elif not v.accepted:
                blockers.append(Blocker(
                    BlockReason.FILTER, pv.id, dev,
                    f"PV {pv.id} on {dev}: every name of the device is rejected by "
                    f"{v.key} pattern {v.pattern}: this node's LVM ignores it"))

    # --- ownership
    own = owner(vg, local, conf.extra_system_ids)
    if vg.system_id and local.value == "":
        blockers.append(Blocker(
            BlockReason.SYSTEM_ID, None, None,
            f"VG {vg.name} has system ID {vg.system_id} and this node has none "
            f"(system_id_source {local.source}): it cannot take the VG over; "
            f"set global/system_id_source"))
    elif vg.system_id and local.value is None:
        unknown.append(f"VG {vg.name} has system ID {vg.system_id}; this node's is unknown "
                       f"(system_id_source {local.source})")

    # --- exported
    if EXPORTED_FLAG in vg.status:
        blockers.append(Blocker(
            BlockReason.EXPORTED, None, None,
            f"VG {vg.name} is exported (vgexport): whoever exported it runs "
            f"vgimport {shlex.quote(vg.name)}; a refresh alone does not clear it"))

    auto = autoactivation(conf, vg, own)
    if auto:
        warnings.append(Note(
            f"VG {vg.name}: this node's LVM would activate it by itself at boot "
            f"(autoactivation); on a shared VG that means two active nodes; run on the "
            f"node that owns it", f"vgchange --setautoactivation n {shlex.quote(vg.name)}"))
    order = {r: i for i, r in enumerate(BlockReason)}
    blockers.sort(key=lambda b: order[b.reason])    # stable: PV order kept within a reason
    return Readiness(tuple(blockers), own, auto, tuple(warnings), tuple(unknown))


class NodeContext(NamedTuple):
    """What this node's LVM configuration says, read once per check by
    scan.py (node/ modules do the reading): the input of evaluate() for
    every VG of the check."""
    conf: NodeLVM
    local: LocalSystemID
    devices_file: Optional[DevicesFile] = None
    devices_file_error: Optional[str] = None
    filter_verdicts: Optional[Mapping[str, Verdict]] = None
    names: Optional[Mapping[str, Tuple[str, ...]]] = None

    def evaluate(self, vg: VGMeta, pv_devices: Mapping[str, Optional[str]]) -> Readiness:
        return evaluate(self.conf, vg, self.local, pv_devices, self.devices_file,
                        self.devices_file_error, self.filter_verdicts, self.names)

    @property
    def devices_file_in_use(self) -> Optional[bool]:
        if self.devices_file is None:
            return None if self.devices_file_error and self.conf.use_devicesfile is not False else False
        return in_use(self.conf.use_devicesfile, self.devices_file)

