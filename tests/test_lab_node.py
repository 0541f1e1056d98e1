"""Readiness building blocks against real LVM2 in the two-node lab.

Node B's own LVM is the judge: `lvm systemid`, `lvm pvs --config
backup/backup=0` (what it sees, its backup untouched) and `vgchange -aay
-vv` ("Activating logical volume" exactly for what it would autoactivate),
all under B's LVM_SYSTEM_DIR.  B's extra configuration goes to its
lvmlocal.conf, which LVM reads over the lab's lvm.conf key by key.
"""

import os
import shlex
import subprocess

import pytest

from lab import (
    allow_autoactivation,
    devices_file,
    lvm_systemid,
    lvmdevices,
    make_vg,
    node_sees,
    pv_layout,
    read_mda_text,
    set_lvmlocal,
    would_autoactivate,
)
from vgdrift.node import devicesfile as dfm
from vgdrift.node import filters, lvmconf, systemid
from vgdrift.textmeta import parse_vg
from vgdrift.verdict import readiness
from vgdrift.verdict.readiness import BlockReason


def uuid_of(disk):
    return pv_layout(disk.image)["pv_uuid"]


def ondisk_vg(disk):
    """The newest on-disk copy, read straight from the image (not through
    the code under test)."""
    mda = pv_layout(disk.image)["mdas"][0]
    return parse_vg(read_mda_text(disk.image, mda).encode(), str(disk.image))


def node_conf(node):
    return lvmconf.read(str(node.system_dir))


def local_id(conf):
    return systemid.local_system_id(conf.system_id_source, conf.local_system_id,
                                    conf.system_id_file, conf.etc_dir)


def evaluate(lab, node, vg_disk):
    """Readiness of the VG on `vg_disk` as `node` would have it."""
    conf = node_conf(node)
    df = dfm.read(conf.devices_file)
    devs = {}
    for d in lab.disks:
        try:
            if d.on(node):
                devs[uuid_of(d)] = d.on(node)
        except ValueError:       # not a PV (yet)
            pass
    index = filters.AliasIndex.build()
    verdicts = filters.verdicts(devs.values(), conf.global_filter, conf.filter, index)
    names = {d: index.names(d) for d in devs.values()}
    return readiness.evaluate(conf, ondisk_vg(vg_disk), local_id(conf), devs, devices_file=df,
                              filter_verdicts=verdicts, names=names)


def run_action(node, command):
    """Run an action vgdrift printed, as `node` (it must be an `lvm ...`
    command: the lab runs LVM under the node's own LVM_SYSTEM_DIR)."""
    argv = shlex.split(command)
    assert argv[0] == "lvm", command
    return node.lvm(*argv[1:])


# ------------------------------------------------------------ system ID

SOURCES = [
    'global {\n system_id_source = "none"\n}\n',
    'global {\n system_id_source = "lvmlocal"\n}\nlocal {\n system_id = "  -Node B!x.y"\n}\n',
    'global {\n system_id_source = "none"\n}\nlocal {\n system_id = "unused"\n}\n',
    'global {\n system_id_source = "uname"\n}\n',
    'global {\n system_id_source = "UNAME"\n}\n',
    'global {\n system_id_source = "machineid"\n}\n',
    'global {\n system_id_source = "file"\n system_id_file = "{ID_FILE}"\n}\n',
    'global {\n system_id_source = "file"\n system_id_file = "{MISSING}"\n}\n',
    'global {\n system_id_source = "bogus"\n}\n',
    'global {\n system_id_source = "lvmlocal"\n}\nlocal {\n system_id = "localhost1"\n}\n',
]


@pytest.mark.parametrize("text", SOURCES)
def test_local_system_id_equals_lvm_systemid(lab, text):
    id_file = lab.workdir / "system_id"
    id_file.write_text("# comment\n\n  ;;; # nothing valid\n Node-7.x_y # trailing\nsecond\n")
    set_lvmlocal(lab.b, text.replace("{ID_FILE}", str(id_file))
                 .replace("{MISSING}", str(lab.workdir / "missing")))
    ours = local_id(node_conf(lab.b))
    assert ours.known
    assert ours.value == lvm_systemid(lab.b)


def test_uname_normalisation_equals_lvm(lab):
    # The lab cannot rename the host; the node name as LVM sees it is
    # normalised the same way either way.
    set_lvmlocal(lab.b, 'global {\n system_id_source = "uname"\n}\n')
    assert lvm_systemid(lab.b) == systemid.normalise(os.uname().nodename)


# ------------------------------------------------------------ lvmconfig

def test_build_default_of_use_devicesfile_equals_lvm(tmp_path):
    """With no setting, the value taken from lvmconfig is the one LVM uses:
    `lvmdevices` says "not enabled" exactly when it is 0."""
    (tmp_path / "lvm.conf").write_text("devices {\n}\n")
    conf = lvmconf.read(str(tmp_path))
    assert conf.source("devices/use_devicesfile") == "lvmconfig default"
    env = dict(os.environ, LVM_SYSTEM_DIR=str(tmp_path), LVM_SUPPRESS_FD_WARNINGS="1", LC_ALL="C")
    r = subprocess.run(["lvm", "lvmdevices"], env=env, capture_output=True, text=True, timeout=60)
    assert ("Devices file not enabled" in r.stdout + r.stderr) is (conf.use_devicesfile is False)


# ------------------------------------------------------------ devices file

def enable_devices_file(node, extra=""):
    set_lvmlocal(node, "devices {\n    use_devicesfile = 1\n}\n" + extra)


def test_devices_file_blocks_a_new_pv_until_adddev(lab):
    d1, d2 = lab.add_disk("d1"), lab.add_disk("d2")
    make_vg(lab, "vg1", [d1])
    enable_devices_file(lab.b)
    lvmdevices(lab.b, "--adddev", d1.b)
    assert evaluate(lab, lab.b, d1).blockers == ()
    lab.a.lvm("vgextend", "vg1", d2.a)
    got = evaluate(lab, lab.b, d1)
    (b,) = got.blockers
    assert (b.reason, b.pv, b.device) == (BlockReason.DEVICES_FILE, uuid_of(d2), d2.b)
    assert b.action == f"lvm lvmdevices --adddev {d2.b}"
    # B's own LVM agrees: the new PV is unknown to it.
    seen = node_sees(lab.b)
    assert seen.get(uuid_of(d1), {}).get("device") == d1.b
    assert uuid_of(d2) not in seen

    run_action(lab.b, b.action)
    got = evaluate(lab, lab.b, d1)
    assert got.blockers == () and got.unknown == ()
    assert node_sees(lab.b)[uuid_of(d2)]["device"] == d2.b


def test_stale_devname_until_update(lab):
    d1 = lab.add_disk("d1")
    make_vg(lab, "vg1", [d1])
    enable_devices_file(lab.b)
    lvmdevices(lab.b, "--adddev", d1.b)
    # Node A's loop has the same backing file, which is the loop's device
    # ID: LVM on B would take it for the PV.  Real hosts have no such twin.
    lab.detach(d1, "a")
    old = d1.b
    lab.move(d1, "b")                    # same image, another loop name on B
    got = evaluate(lab, lab.b, d1)
    assert got.blockers == ()            # listed by PVID; LVM finds it by its loop file
    assert uuid_of(d1) in node_sees(lab.b)
    (w,) = [w for w in got.warnings if "stale" in w.message]
    assert old in w.message and d1.b in w.message
    run_action(lab.b, w.action)
    assert not [w for w in evaluate(lab, lab.b, d1).warnings if "stale" in w.message]
    assert dfm.read(str(devices_file(lab.b))).entry(uuid_of(d1)).devname == d1.b


def test_devices_file_without_entries_hides_every_pv(lab):
    d1, d2 = lab.add_disk("d1"), lab.add_disk("d2")
    make_vg(lab, "vg1", [d1, d2])
    enable_devices_file(lab.b)
    lvmdevices(lab.b, "--adddev", d1.b)
    lvmdevices(lab.b, "--deldev", d1.b)
    assert dfm.read(str(devices_file(lab.b))).entries == ()
    got = evaluate(lab, lab.b, d1)
    assert sorted(b.pv for b in got.blockers) == sorted([uuid_of(d1), uuid_of(d2)])
    assert node_sees(lab.b) == {}


def test_enabled_but_absent_devices_file_falls_back_to_filters(lab):
    d1, d2 = lab.add_disk("d1"), lab.add_disk("d2")
    make_vg(lab, "vg1", [d1, d2])
    enable_devices_file(lab.b, 'devices {\n    filter = [ "a|^%s$|", "r|.*|" ]\n}\n' % d1.b)
    assert not devices_file(lab.b).exists()
    got = evaluate(lab, lab.b, d1)
    (b,) = got.blockers
    assert (b.reason, b.device, b.action) == (BlockReason.FILTER, d2.b, None)
    assert set(node_sees(lab.b)) == {uuid_of(d1)}


# ------------------------------------------------------------ filters

FILTER_CASES = [
    ('filter = [ "r|^{Y}$|" ]', ()),
    ('filter = [ "a|^{X}$|", "r|.*|" ]', ()),
    ('filter = [ "r|{y}.|" ]', ()),                     # '.' matches the end marker
    ('filter = [ "r|{y}[^0-9]|" ]', ()),                # so does a negated set
    ('filter = [ "r|{y}\\\\.|" ]', ("d2",)),            # an escaped '.' does not
    ('filter = [ "r{^/dev/loop({ny}|999)$}" ]', ()),
    ('filter = [ "a|/dev/lo+p{nx}$|", "r|.*|" ]', ()),
    ('global_filter = [ "r|^{X}$|" ]\n filter = [ "a|^{X}$|", "a|^{Y}$|", "r|.*|" ]', ()),
    ('filter = [ "r|^/dev/loop[0-9]+$|" ]', ()),
    ('filter = [ "a|x{2}|", "r|^{Y}$|" ]', ()),          # braces are literal, not a count
]


@pytest.mark.parametrize("case,accepted_extra", FILTER_CASES)
def test_filter_verdicts_equal_what_lvm_sees(lab, case, accepted_extra):
    d1, d2 = lab.add_disk("d1"), lab.add_disk("d2")
    make_vg(lab, "vg1", [d1, d2])
    x, y = d1.b, d2.b
    text = (case.replace("{X}", x).replace("{Y}", y).replace("{y}", y.rsplit("/", 1)[1])
            .replace("{nx}", x.rsplit("loop", 1)[1]).replace("{ny}", y.rsplit("loop", 1)[1]))
    # Node A's loops share the images: reject them first (by their exact
    # names) so that B sees each PV through its own loop only.
    a_only = ", ".join(f'"r|^{d.a}$|"' for d in lab.disks)
    if "global_filter" not in text:
        text += f"\n global_filter = [ {a_only}, \"a|.*|\" ]"
    else:
        text = text.replace('global_filter = [ ', f"global_filter = [ {a_only}, ")
    set_lvmlocal(lab.b, "devices {\n " + text + "\n}\n")
    conf = node_conf(lab.b)
    verdicts = filters.verdicts([x, y], conf.global_filter, conf.filter)
    assert all(v.accepted is not None for v in verdicts.values()), verdicts
    seen = node_sees(lab.b)
    for disk in (d1, d2):
        assert verdicts[disk.b].accepted is (uuid_of(disk) in seen), (text, verdicts[disk.b], seen)
    if accepted_extra:
        assert all(verdicts[d.b].accepted for d in (d1, d2))
    got = evaluate(lab, lab.b, d1)
    rejected = [d.b for d in (d1, d2) if not verdicts[d.b].accepted]
    assert [b.device for b in got.blockers] == rejected
    assert all(b.reason is BlockReason.FILTER and b.action is None for b in got.blockers)


# ------------------------------------------------------------ system ID ownership

def test_system_id_ownership_and_takeover(lab):
    d1 = lab.add_disk("d1")
    allow_autoactivation(lab.a)
    set_lvmlocal(lab.a, 'global {\n system_id_source = "lvmlocal"\n}\nlocal {\n system_id = "node_a"\n}\n')
    make_vg(lab, "vg1", [d1])
    vg = ondisk_vg(d1)
    assert vg.system_id == "node_a"

    set_lvmlocal(lab.b, 'global {\n system_id_source = "lvmlocal"\n}\nlocal {\n system_id = "node_b"\n}\n')
    got = evaluate(lab, lab.b, d1)
    assert got.blockers == ()
    assert got.owner == readiness.Owner("node_a", "node_b", False)
    assert got.autoactivation is False and would_autoactivate(lab.b, "vg1") == []

    got_a = evaluate(lab, lab.a, d1)
    assert got_a.owner.this_node is True
    assert got_a.autoactivation is True and would_autoactivate(lab.a, "vg1") == ["vg1/lv1"]

    set_lvmlocal(lab.b, 'global {\n system_id_source = "none"\n}\n')
    got = evaluate(lab, lab.b, d1)
    assert [b.reason for b in got.blockers] == [BlockReason.SYSTEM_ID]
    r = lab.b.lvm("vgchange", "-ay", "--config", "backup/backup=0", "vg1", check=False)
    assert r.returncode != 0                          # B's LVM cannot take it


# ------------------------------------------------------------ vgexport

def test_exported_vg_is_blocked(lab):
    d1 = lab.add_disk("d1")
    make_vg(lab, "vg1", [d1])
    lab.a.lvm("vgexport", "vg1")
    vg = ondisk_vg(d1)
    assert "EXPORTED" in vg.status and vg.system_id == ""
    got = evaluate(lab, lab.b, d1)
    assert [b.reason for b in got.blockers] == [BlockReason.EXPORTED]
    assert got.autoactivation is False and would_autoactivate(lab.b, "vg1") == []
    r = lab.b.lvm("vgchange", "-ay", "--config", "backup/backup=0", "vg1", check=False)
    assert r.returncode != 0


# ------------------------------------------------------------ autoactivation

@pytest.mark.parametrize("local,a_cmds", [
    ("", []),
    ("activation {\n auto_activation_volume_list = [ ]\n}\n", []),
    ('activation {\n auto_activation_volume_list = [ "vg1/lv2" ]\n}\n', []),
    ('activation {\n auto_activation_volume_list = [ "vg1/nope", "other" ]\n}\n', []),
    ('activation {\n auto_activation_volume_list = [ "@ha" ]\n}\n', [("vgchange", "--addtag", "ha", "vg1")]),
    ('activation {\n auto_activation_volume_list = [ "@ha" ]\n}\n', [("lvchange", "--addtag", "ha", "vg1/lv1")]),
    ("", [("vgchange", "--setautoactivation", "n", "vg1")]),
    ("", [("lvchange", "--setautoactivation", "n", "vg1/lv1")]),
    ("", [("lvchange", "--setautoactivation", "n", "vg1/lv1"),
          ("lvchange", "--setautoactivation", "n", "vg1/lv2")]),
])
def test_autoactivation_equals_lvm(lab, local, a_cmds):
    # activation/volume_list is not among the cases: LVM checks it only
    # once device-mapper is in use (activate.c, _lv_activate), so this
    # ground truth cannot show it; test_readiness covers it.
    d1 = lab.add_disk("d1")
    allow_autoactivation(lab.b)
    make_vg(lab, "vg1", [d1], lvs=("lv1", "lv2"))
    for cmd in a_cmds:
        lab.a.lvm(*cmd)
    set_lvmlocal(lab.b, local)
    got = evaluate(lab, lab.b, d1)
    truth = would_autoactivate(lab.b, "vg1")
    assert got.autoactivation is bool(truth), (local, a_cmds, truth)


def test_filters_lvm_refuses_are_unknown(lab):
    d1 = lab.add_disk("d1")
    make_vg(lab, "vg1", [d1])
    for text in ('filter = [ ]', 'filter = [ "a|.*|", 5 ]'):
        set_lvmlocal(lab.b, "devices {\n " + text + "\n}\n")
        conf = node_conf(lab.b)
        v = filters.verdicts([d1.b], conf.global_filter, conf.filter)[d1.b]
        assert v.accepted is None and v.warning, text
        r = lab.b.lvm("pvs", "--config", "backup/backup=0", allow_report=True, check=False)
        assert r.returncode != 0 and "Filter patterns must be enclosed in quotes" in r.stderr, text
        got = evaluate(lab, lab.b, d1)
        assert got.blockers == () and got.unknown, text


def test_filter_given_as_one_string(lab):
    d1 = lab.add_disk("d1")
    make_vg(lab, "vg1", [d1])
    set_lvmlocal(lab.b, 'devices {\n filter = "r|.*|"\n}\n')
    conf = node_conf(lab.b)
    assert filters.verdicts([d1.b], conf.global_filter, conf.filter)[d1.b].accepted is False
    assert node_sees(lab.b) == {}
