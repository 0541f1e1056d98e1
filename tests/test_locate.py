"""Candidate devices and sibling paths, on a fake sysfs tree (multipath
cannot be built in the lab: no device-mapper there)."""

import os

from vgdrift.disk import locate


def make_sysfs(root):
    def put(rel, text):
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text + "\n")

    for name, backing, offset in (("loop0", "/img/a", "0"), ("loop1", "/img/a", "0"),
                                  ("loop2", "/img/b", "0"), ("loop3", "/img/a", "4096")):
        put(f"{name}/size", "16384")
        put(f"{name}/loop/backing_file", backing)
        put(f"{name}/loop/offset", offset)
        put(f"{name}/loop/sizelimit", "0")
    put("loop7/size", "0")                       # unattached
    put("ram0/size", "8192")
    put("dm-0/size", "20000")
    put("dm-0/dm/uuid", "mpath-3600a0b80001")
    for comp in ("sdb", "sdc"):
        put(f"{comp}/size", "20000")
        (root / "dm-0" / "slaves").mkdir(parents=True, exist_ok=True)
        (root / "dm-0" / "slaves" / comp).mkdir(exist_ok=True)
        (root / comp / "holders").mkdir(parents=True, exist_ok=True)
        (root / comp / "holders" / "dm-0").mkdir(exist_ok=True)
    put("dm-1/size", "100")
    put("dm-1/dm/uuid", "LVM-abc")               # an LV, not a multipath map
    put("cciss!c0d0/size", "100")
    return str(root)


def test_system_devices_skip_empty_and_ram(tmp_path):
    sys_block = make_sysfs(tmp_path)
    devs = locate.system_devices(sys_block)
    assert "/dev/loop7" not in devs and "/dev/ram0" not in devs
    assert {"/dev/loop0", "/dev/dm-0", "/dev/sdb", "/dev/cciss/c0d0"} <= set(devs)


def test_loop_siblings_same_file_and_offset(tmp_path):
    s = locate.Siblings(make_sysfs(tmp_path))
    assert s.of("/dev/loop0") == ["/dev/loop1"]
    assert s.of("/dev/loop1") == ["/dev/loop0"]
    assert s.of("/dev/loop2") == [] and s.of("/dev/loop3") == []


def test_multipath_map_and_components(tmp_path):
    s = locate.Siblings(make_sysfs(tmp_path))
    assert s.of("/dev/dm-0") == ["/dev/sdb", "/dev/sdc"]
    assert s.of("/dev/sdb") == ["/dev/dm-0"]
    assert s.of("/dev/dm-1") == []


def test_preferred_hint_then_dm_then_name(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_bytes(b"x")
    b.write_bytes(b"y")
    assert locate.preferred([str(a), str(b)], str(b)) == [str(b), str(a)]
    assert locate.preferred(["/dev/sdz", "/dev/mapper/mpatha", "/dev/sdy"], None) == \
        ["/dev/mapper/mpatha", "/dev/sdy", "/dev/sdz"]


def test_distinct_and_globs(tmp_path):
    (tmp_path / "d1.img").write_bytes(b"1")
    os.symlink(tmp_path / "d1.img", tmp_path / "link.img")
    (tmp_path / "sub.img").mkdir()
    paths = locate.expand_globs([str(tmp_path / "*.img")])
    assert [p for p, _ in locate.identified(paths)] == [str(tmp_path / "d1.img"), str(tmp_path / "link.img")]
    got = locate.distinct(paths + [str(tmp_path / "gone")])
    assert [p for p, _ in got] == [str(tmp_path / "d1.img")]     # the link is the same file
