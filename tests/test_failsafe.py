"""Damaged input never becomes a confident answer (issue 7, section 1):
whole cache files and whole on-disk copies (with valid checksums) holding
extreme values raise only the parsers' own errors, and through the CLI give
exit 3 (a bad cache) or a corrupt PV (a bad copy), never a traceback and
never 0 or 1."""

import gzip
import json
import os
import struct
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vgdrift.disk import ondisk, pvread
from vgdrift.node import cache

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "fixtures")
EXPORTER = os.path.join(os.path.dirname(HERE), "exporter")
SIMPLE_CACHE = os.path.join(FIXTURES, "simple", "cache_a", "vg0")
BACKUP = open(SIMPLE_CACHE, "rb").read()
_images = {}


def image(case: str, n: int = 0) -> bytes:
    key = (case, n)
    if key not in _images:
        with gzip.open(os.path.join(FIXTURES, case, f"pv{n}.img.gz")) as f:
            _images[key] = f.read()
    return _images[key]


def committed_text(img: bytes) -> bytes:
    label = ondisk.find_label(img[:ondisk.LABEL_AREA], "img")
    start = label.metadata_areas[0].offset
    hdr = ondisk.parse_mda_header(img[start:start + 512], "img", start)
    return ondisk.check_text(b"".join(img[o:o + n] for o, n in ondisk.ring_pieces(hdr)), hdr, "img")


def with_text(img: bytes, text: bytes) -> bytes:
    """The image with `text` (plus LVM's trailing NUL) as the committed copy
    of its first metadata area, right after the header, with a valid text
    checksum and header checksum: damage that no checksum catches."""
    label = ondisk.find_label(img[:ondisk.LABEL_AREA], "img")
    start = label.metadata_areas[0].offset
    out = bytearray(img)
    hdr = ondisk.parse_mda_header(bytes(out[start:start + 512]), "img", start)
    body = text + b"\0"
    assert len(body) <= hdr.size - 512, "text larger than the metadata area"
    out[start + 512:start + 512 + len(body)] = body
    struct.pack_into("<QQII", out, start + 40, 512, len(body), ondisk.crc(body), 0)
    struct.pack_into("<I", out, start, ondisk.crc(bytes(out[start + 4:start + 512])))
    return bytes(out)


def read_copy(path: str):
    """What the worker makes of one device: (head, text) observations."""
    head = pvread.read_head(path, ("t", path), pvread.HEAD_READ, None, lambda dev: None, 0.0)
    if head.text_key is None:
        return head, None
    return pvread.read_text(head, lambda dev: None, 0.0)


def check(*args):
    r = subprocess.run([sys.executable, "-m", "vgdrift", "check", "--format", "json", *map(str, args)],
                       capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=EXPORTER), timeout=120)
    assert "Traceback" not in r.stderr, r.stderr
    doc = json.loads(r.stdout)
    assert doc["exit_code"] == r.returncode
    return r.returncode, doc, r.stderr


# --- extreme values --------------------------------------------------------

HUGE = st.one_of(
    st.integers(min_value=-(10 ** 30), max_value=10 ** 30),
    st.sampled_from([2 ** 31, 2 ** 32 - 1, 2 ** 32, 2 ** 63 - 1, 2 ** 63, 2 ** 64, -(2 ** 63), -(2 ** 63) - 1,
                     -1, 0]),
    st.integers(min_value=1, max_value=6000).map(lambda n: int("9" * n) if n < 4000 else "1" * n),
).map(lambda v: str(v).encode())
NUMBER_FIELDS = [b"seqno = 2", b"extent_size = 2048", b"max_lv = 0", b"max_pv = 0", b"dev_size = 16384",
                 b"pe_start = 2048", b"pe_count = 7", b"extent_count = 2", b"start_extent = 0",
                 b"segment_count = 1", b"creation_time = 1795486503"]
JUNK = st.one_of(
    HUGE,
    st.binary(max_size=40),
    st.sampled_from([b"\0", b"\xff\xfe", b"\xc3", b'"' + b"x" * 100000 + b'"', b"[" * 500, b"{" * 500,
                     b"a { " * 200 + b"}" * 200, b'"a/b"', b"1e999", b"-.5", b"[1 2]", b"0x10", b"09"]),
)


def mutate(text: bytes, edits) -> bytes:
    """Applies (kind, index, junk) edits to a real LVM text."""
    lines = text.split(b"\n")
    for kind, i, junk in edits:
        i %= len(lines)
        if kind == "number":
            key = NUMBER_FIELDS[i % len(NUMBER_FIELDS)].split(b" = ")[0]
            where = [j for j, ln in enumerate(lines) if ln.strip().startswith(key + b" =")]
            if where:
                j = where[i % len(where)]
                lines[j] = lines[j].split(b"=")[0] + b"= " + junk
        elif kind == "replace":
            lines[i] = junk
        elif kind == "insert":
            lines.insert(i, junk)
        elif kind == "duplicate":
            lines.insert(i, lines[i])
        elif kind == "delete":
            del lines[i]
        elif kind == "value":   # whatever follows '=' on that line
            if b"=" in lines[i]:
                lines[i] = lines[i].split(b"=")[0] + b"= " + junk
    return b"\n".join(lines)


EDITS = st.lists(st.tuples(st.sampled_from(["number", "replace", "insert", "duplicate", "delete", "value"]),
                           st.integers(0, 10 ** 6), JUNK), min_size=1, max_size=4)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                    HealthCheck.function_scoped_fixture])
@given(EDITS)
def test_damaged_cache_file_is_read_or_a_cache_error(tmp_path, edits):
    path = tmp_path / "vg0"
    path.write_bytes(mutate(BACKUP, edits))
    found, errors, _ = cache.read_cache([str(tmp_path)])
    if found:
        assert errors == []
        vg = found[0].vg
        assert 0 <= vg.seqno < 2 ** 32 and 0 <= vg.creation_time < 2 ** 32
    else:
        assert [e.reason for e in errors] == ["cache"]
        assert "\n" not in errors[0].message and len(errors[0].message) < 1000


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                    HealthCheck.function_scoped_fixture])
@given(EDITS)
def test_damaged_on_disk_copy_is_read_or_corrupt(tmp_path, edits):
    text = mutate(committed_text(image("simple")), edits)
    # The area holds about 1 MiB; a bigger text could not have a checksum there.
    text = text[:1000000]
    path = tmp_path / "pv0.img"
    path.write_bytes(with_text(image("simple"), text))
    head, obs = read_copy(str(path))
    assert head.reason is None
    if b"\0" in text:
        return   # the text ends at the NUL: whatever precedes it was judged
    assert obs is not None
    if obs.vg is None:
        assert obs.reason == "corrupt" and "\n" not in obs.error and len(obs.error) < 1000
    else:
        assert 0 <= obs.vg.seqno < 2 ** 32


# --- the reproductions ---------------------------------------------

def _cache_dir(tmp_path, text: bytes):
    d = tmp_path / "cache"
    d.mkdir()
    (d / "vg0").write_bytes(text)
    return d


def _unpack(tmp_path, case, texts=None):
    paths = []
    for n in range(2 if case == "drift" else 1):
        img = image(case, n)
        if texts is not None and texts[n] is not None:
            img = with_text(img, texts[n])
        path = tmp_path / f"pv{n}.img"
        path.write_bytes(img)
        paths.append(path)
    return paths


@pytest.mark.parametrize("old,new", [
    (b"max_lv = 0", b"max_lv = " + b"1" * 5000),
    (b"creation_time = 1795486503\t# Tue", b"creation_time = 99999999999999999999\t# Tue"),
    (b"creation_time = 1795486503\t# Tue", b"creation_time = 18446744073709551616\t# Tue"),
    (b"seqno = 2", b"seqno = -1"),
    (b"vg0 {", b'"v/g" {'),
    (b"vg0 {", b"v" * 200 + b" {"),
    (b"\tseqno = 2", b"\tseqno = 2\n\tseqno = 3"),
    (b"pe_count = 7", b"pe_count = -7"),
])
def test_bad_cache_file_exits_3_with_one_line(tmp_path, old, new):
    assert BACKUP.count(old) == 1
    d = _cache_dir(tmp_path, BACKUP.replace(old, new))
    (img,) = _unpack(tmp_path, "simple")
    for fmt in ("json", "text"):
        r = subprocess.run([sys.executable, "-m", "vgdrift", "check", "--format", fmt, "--cache-dir", str(d),
                            "--devices", str(img)], capture_output=True, text=True,
                           env=dict(os.environ, PYTHONPATH=EXPORTER), timeout=120)
        assert r.returncode == 3, r.stderr
        assert "Traceback" not in r.stderr and "internal error" not in r.stderr
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"vgdrift: {d}/vg0: "), lines
        if fmt == "json":
            doc = json.loads(r.stdout)
            assert doc["exit_code"] == 3 and doc["errors"][0]["reason"] == "cache"


def test_out_of_range_seqno_on_every_pv_is_not_drift(tmp_path):
    texts = [committed_text(image("drift", n)) for n in (0, 1)]
    assert all(b"seqno = " in t for t in texts)
    bad = [t.replace(b"seqno = ", b"seqno = 99999999999999999999 # ", 1) for t in texts]
    paths = _unpack(tmp_path, "drift", bad)
    code, doc, err = check("--cache-dir", os.path.join(FIXTURES, "drift", "cache_a"),
                           "--devices", tmp_path / "*.img")
    (vg,) = doc["vgs"]
    assert code == 2 and vg["state"] == "unreadable" and vg["reason"] == "corrupt"
    assert [p["state"] for p in vg["pvs"]] == ["corrupt", "corrupt"]
    assert "out of 64-bit range" in err and str(paths[0]) in err


def test_out_of_range_creation_time_on_one_copy_is_not_in_sync(tmp_path):
    texts = [committed_text(image("drift", n)) for n in (0, 1)]
    old = texts[1].split(b"creation_time = ")[1].split(b"\n")[0]
    bad = texts[1].replace(b"creation_time = " + old, b"creation_time = " + str(2 ** 64).encode())
    assert bad != texts[1]
    _unpack(tmp_path, "drift", [None, bad])
    code, doc, err = check("--cache-dir", os.path.join(FIXTURES, "drift", "cache_a"),
                           "--devices", tmp_path / "*.img")
    (vg,) = doc["vgs"]
    assert code == 2 and vg["state"] != "in_sync"
    assert sorted(p["state"] for p in vg["pvs"]) == ["corrupt", "ok"]


def test_cache_in_sync_without_damage(tmp_path):
    """The reproductions' baseline: the same disks undamaged are in sync,
    so the exits above come from the damage."""
    _unpack(tmp_path, "drift")
    code, doc, _ = check("--cache-dir", os.path.join(FIXTURES, "drift", "cache_a"),
                         "--devices", tmp_path / "*.img")
    assert code == 0 and doc["vgs"][0]["state"] == "in_sync"


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(EDITS)
def test_damaged_cache_through_the_cli_is_never_0_or_1(tmp_path_factory, edits):
    d = tmp_path_factory.mktemp("cache")
    (d / "vg0").write_bytes(mutate(BACKUP, edits))
    _, errors, _ = cache.read_cache([str(d)])
    code, doc, err = check("--cache-dir", d, "--devices", d / "none*")
    if errors:
        assert code == 3 and doc["errors"][0]["reason"] == "cache"
    assert code in (2, 3)       # no device holds it: never in sync, never drift


def test_largest_accepted_timestamps_render():
    """Every creation_time the parser lets through is one the report and
    the exporter can format."""
    from vgdrift import report
    from vgdrift.textmeta import parse_vg
    vg = parse_vg(BACKUP.replace(b"creation_time = 1795486503\t# Tue", b"creation_time = 4294967295\t# Tue"),
                  "t")
    assert vg.creation_time == 2 ** 32 - 1
    assert report._ts(vg.creation_time) == "2106-02-07 06:28:15Z"
