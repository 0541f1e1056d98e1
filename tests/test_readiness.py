"""verdict/readiness.py: blockers, ownership and autoactivation from the
node's configuration and the newest on-disk copy (pure; the lab checks the
same rules against real LVM in tests/test_lab_node.py)."""

from pathlib import Path

import pytest

from vgdrift.node import devicesfile as dfm
from vgdrift.node import filters, lvmconf
from vgdrift.node.systemid import LocalSystemID
from vgdrift.textmeta import parse_vg
from vgdrift.verdict import readiness as r
from vgdrift.verdict.readiness import BlockReason

FIX = Path(__file__).resolve().parent / "fixtures"
# A real VG written by LVM: 2 PVs, LVs lv0 and lv1.
VG = parse_vg((FIX / "drift/cache_a/vg0").read_bytes(), "drift/cache_a/vg0")
PV0, PV1 = (pv.id for pv in VG.pvs)
DEVS = {PV0: "/dev/sdb", PV1: "/dev/sdc"}
NO_ID = LocalSystemID("none", "")
ALL = lvmconf.FILTER_DEFAULT


def conf(text="", use_devicesfile=0):
    tree, _ = lvmconf.parse_config(text, "lvm.conf")
    return lvmconf.build("/etc/lvm", [("lvm.conf", tree)],
                         defaults=lambda keys: ({"devices/use_devicesfile": use_devicesfile}, None))


def devfile(*pvs, devnames=None):
    lines = ["VERSION=1.1.3"]
    for pv in pvs:
        dev = (devnames or {}).get(pv, DEVS.get(pv, "/dev/x"))
        lines.append(f"IDTYPE=devname IDNAME={dev} DEVNAME={dev} PVID={pv.replace('-', '')}")
    return dfm.parse(("\n".join(lines) + "\n").encode(), "/etc/lvm/devices/system.devices")


def accept_all(devs=DEVS):
    return filters.verdicts([d for d in devs.values() if d], ALL, ALL, filters.AliasIndex({}))


def evaluate(c, vg=VG, local=NO_ID, devs=DEVS, **kw):
    kw.setdefault("filter_verdicts", accept_all(devs))
    return r.evaluate(c, vg, local, devs, **kw)


def test_reasons_are_the_issue_s():
    assert r.BLOCK_REASONS == ("devices_file", "filter", "system_id", "exported")
    assert BlockReason("filter") is BlockReason.FILTER and BlockReason.FILTER == "filter"


def test_ready():
    got = evaluate(conf())
    assert got.blockers == () and got.reason is None and got.unknown == ()


# ------------------------------------------------------------ devices file

def test_pv_not_in_the_devices_file_blocks_with_adddev():
    got = evaluate(conf("devices { use_devicesfile = 1 }"), devices_file=devfile(PV0))
    (b,) = got.blockers
    assert (b.reason, b.pv, b.device) == (BlockReason.DEVICES_FILE, PV1, "/dev/sdc")
    assert b.action == "lvm lvmdevices --adddev /dev/sdc"
    assert got.reason is BlockReason.DEVICES_FILE


def test_adddev_device_is_shell_quoted():
    devs = {PV0: "/dev/sdb", PV1: "/dev/disk/by-id/a b;rm"}
    got = evaluate(conf("devices { use_devicesfile = 1 }"), devs=devs, devices_file=devfile(PV0))
    assert got.blockers[0].action == "lvm lvmdevices --adddev '/dev/disk/by-id/a b;rm'"


def test_empty_devices_file_hides_every_pv():
    got = evaluate(conf("devices { use_devicesfile = 1 }"), devices_file=devfile())
    assert [b.pv for b in got.blockers] == [PV0, PV1]
    assert all(b.reason is BlockReason.DEVICES_FILE for b in got.blockers)


def test_unlisted_pv_not_found_gets_no_command():
    got = evaluate(conf("devices { use_devicesfile = 1 }"), devs={PV0: "/dev/sdb", PV1: None},
                   devices_file=devfile(PV0))
    (b,) = got.blockers
    assert b.device is None and b.action is None


@pytest.mark.parametrize("text,df_exists", [
    ("devices { use_devicesfile = 0 }", True),      # file there, but not used
    ("devices { use_devicesfile = 1 }", False),     # used, but no file: the filters apply
])
def test_no_adddev_when_the_devices_file_is_not_in_use(text, df_exists):
    df = devfile(PV0) if df_exists else dfm.DevicesFile("/etc/lvm/devices/system.devices", False)
    got = evaluate(conf(text), devices_file=df)
    assert got.blockers == ()
    reject = filters.verdicts(DEVS.values(), ALL, ["r|sdc|"], filters.AliasIndex({}))
    got = evaluate(conf(text), devices_file=df, filter_verdicts=reject)
    assert [b.reason for b in got.blockers] == [BlockReason.FILTER]
    assert all(b.action is None or "adddev" not in b.action for b in got.blockers)
    assert all("adddev" not in (n.action or "") for n in got.warnings)


def test_devices_file_in_use_ignores_filters():
    reject = filters.verdicts(DEVS.values(), ["r|.*|"], ALL, filters.AliasIndex({}))
    got = evaluate(conf("devices { use_devicesfile = 1 }"), devices_file=devfile(PV0, PV1),
                   filter_verdicts=reject)
    assert got.blockers == ()


def test_unknown_use_devicesfile_with_a_file_is_unknown_not_a_verdict():
    c = conf()._replace(use_devicesfile=None)
    got = evaluate(c, devices_file=devfile())
    assert got.blockers == () and got.unknown
    # With no file the answer does not depend on it: the filters apply.
    got = evaluate(c, devices_file=dfm.DevicesFile("/x", False))
    assert got.unknown == ()


def test_unreadable_devices_file_is_unknown_when_it_may_be_in_use():
    got = evaluate(conf("devices { use_devicesfile = 1 }"), devices_file=None,
                   devices_file_error="/etc/lvm/devices/system.devices: cannot read: Permission denied")
    assert got.blockers == () and "Permission denied" in got.unknown[0]
    got = evaluate(conf(), devices_file=None, devices_file_error="whatever")
    assert got.unknown == ()                           # not used anyway


def test_stale_entry_is_a_warning():
    df = devfile(PV0, PV1, devnames={PV1: "/dev/sdz"})
    got = evaluate(conf("devices { use_devicesfile = 1 }"), devices_file=df)
    assert got.blockers == ()
    (w,) = [w for w in got.warnings if "stale" in w.message]
    assert w.action == "lvm lvmdevices --update" and "/dev/sdz" in w.message
    # DEVNAME is another name of the same device: not stale.
    got = evaluate(conf("devices { use_devicesfile = 1 }"), devices_file=df,
                   names={"/dev/sdc": ("/dev/sdc", "/dev/sdz")})
    assert not [w for w in got.warnings if "stale" in w.message]


# ------------------------------------------------------------ filters

def test_filter_rejection_names_device_and_pattern():
    reject = filters.verdicts(DEVS.values(), ["a|sdb|", "r|sdc|"], ALL, filters.AliasIndex({}))
    got = evaluate(conf(), filter_verdicts=reject)
    (b,) = got.blockers
    assert (b.reason, b.pv, b.device, b.action) == (BlockReason.FILTER, PV1, "/dev/sdc", None)
    assert "devices/global_filter pattern r|sdc|" in b.message


def test_filter_unknown_is_unknown():
    bad = filters.verdicts(DEVS.values(), ALL, ["r|a||b|"], filters.AliasIndex({}))
    got = evaluate(conf(), filter_verdicts=bad)
    assert got.blockers == () and len(got.unknown) == 2
    got = evaluate(conf(), filter_verdicts={})
    assert got.blockers == () and len(got.unknown) == 2


def test_pv_not_found_is_not_a_filter_blocker():
    got = evaluate(conf(), devs={PV0: "/dev/sdb", PV1: None}, filter_verdicts={})
    assert got.blockers == () and len(got.unknown) == 1


# ------------------------------------------------------------ system ID

def foreign(vg=VG, sid="node_a"):
    return vg._replace(system_id=sid)


def test_foreign_vg_and_no_local_id_blocks():
    got = evaluate(conf(), vg=foreign(), local=NO_ID)
    (b,) = got.blockers
    assert b.reason is BlockReason.SYSTEM_ID and b.action is None and "system_id_source" in b.message
    assert got.owner == r.Owner("node_a", "", False)
    assert got.autoactivation is False


def test_foreign_vg_with_a_local_id_is_not_blocked():
    got = evaluate(conf(), vg=foreign(), local=LocalSystemID("lvmlocal", "node_b"))
    assert got.blockers == ()
    assert got.owner == r.Owner("node_a", "node_b", False)
    assert got.autoactivation is False                   # foreign: never


def test_own_vg():
    got = evaluate(conf(), vg=foreign(sid="node_b"), local=LocalSystemID("uname", "node_b"))
    assert got.owner.this_node is True and got.autoactivation is True


def test_extra_system_ids_make_it_ours_only_with_a_local_id():
    c = conf('local { extra_system_ids = [ "node_a" ] }')
    assert evaluate(c, vg=foreign(), local=LocalSystemID("uname", "node_b")).owner.this_node is True
    got = evaluate(c, vg=foreign(), local=NO_ID)
    assert got.owner.this_node is False and got.blockers[0].reason is BlockReason.SYSTEM_ID


def test_unknown_local_id():
    got = evaluate(conf(), vg=foreign(), local=LocalSystemID("appmachineid", None))
    assert got.blockers == () and got.unknown
    assert got.owner == r.Owner("node_a", None, None)
    assert got.autoactivation is None
    # A VG without a system ID is usable whatever the local one is.
    got = evaluate(conf(), local=LocalSystemID("appmachineid", None))
    assert got.unknown == () and got.owner.this_node is None and got.autoactivation is True


# ------------------------------------------------------------ exported

def test_exported_blocks_and_never_autoactivates():
    vg = VG._replace(status=VG.status + ("EXPORTED",))
    got = evaluate(conf(), vg=vg)
    (b,) = got.blockers
    assert b.reason is BlockReason.EXPORTED and "vgimport vg0" in b.message and b.action is None
    assert got.autoactivation is False


def test_blockers_in_reason_order():
    vg = foreign()._replace(status=VG.status + ("EXPORTED",))
    got = evaluate(conf("devices { use_devicesfile = 1 }"), vg=vg, devices_file=devfile())
    assert [b.reason.value for b in got.blockers] == ["devices_file", "devices_file", "system_id", "exported"]
    assert got.reason is BlockReason.DEVICES_FILE


# ------------------------------------------------------------ autoactivation

def lv(vg, name):
    (x,) = [x for x in vg.lvs if x.name == name]
    return x


def with_lvs(vg, **changes):
    return vg._replace(lvs=tuple(x._replace(**changes.get(x.name, {})) for x in vg.lvs))


def test_autoactivation_on_adds_a_warning_with_the_action():
    got = evaluate(conf())
    assert got.autoactivation is True
    (w,) = [w for w in got.warnings if "autoactivation" in w.message]
    assert w.action == "vgchange --setautoactivation n vg0"


@pytest.mark.parametrize("text,want", [
    ("", True),
    ("activation { auto_activation_volume_list = [ ] }", False),        # set but empty: nothing
    ('activation { auto_activation_volume_list = [ "vg0" ] }', True),
    ('activation { auto_activation_volume_list = [ "vg0/lv1" ] }', True),
    ('activation { auto_activation_volume_list = [ "vg0/nope" ] }', False),
    ('activation { auto_activation_volume_list = [ "vg" ] }', False),      # no prefix match
    ('activation { auto_activation_volume_list = [ "vg00" ] }', False),
    ('activation { auto_activation_volume_list = [ "other", "@ha" ] }', False),
    ('activation { auto_activation_volume_list = [ 1, "", "@" ] }', False),  # ignored entries
    ('activation { volume_list = [ "other" ] }', False),                 # volume_list gates -aay too
    ('activation { volume_list = [ "vg0" ] auto_activation_volume_list = [ "vg0/lv0" ] }', True),
])
def test_auto_activation_volume_list(text, want):
    got = evaluate(conf(text))
    assert got.autoactivation is want
    assert bool([w for w in got.warnings if "autoactivation" in w.message]) is want


def test_tags():
    tagged = VG._replace(tags=("ha",))
    c = conf('activation { auto_activation_volume_list = [ "@ha" ] }')
    assert evaluate(c, vg=tagged).autoactivation is True
    lv_tagged = with_lvs(VG, lv1={"tags": ("ha",)})
    assert evaluate(c, vg=lv_tagged).autoactivation is True
    assert evaluate(c).autoactivation is False
    star = conf('activation { auto_activation_volume_list = [ "@*" ] }')
    assert evaluate(star, vg=tagged).autoactivation is None              # host tags: unknown
    assert evaluate(star).autoactivation is False                        # no tags: cannot match


def test_noautoactivate_flags():
    assert evaluate(conf(), vg=VG._replace(flags=("NOAUTOACTIVATE",))).autoactivation is False
    one = with_lvs(VG, lv0={"flags": ("NOAUTOACTIVATE",)})
    assert evaluate(conf(), vg=one).autoactivation is True               # lv1 still would
    both = with_lvs(VG, lv0={"flags": ("NOAUTOACTIVATE",)}, lv1={"flags": ("NOAUTOACTIVATE",)})
    assert evaluate(conf(), vg=both).autoactivation is False
    hidden = with_lvs(VG, lv0={"status": ("READ", "WRITE")}, lv1={"status": ("READ", "WRITE")})
    assert evaluate(conf(), vg=hidden).autoactivation is False
    assert evaluate(conf(), vg=VG._replace(lvs=())).autoactivation is False


def test_readiness_is_picklable():
    import pickle
    got = evaluate(conf("devices { use_devicesfile = 1 }"), vg=foreign(), devices_file=devfile(PV0))
    assert pickle.loads(pickle.dumps(got)) == got


def test_devices_file_of_another_system_id_is_a_warning():
    df = dfm.parse(b"SYSTEMID=node_a\nVERSION=1.1.1\n", "/etc/lvm/devices/system.devices")
    df = df._replace(entries=devfile(PV0, PV1).entries)
    got = evaluate(conf("devices { use_devicesfile = 1 }"), devices_file=df,
                   local=LocalSystemID("uname", "node_b"))
    assert got.blockers == ()
    (w,) = got.warnings[:1]
    assert "system ID node_a" in w.message and "node_b" in w.message and w.action is None
    got = evaluate(conf("devices { use_devicesfile = 1 }"), devices_file=df,
                   local=LocalSystemID("lvmlocal", "node_a"))
    assert not [w for w in got.warnings if "written by" in w.message]
