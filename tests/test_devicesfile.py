"""node/devicesfile.py: LVM's devices file, read as LVM 2.03.16 reads it.

The *.devices fixtures were written by `lvm lvmdevices --adddev/--deldev`
on the lab's loop devices (tests/fixtures/node/make_node_fixtures.py);
manifest.json says which PVs each lists."""

import json
import os
import pickle
from pathlib import Path

import pytest

from vgdrift.node import devicesfile as dfm
from vgdrift.node.devicesfile import DevicesFileError

NODE = Path(__file__).resolve().parent / "fixtures" / "node"
MANIFEST = json.loads((NODE / "manifest.json").read_text())["devices"]


def fixture(name):
    return dfm.read(str(NODE / "devices" / name))


@pytest.mark.parametrize("name", sorted(MANIFEST))
def test_real_files_list_exactly_the_pvs_lvm_added(name):
    df = fixture(name)
    want = MANIFEST[name]
    assert df.exists and not df.warnings
    assert len(df.entries) == len(want["listed"])
    for disk in want["listed"].values():
        assert df.listed(disk["pv"])
        e = df.entry(disk["pv"])
        assert e.pvid == disk["pv"].replace("-", "")      # LVM writes it without dashes
        assert e.idtype == "loop_file" and e.idname == disk["idname"]
        assert e.devname == disk["devname"] and e.part == 0
        assert df.listed(disk["pv"].replace("-", ""))
    for pv in want["not_listed"].values():
        assert not df.listed(pv)
    assert df.version.startswith("1.1.")


def test_systemid_header():
    assert fixture("systemid.devices").system_id == "node_b"
    assert fixture("two.devices").system_id == ""


def test_file_with_no_entries_exists_and_lists_nothing():
    df = fixture("empty.devices")
    assert df.exists and df.entries == ()
    assert dfm.in_use(True, df) is True          # in use: it hides every device
    assert not any(df.listed(pv) for pv in MANIFEST["empty.devices"]["not_listed"].values())


@pytest.mark.parametrize("use,exists,want", [
    (True, True, True), (True, False, False), (False, True, False), (False, False, False),
    (None, True, None), (None, False, False),
])
def test_in_use_needs_the_setting_and_the_file(tmp_path, use, exists, want):
    path = tmp_path / "system.devices"
    if exists:
        path.write_text("VERSION=1.1.1\n")
    assert dfm.in_use(use, dfm.read(str(path))) is want


def test_missing_file():
    df = dfm.read("/nonexistent/devices/system.devices")
    assert not df.exists and df.entries == ()


def test_lvm_parsing_quirks():
    data = (b"# comment IDTYPE=x IDNAME=y PVID=zzz\n"
            b"HOSTNAME=node-b\n"
            b"PRODUCT_UUID=abc\n"
            b"HASH=123\n"
            b"VERSION=1.1.7\n"
            b"\n"
            b"IDTYPE=sys_wwid IDNAME=naa.600 DEVNAME=/dev/sdb PVID=Aaaa PART=2\n"
            b"IDTYPE=devname IDNAME=. DEVNAME=. PVID=.\n"
            b"IDTYPE=md_uuid IDNAME=m1\n"
            b"  IDNAME=only-name\n"
            b"garbage line\n")
    df = dfm.parse(data, "sd")
    assert df.header == (("HOSTNAME", "node-b"), ("PRODUCT_UUID", "abc"), ("HASH", "123"),
                         ("VERSION", "1.1.7"))
    a, b, c = df.entries
    assert (a.line, a.idtype, a.idname, a.devname, a.pvid, a.part) == (7, "sys_wwid", "naa.600", "/dev/sdb", "Aaaa", 2)
    assert (b.idname, b.devname, b.pvid) == ("", "", "")            # "." means none
    assert (c.devname, c.pvid) == ("", "")
    assert df.listed("Aaaa") and not df.listed("")
    # LVM ignores lines without IDTYPE= and IDNAME=; vgdrift says so, by line.
    assert df.warnings == ("sd:10: not a device entry (no IDTYPE= and IDNAME=); LVM ignores it",
                           "sd:11: not a device entry (no IDTYPE= and IDNAME=); LVM ignores it")


def test_crlf_values_keep_the_cr_as_in_lvm():
    # LVM cuts a value at a blank or newline only: "PVID=x\r" is "x\r" and
    # matches no PV, for LVM and for vgdrift.
    df = dfm.parse(b"IDTYPE=devname IDNAME=/dev/sdb DEVNAME=/dev/sdb PVID=abc\r\n", "crlf")
    assert not df.listed("abc")


@pytest.mark.parametrize("data,where", [
    (b"VERSION=1.1.1\nIDTYPE=a IDNAME=b\0\n", "f:2: NUL byte"),
    (b"VERSION=1.1.1\n" + b"IDTYPE=a IDNAME=" + b"x" * 5000 + b"\n", "f:2: line longer"),
])
def test_bad_lines_are_one_line_errors(tmp_path, data, where):
    path = tmp_path / "f"
    path.write_bytes(data)
    with pytest.raises(DevicesFileError) as e:
        dfm.read(str(path))
    assert str(e.value).startswith(f"{tmp_path}/{where}") and "\n" not in str(e.value)


def test_unreadable_devices_file(tmp_path):
    (tmp_path / "system.devices").mkdir()
    with pytest.raises(DevicesFileError, match="is a directory"):
        dfm.read(str(tmp_path / "system.devices"))


def test_stale_entry():
    name = "two.devices"
    df = fixture(name)
    d1 = MANIFEST[name]["listed"]["d1"]
    assert dfm.stale(df, d1["pv"], d1["devname"]) is None
    # DEVNAME is one of the device's /dev names: current.
    assert dfm.stale(df, d1["pv"], "/dev/disk/by-id/x", names=("/dev/disk/by-id/x", d1["devname"])) is None
    st = dfm.stale(df, d1["pv"], "/dev/loop99")
    assert st is not None and st.device == "/dev/loop99" and st.entry.devname == d1["devname"]
    assert "device ID stale; lvm lvmdevices --update" in st.message
    assert dfm.stale(df, MANIFEST[name]["not_listed"]["d3"], "/dev/loop98") is None


def test_same_device(tmp_path):
    (tmp_path / "f").write_text("x")
    os.symlink(tmp_path / "f", tmp_path / "l")
    assert dfm.same_device(str(tmp_path / "f"), str(tmp_path / "l"))
    assert not dfm.same_device(str(tmp_path / "f"), str(tmp_path / "nope"))


def test_records_are_hashable_and_picklable():
    df = fixture("two.devices")
    assert pickle.loads(pickle.dumps(df)) == df and hash(df) == hash(pickle.loads(pickle.dumps(df)))


def test_first_entry_of_a_pvid_wins_and_lookups_scale():
    lines = [f"IDTYPE=devname IDNAME=/dev/d{i} DEVNAME=/dev/d{i} PVID=pv{i:05d}" for i in range(5000)]
    lines.append("IDTYPE=devname IDNAME=/dev/dup DEVNAME=/dev/dup PVID=pv00007")
    df = dfm.parse(("\n".join(lines) + "\n").encode(), "big")
    assert all(df.listed(f"pv{i:05d}") for i in range(5000))
    assert df.entry("pv00007").devname == "/dev/d7"
    assert pickle.loads(pickle.dumps(df)) == df
