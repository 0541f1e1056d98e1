"""The test lab itself: two nodes, stale caches, 4K sectors, vanishing PVs,
FUSE hangs, and a teardown that leaves no loop device behind."""

import subprocess
import time

import pytest

from lab import Lab, LabError, pv_layout, read_mda_text
from lab import make_vg as lab_make_vg


def losetup_a():
    return subprocess.run(["losetup", "-a"], capture_output=True, text=True,
                          check=True).stdout


def backup_seqno(node, vg):
    for line in node.read_backup(vg).splitlines():
        if line.strip().startswith("seqno ="):
            return int(line.split("=")[1])
    raise AssertionError("no seqno in backup")


def make_vg(lab, vg="vg0", disks=None):
    """lab.py's make_vg, by default vg0 on a new 16 MiB disk d0."""
    return lab_make_vg(lab, vg, disks or [lab.add_disk("d0", 16)])


def test_two_nodes_see_the_same_vg(lab):
    d0, d1 = lab.add_disk("d0"), lab.add_disk("d1")
    assert len({d0.a, d0.b, d1.a, d1.b}) == 4
    make_vg(lab, disks=[d0, d1])
    truth = lab.a.vgs_truth("vg0")
    assert truth["lv_names"] == ["lv1"]
    assert truth["pv_uuids"] == sorted(pv_layout(d.image)["pv_uuid"] for d in (d0, d1))
    assert {p["device"] for p in truth["pvs"]} == {d0.a, d1.a}

    lab.b.vgcfgbackup("vg0")
    text_b = lab.b.read_backup("vg0")
    assert truth["uuid"] in text_b
    assert backup_seqno(lab.b, "vg0") == truth["seqno"]
    # Node B found the PVs through its own loops: the hints say so.
    assert f'device = "{d0.b}"' in text_b and f'device = "{d1.b}"' in text_b
    assert d0.a not in text_b


def test_node_b_cache_stays_stale_until_vgcfgbackup(lab):
    make_vg(lab)
    lab.b.vgcfgbackup("vg0")
    before = lab.b.read_backup("vg0")
    seq = backup_seqno(lab.b, "vg0")

    lab.a.lvm("lvcreate", "-L", "4m", "-n", "lv2", "vg0")
    assert lab.a.vgs_truth("vg0")["seqno"] == seq + 1
    assert lab.b.read_backup("vg0") == before          # nothing ran on B

    lab.b.vgcfgbackup("vg0")
    assert backup_seqno(lab.b, "vg0") == seq + 1
    assert "lv2 {" in lab.b.read_backup("vg0")


def test_reporting_on_node_b_is_refused_and_would_refresh(lab):
    make_vg(lab)
    lab.b.vgcfgbackup("vg0")
    lab.a.lvm("lvcreate", "-L", "4m", "-n", "lv2", "vg0")
    with pytest.raises(LabError, match="refusing 'vgs'"):
        lab.b.lvm("vgs")
    # Why: a plain `vgs` on B silently rewrites B's stale backup.
    lab.b.lvm("vgs", "vg0", allow_report=True)
    assert "lv2 {" in lab.b.read_backup("vg0")


def test_lvm_failure_carries_stderr(lab):
    with pytest.raises(LabError, match="not found"):
        lab.a.lvm("vgcfgbackup", "no_such_vg")
    assert lab.a.lvm("vgcfgbackup", "no_such_vg", check=False).returncode != 0


def test_sector_4096_loop(lab):
    d = lab.add_disk("d4k", 16, sector_size=4096)
    for dev in (d.a, d.b):
        ss = subprocess.run(["blockdev", "--getss", dev], capture_output=True,
                            text=True, check=True).stdout.strip()
        assert ss == "4096"
    make_vg(lab, disks=[d])
    lay = pv_layout(d.image)
    assert lay["label_sector"] == 1
    assert "seqno = 2" in read_mda_text(d.image, lay["mdas"][0])
    lab.b.vgcfgbackup("vg0")
    assert backup_seqno(lab.b, "vg0") == 2


def test_detach_reattach_and_move(lab):
    (d,) = make_vg(lab)
    lab.b.vgcfgbackup("vg0")
    old_b = d.b

    lab.detach(d, "b")
    assert d.b is None and old_b not in lab.loops and lab.b.devices == []
    assert old_b not in (lab.b.system_dir / "lvm.conf").read_text()
    r = lab.b.lvm("vgcfgbackup", "vg0", check=False)
    assert r.returncode != 0                      # the PV is gone from B
    assert d.a in lab.a.devices                   # A still sees it

    new_b = lab.reattach(d, lab.b)
    assert new_b in lab.loops and lab.b.devices == [new_b]
    moved = lab.move(d, "b")
    assert moved not in (new_b, d.a) and new_b not in lab.loops
    lab.b.vgcfgbackup("vg0")
    assert f'device = "{moved}"' in lab.b.read_backup("vg0")


def test_close_detaches_every_loop_it_attached(tmp_path, requires_root_lab):
    lab = Lab(tmp_path / "lab")
    try:
        d = lab.add_disk("d0", 8)
        lab.add_disk("d1", 8, sector_size=4096)
        lab.move(d, "a")
        lab.detach(d, "b")
        lab.reattach(d, "b")
        ours = lab.loops
        assert len(ours) == 4
    finally:
        lab.close()
    lab.close()                                    # idempotent
    listing = losetup_a()
    assert str(tmp_path) not in listing
    for dev in ours:
        assert f"{dev}:" not in listing or str(tmp_path) not in listing
    assert not list((tmp_path / "lab" / "images").iterdir())


def _dd(dev, skip=64):
    return subprocess.Popen(
        ["dd", "iflag=direct", f"if={dev}", "of=/dev/null", "bs=4096",
         "count=1", f"skip={skip}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def test_fuse_block_and_unblock(lab, requires_fuse):
    d = lab.add_fuse_disk("slow", 8, via=("b",))
    assert d.b.startswith("/dev/loop") and d.a != d.b
    lab.block(d)
    p = _dd(d.b)
    try:
        with pytest.raises(subprocess.TimeoutExpired):
            p.wait(1.5)                             # held in the FUSE server
        # Node A reads the backing file directly: not held.
        q = _dd(d.a)
        assert q.wait(10) == 0
    finally:
        lab.unblock(d)
    assert p.wait(10) == 0


def test_fuse_delay(lab, requires_fuse):
    d = lab.add_fuse_disk("slow", 8, via=("a", "b"), delay_ms=300)
    t = time.monotonic()
    assert _dd(d.a, skip=100).wait(10) == 0
    assert time.monotonic() - t >= 0.3


def test_fuse_lvm_works_through_the_mount(lab, requires_fuse):
    d = lab.add_fuse_disk("f0", 16, via=("a", "b"))
    make_vg(lab, disks=[d])
    lab.b.vgcfgbackup("vg0")
    assert backup_seqno(lab.b, "vg0") == lab.a.vgs_truth("vg0")["seqno"]


def test_close_while_blocked_releases_readers(tmp_path, requires_fuse):
    lab = Lab(tmp_path / "lab")
    p = None
    try:
        d = lab.add_fuse_disk("hung", 8, via=("a", "b"))
        lab.block(d)
        p = _dd(d.b)
        with pytest.raises(subprocess.TimeoutExpired):
            p.wait(1)
    finally:
        t = time.monotonic()
        lab.close()                         # must unblock first, then detach
        assert time.monotonic() - t < 30
    assert p.wait(10) is not None
    assert str(tmp_path) not in losetup_a()
    with open("/proc/self/mountinfo") as f:
        assert str(tmp_path) not in f.read()


# --------------------------------------------------- facts the product relies on

def _strip(text):
    """Lines without comments (outside strings) and surrounding whitespace."""
    out = []
    for line in text.splitlines():
        keep, quoted, esc = [], False, False
        for ch in line:
            if esc:
                esc = False
            elif ch == "\\" and quoted:
                esc = True
            elif ch == '"':
                quoted = not quoted
            elif ch == "#" and not quoted:
                break
            keep.append(ch)
        s = "".join(keep).strip()
        if s:
            out.append(s)
    return out


def _split_vg(lines, vg):
    """(VG section lines, top-level lines)."""
    i = lines.index(vg + " {")
    depth, j = 0, i
    for j in range(i, len(lines)):
        depth += lines[j].count("{") - lines[j].count("}")
        if depth == 0:
            break
    return lines[i:j + 1], lines[:i] + lines[j + 1:]


def test_backup_vg_section_equals_disk_but_for_device_hints(lab):
    d0, d1 = lab.add_disk("d0"), lab.add_disk("d1")
    make_vg(lab, disks=[d0, d1])
    lab.a.lvm("lvextend", "-L", "8m", "vg0/lv1")
    lab.a.lvm("vgchange", "--addtag", "t1", "vg0")
    time.sleep(1.1)                       # let B's backup time differ
    lab.b.vgcfgbackup("vg0")
    disk = _strip(read_mda_text(d0.image, pv_layout(d0.image)["mdas"][0]))
    assert disk == _strip(read_mda_text(d1.image, pv_layout(d1.image)["mdas"][0]))
    disk_vg, disk_top = _split_vg(disk, "vg0")
    a_vg, a_top = _split_vg(_strip(lab.a.read_backup("vg0")), "vg0")
    b_vg, b_top = _split_vg(_strip(lab.b.read_backup("vg0")), "vg0")
    # Node A committed: same VG section, line for line (after comments and
    # indentation are stripped).
    assert a_vg == disk_vg
    # Node B read it: only the device hints (its own loop names) differ.
    diff = [(x, y) for x, y in zip(disk_vg, b_vg) if x != y]
    assert len(b_vg) == len(disk_vg)
    assert diff == [(f'device = "{d.a}"', f'device = "{d.b}"') for d in (d0, d1)]
    # Top level: description always differs; B's creation_time is the time
    # of its vgcfgbackup, not of the commit.
    top = lambda lines, k: [l for l in lines if l.startswith(k + " =")]
    assert top(disk_top, "description")[0].startswith('description = "Write from vgchange')
    assert top(a_top, "description")[0].startswith(
        """description = "Created *after* executing 'vgchange""")
    assert top(b_top, "description")[0].startswith(
        """description = "Created *after* executing 'vgcfgbackup""")
    assert top(b_top, "creation_time") != top(disk_top, "creation_time")


def test_shipped_fixtures_match_manifest(tmp_path):
    """tests/fixtures/* are what manifest.json says (no root needed)."""
    import gzip
    import json
    import shutil
    from pathlib import Path
    root = Path(__file__).parent / "fixtures"
    manifest = json.loads((root / "manifest.json").read_text())
    assert {"simple", "sector4k", "two_mdas", "zero_mda", "wrapped", "oddnames",
            "drift", "orphan", "big"} <= set(manifest["cases"])
    for name, case in manifest["cases"].items():
        for img in case["images"]:
            raw = tmp_path / "x.img"
            with gzip.open(root / img["file"]) as src, open(raw, "wb") as dst:
                shutil.copyfileobj(src, dst)
            assert raw.stat().st_size == img["size"]
            lay = pv_layout(raw)
            assert lay["pv_uuid"] == img["pv_uuid"], img["file"]
            assert len(lay["mdas"]) == len(img["mdas"])
            for got, want in zip(lay["mdas"], img["mdas"]):
                assert got["header_crc_ok"]
                assert (got["offset"], got["text_size"]) == (want["offset"], want["text_size"])
                if not got["orphan"]:
                    assert f"seqno = {want['seqno']}" in read_mda_text(raw, got)
        for cache in case["caches"]:
            for vg, f in cache["vgs"].items():
                assert f"seqno = {f['seqno']}" in (root / f["file"]).read_text()
    assert manifest["cases"]["wrapped"]["images"][0]["mdas"][0]["wraps"]
    assert manifest["cases"]["orphan"]["images"][0]["mdas"][0]["orphan"]
    assert manifest["cases"]["big"]["images"][0]["mdas"][0]["text_size"] > 65536
