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
