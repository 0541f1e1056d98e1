"""Synthetic CheckResults for the exporter tests: one VG in every state,
with fixed times so that renderings are deterministic."""

from vgdrift import model

T0 = 1700000000          # cached metadata time
STARTED = 1700000600.0   # scan start


def vg_report(state: str, name: str = "", duration: float = 0.004) -> model.VGReport:
    name = name or "vg_" + state
    cache = model.CacheInfo(path="/etc/lvm/backup/" + name, seqno=10, mtime=T0,
                            host="nodeb", description="Created *after* executing 'lvcreate'")
    # No disk side for the states where the VG was not found or not read.
    no_disk = state in (model.MISSING, model.UNREADABLE, model.UNKNOWN)
    seqno = {model.DRIFT: 12, model.CACHE_AHEAD: 8, model.CONFLICT: 10}.get(state, 10)
    mtime = {model.DRIFT: T0 + 300, model.CACHE_AHEAD: T0 - 60,
             model.CONFLICT: T0 + 5, model.UUID_MISMATCH: T0 + 7}.get(state, T0)
    disk = None if no_disk else model.DiskInfo(
        name=name, seqno=seqno, mtime=mtime, host="nodea",
        system_id="nodea" if state == model.CONFLICT else "",
        # The disk's VG id joins the VG across nodes; under uuid_mismatch it
        # is another VG than the cached one.
        uuid="UUID-recreated" if state == model.UUID_MISMATCH else "UUID-" + name)
    pv_states = {
        model.PARTIAL: (model.PV_OK, model.PV_MISSING),
        model.MISSING: (model.PV_MISSING, model.PV_MISSING),
        model.UNREADABLE: (model.PV_UNREADABLE,),
        model.INCONSISTENT: (model.PV_OK, model.PV_CORRUPT, model.PV_DUPLICATE),
        model.DRIFT: (model.PV_OK, model.PV_OK, model.PV_OUTDATED),
        model.UNKNOWN: (),       # the cached copy could not be read: no PV is known
    }.get(state, (model.PV_OK, model.PV_OK))
    pvs = tuple(model.PVReport(uuid="pv%d-%s" % (i, name),
                               device=None if s == model.PV_MISSING else "/dev/sd%s" % "abcdef"[i],
                               hint="/dev/sd%s" % "abcdef"[i], state=s,
                               seqno=None if s in (model.PV_MISSING, model.PV_UNREADABLE) else
                               seqno - 1 if s == model.PV_OUTDATED else seqno)
                for i, s in enumerate(pv_states))
    # Readiness: the blocked VG's first PV is missing from the devices file;
    # a drifted VG would be autoactivated; the conflict's VG is nodea's.
    blockers = (model.Blocker(str(model.BlockReason.DEVICES_FILE), pvs[0].uuid, pvs[0].device,
                              "not listed in the devices file"),) if state == model.BLOCKED else ()
    owner = None if disk is None else model.Owner(disk.system_id, "nodeb", disk.system_id == "nodeb")
    return model.VGReport(name=name, uuid="UUID-" + name, state=state, cache=cache, disk=disk,
                          pvs=pvs, reason=None if state == model.IN_SYNC else
                          str(model.BlockReason.DEVICES_FILE) if state == model.BLOCKED else "synthetic",
                          duration_seconds=duration, blockers=blockers, owner=owner,
                          autoactivation=None if disk is None else state == model.DRIFT)


def all_states_result(**overrides) -> model.CheckResult:
    fields = dict(
        host="nodeb", started=STARTED, duration_seconds=0.042,
        vgs=tuple(vg_report(s) for s in model.VG_STATES),
        errors=(model.ErrorItem(model.REASON_IO, "/dev/sdz", "read failed: EIO"),
                model.ErrorItem(model.REASON_TIMEOUT, "/dev/sdy", "no answer in 10s"),
                model.ErrorItem(model.REASON_IO, "/dev/sdx", "read failed: EIO")),
        reads=36, read_bytes=36 * 4096,
        lvm=model.NodeLVMInfo("/etc/lvm", True, "/etc/lvm/devices/system.devices", "lvmlocal", "nodeb"),
        # One VG on this node's disks that no cache file describes (issue 11).
        unknown_vgs=(model.UnknownVG("vg_new", "UUID-vg_new", 3, T0 + 900, "nodea", "",
                                     (model.UnknownPV("pv0-vg_new", "/dev/sdq"),),
                                     (model.Action("vgcfgbackup vg_new", "cache it"),)),),
        discovered=STARTED - 30)
    fields.update(overrides)
    return model.CheckResult(**fields)
