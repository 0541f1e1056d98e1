"""node/systemid.py: the local system ID must equal what `lvm systemid`
prints.  For the fixture directories, manifest.json holds LVM's answer;
tests/test_lab_node.py asks LVM live for every source, uname included."""

import json
from pathlib import Path

import pytest

from vgdrift.node import lvmconf, systemid

NODE = Path(__file__).resolve().parent / "fixtures" / "node"
MANIFEST = json.loads((NODE / "manifest.json").read_text())
DEFAULTS = lambda keys: ({"devices/use_devicesfile": 0}, None)  # noqa: E731


def remap(path: str) -> str:
    return path.replace(MANIFEST["made_in"], str(NODE))


def local_of(conf, **kw):
    return systemid.local_system_id(conf.system_id_source, conf.local_system_id,
                                    remap(conf.system_id_file), remap(conf.etc_dir), **kw)


@pytest.mark.parametrize("case", sorted(c for c in MANIFEST["conf"] if "systemid" in MANIFEST["conf"][c]))
def test_fixture_cases_equal_lvm_systemid(case):
    conf = lvmconf.read(str(NODE / "conf" / case), DEFAULTS)
    want = MANIFEST["conf"][case]["systemid"]
    assert "error" not in want
    got = local_of(conf)
    assert got.value == want["system_id"] and got.known


def test_debian12_default_is_none():
    conf = lvmconf.read(str(NODE / "debian12"), DEFAULTS)
    assert local_of(conf).value == MANIFEST["debian12"]["systemid"]["system_id"] == ""


@pytest.mark.parametrize("raw,want", [
    ("node1", "node1"),
    ("  -Node B!x.y+z", "NodeBx.y+z"),          # leading non-alphanumerics, then invalid ones, dropped
    ("_a", "a"), ("a_b-c.d+e", "a_b-c.d+e"),
    ("h\u00e9te", "hte"),                        # bytes outside ASCII dropped
    ("x" * 200, "x" * 128),                      # NAME_LEN
    ("localhost", ""), ("localhost.localdomain", ""), ("--localhost", ""),
    ("mylocalhost", "mylocalhost"),
    ("", ""), ("!!!", ""),
])
def test_normalise(raw, want):
    assert systemid.normalise(raw) == want


def test_uname_uses_the_node_name_normalised():
    got = systemid.local_system_id("uname", nodename="web-01.example.com")
    assert got.value == "web-01.example.com"
    assert systemid.local_system_id("uname", nodename="localhost").value == ""
    assert systemid.local_system_id("UNAME", nodename="n1").value == "n1"   # any case but "none"


def test_local_system_id_ignored_unless_lvmlocal():
    got = systemid.local_system_id("none", local_system_id="abc")
    assert got.value == "" and any("ignored" in w for w in got.warnings)
    got = systemid.local_system_id("uname", local_system_id="abc", nodename="n1")
    assert got.value == "n1" and any("ignored" in w for w in got.warnings)
    got = systemid.local_system_id("lvmlocal", local_system_id="abc")
    assert got.value == "abc" and not got.warnings


def test_appmachineid_is_unknown():
    got = systemid.local_system_id("appmachineid")
    assert got.value is None and not got.known


@pytest.mark.parametrize("source", ["bogus", "None"])
def test_unrecognised_source_means_no_id(source):
    got = systemid.local_system_id(source)
    assert got.value == "" and got.warnings


def test_file_sources(tmp_path):
    def read(path):
        return {str(tmp_path / "id"): b"\n# c\n  #x\n  \tab c!#d\nsecond\n",
                str(tmp_path / "etc/machine-id"): b"0123456789abcdef\n"}[path]
    assert systemid.local_system_id("file", system_id_file=str(tmp_path / "id"), read=read).value == "abc"
    assert systemid.local_system_id("machineid", etc_dir=str(tmp_path / "etc"), read=read).value == \
        "0123456789abcdef"
    assert systemid.local_system_id("machine-id", etc_dir=str(tmp_path / "etc"), read=read).value == \
        "0123456789abcdef"
    missing = systemid.local_system_id("file", system_id_file=str(tmp_path / "nope"))
    assert missing.value == "" and any("cannot read" in w for w in missing.warnings)
    unset = systemid.local_system_id("file")
    assert unset.value == "" and any("no file configured" in w for w in unset.warnings)
