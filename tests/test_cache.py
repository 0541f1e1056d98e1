"""The node's cache: which files count, errors per file, the newest of two
copies of one VG, and the exporter's parse memo."""

import os
import shutil

from vgdrift.node import cache

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")
SIMPLE = os.path.join(FIXTURES, "simple", "cache_a")


def copy_simple(d):
    (name,) = os.listdir(SIMPLE)
    shutil.copy(os.path.join(SIMPLE, name), d / name)
    return d / name


def test_skips_temporary_and_editor_files(tmp_path):
    copy_simple(tmp_path)
    for junk in (".lvm_host_1_2", "vg0~", "vg0.tmp", "vg0.swp", "vg0.dpkg-old", "vg0.rpmsave"):
        (tmp_path / junk).write_text("{{{ garbage")
    (tmp_path / "subdir").mkdir()
    found, errors, warnings = cache.read_cache([str(tmp_path)])
    assert len(found) == 1 and errors == [] and warnings == []


def test_errors_name_the_file_and_line(tmp_path):
    (tmp_path / "bad").write_text('vg {\n id = "x"\n seqno = [\n')
    (tmp_path / "huge").write_bytes(b"#" * (cache.MAX_FILE + 1))
    found, errors, _ = cache.read_cache([str(tmp_path)])
    assert found == []
    msgs = sorted(e.message for e in errors)
    assert msgs[0].startswith(f"{tmp_path}/bad: line 4: ") and "larger than 64 MiB" in msgs[1]


def test_newest_copy_of_a_vg_wins_with_a_warning(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    old = copy_simple(a)
    text = old.read_text()
    seqno = int(text.split("seqno = ")[1].split()[0])
    (b / "renamed").write_text(text.replace(f"seqno = {seqno}", f"seqno = {seqno + 1}"))
    found, errors, warnings = cache.read_cache([str(a), str(b)])
    assert [c.path for c in found] == [str(b / "renamed")] and errors == []
    assert len(warnings) == 1 and warnings[0].where == str(old)


def test_memo_reparses_only_replaced_files(tmp_path):
    path = copy_simple(tmp_path)
    memo = {}
    first, _, _ = cache.read_cache([str(tmp_path)], memo)
    again, _, _ = cache.read_cache([str(tmp_path)], memo)
    assert again[0] is first[0]
    # LVM writes a new file and renames it over the old one.
    new = tmp_path / ".lvm_tmp"
    new.write_text(path.read_text().replace("seqno = ", "seqno = 1"))
    os.rename(new, path)
    third, _, _ = cache.read_cache([str(tmp_path)], memo)
    assert third[0] is not first[0] and third[0].vg.seqno != first[0].vg.seqno
    os.unlink(path)
    assert cache.read_cache([str(tmp_path)], memo)[0] == [] and memo == {}


# --- the sketch a one-shot check starts its disk reads from ------------------

def _from_parse(cached):
    return [cache.Sketch(c.vg.name, c.vg.id, tuple((pv.id, pv.device or None) for pv in c.vg.pvs))
            for c in cached]


def _cache_dirs():
    import json
    manifest = json.load(open(os.path.join(FIXTURES, "manifest.json")))
    dirs = [os.path.join(FIXTURES, c["dir"]) for case in manifest["cases"].values() for c in case["caches"]]
    demo = os.path.join(os.path.dirname(FIXTURES), os.pardir, "exporter", "vgdrift", "demo", "cache")
    return dirs + [os.path.normpath(demo)]


def test_sketch_agrees_with_the_parse_of_every_real_cache():
    """Every cache LVM2 made for the fixtures (odd names, ~260 LVs, 4K
    sectors, several PVs) and the demo's: the sketch names the same VGs,
    ids, PVs and hints as the parse, from the same bytes."""
    dirs = _cache_dirs()
    assert len(dirs) >= 12
    for d in dirs:
        drawn = cache.sketch([d])
        assert drawn is not None, d
        sketched, loaded = drawn
        found, errors, _ = cache.read_cache([d], None, loaded)
        assert errors == [] and sketched == _from_parse(found) and sketched, d


def test_sketch_gives_up_where_only_the_parse_can_tell(tmp_path):
    assert cache.sketch([str(tmp_path / "absent")]) is None        # a directory that cannot be listed
    path = copy_simple(tmp_path)
    drawn = cache.sketch([str(tmp_path)])
    assert drawn is not None and len(drawn[0]) == 1
    shutil.copy(path, tmp_path / "renamed")                           # one VG id cached twice
    assert cache.sketch([str(tmp_path)]) is None
    os.unlink(tmp_path / "renamed")
    # Written by hand, without LVM's tabs: the parse reads it, the sketch does not.
    path.write_text(path.read_text().replace("\n\t", "\n  "))
    assert cache.read_cache([str(tmp_path)])[1] == []
    assert cache.sketch([str(tmp_path)]) is None


def test_sketch_that_misses_a_pv_differs_from_the_parse(tmp_path):
    """Spacing LVM does not write around one PV's device hint: the sketch
    leaves that PV out and so differs from the parse (scan.py then starts
    its reads again from the parse: test_scan_images.py)."""
    path = copy_simple(tmp_path)
    path.write_text(path.read_text().replace("\t\t\tdevice = ", "\t\t\tdevice  =  ", 1))
    sketched, loaded = cache.sketch([str(tmp_path)])
    found, errors, _ = cache.read_cache([str(tmp_path)], None, loaded)
    assert errors == [] and sketched != _from_parse(found)
    assert len(sketched[0].pvs) == len(found[0].vg.pvs) - 1
