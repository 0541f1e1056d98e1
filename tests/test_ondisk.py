"""Binary structures, on real PVs made by LVM2 (tests/fixtures, see
make_fixtures.py) and on corrupted copies of them."""

import gzip
import json
import os
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vgdrift.disk import ondisk
from vgdrift.textmeta import parse_vg

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")
MANIFEST = json.load(open(os.path.join(FIXTURES, "manifest.json")))
IMAGES = [(case, img) for case, c in MANIFEST["cases"].items() for img in c["images"]]
_cache = {}


def image(img) -> bytes:
    if img["file"] not in _cache:
        with gzip.open(os.path.join(FIXTURES, img["file"])) as f:
            _cache[img["file"]] = f.read()
    return _cache[img["file"]]


def simple() -> bytes:
    return image(MANIFEST["cases"]["simple"]["images"][0])


def read_text(data: bytes, hdr: ondisk.MdaHeader, dev="img") -> bytes:
    return ondisk.check_text(b"".join(data[o:o + n] for o, n in ondisk.ring_pieces(hdr)), hdr, dev)


def test_crc_vectors():
    assert ondisk.crc(b"") == 0xF597A6CF
    assert ondisk.crc(b"123456789") == 0x4991CF02
    assert ondisk.crc(b"6789", ondisk.crc(b"12345")) == 0x4991CF02


def test_uuid_format():
    assert ondisk.format_uuid("PaT2kdFkiVSzciLzwgOZtkUWDkBA9hK3") == "PaT2kd-FkiV-Szci-Lzwg-OZtk-UWDk-BA9hK3"


@pytest.mark.parametrize("case,img", IMAGES, ids=[f"{c}-{i['file']}" for c, i in IMAGES])
def test_real_pvs_parse_as_lvm_wrote_them(case, img):
    data = image(img)
    label = ondisk.find_label(data[:ondisk.LABEL_AREA], img["file"])
    assert ondisk.format_uuid(label.pv_uuid) == img["pv_uuid"]
    assert label.sector == img["label_sector"] and label.device_size == img["device_size"]
    assert [[a.offset, a.size] for a in label.data_areas] == img["data_areas"]
    assert len(label.metadata_areas) == len(img["mdas"])
    for area, want in zip(label.metadata_areas, img["mdas"]):
        hdr = ondisk.parse_mda_header(data[area.offset:area.offset + 512], img["file"], area.offset,
                                      label.device_size)
        assert (hdr.start, hdr.size) == (want["start"], want["size"])
        if want["orphan"]:
            assert hdr.committed is None
            continue
        assert (hdr.committed.offset, hdr.committed.size, hdr.committed.checksum) == \
            (want["offset"], want["text_size"], want["checksum"])
        assert len(ondisk.ring_pieces(hdr)) == (2 if want["wraps"] else 1)
        vg = parse_vg(read_text(data, hdr), img["file"])
        assert (vg.id, vg.seqno) == (want["vg_uuid"], want["seqno"])


def test_wrapped_fixture_really_wraps():
    img = MANIFEST["cases"]["wrapped"]["images"][0]
    assert img["mdas"][0]["wraps"] and img["mdas"][0]["wrap_bytes"] > 0


def with_crc(sector: bytearray, crc_at: int, start: int, end: int) -> bytearray:
    struct.pack_into("<I", sector, crc_at, ondisk.crc(bytes(sector[start:end])))
    return sector


def label_sector() -> bytearray:
    return bytearray(simple()[512:1024])


def mda_header() -> bytearray:
    return bytearray(simple()[4096:4608])


def test_label_errors_in_order_length_magic_crc():
    with pytest.raises(ondisk.TruncatedError) as e:
        ondisk.find_label(simple()[:1000], "/dev/x")
    assert (e.value.device, e.value.offset) == ("/dev/x", 0)
    data = bytearray(simple()[:2048])
    data[512:520] = b"LABELTWO"
    with pytest.raises(ondisk.NoLabelError):
        ondisk.find_label(bytes(data), "/dev/x")
    sec = label_sector()
    sec[100] ^= 0xFF
    with pytest.raises(ondisk.LabelChecksumError) as e:
        ondisk.parse_label_sector(bytes(sec), 1, "/dev/x")
    assert e.value.offset == 512 + 16 and e.value.expected != e.value.got
    assert "/dev/x: label checksum at offset 528: expected 0x" in str(e.value)


def test_label_bad_type_and_sector_and_lists():
    sec = label_sector()
    sec[24:32] = b"LVM3 001"
    with pytest.raises(ondisk.LabelError):
        ondisk.parse_label_sector(bytes(with_crc(sec, 16, 20, 512)), 1, "d")
    with pytest.raises(ondisk.LabelError):
        ondisk.parse_label_sector(bytes(label_sector()), 2, "d")     # sector_xl says 1
    sec = label_sector()
    struct.pack_into("<I", sec, 20, 600)                              # pv_header past the sector
    with pytest.raises(ondisk.PVHeaderError):
        ondisk.parse_label_sector(bytes(with_crc(sec, 16, 20, 512)), 1, "d")
    sec = label_sector()
    sec[72:512] = b"\x01" * 440                                       # no list terminator
    with pytest.raises(ondisk.PVHeaderError):
        ondisk.parse_label_sector(bytes(with_crc(sec, 16, 20, 512)), 1, "d")


def test_mda_header_errors():
    with pytest.raises(ondisk.TruncatedError):
        ondisk.parse_mda_header(bytes(mda_header()[:100]), "d", 4096)
    h = mda_header()
    h[4] ^= 1
    with pytest.raises(ondisk.MdaHeaderError) as e:
        ondisk.parse_mda_header(bytes(h), "d", 4096)
    assert e.value.offset == 4100 and not isinstance(e.value, ondisk.MdaChecksumError)
    h = mda_header()
    h[60] ^= 1
    with pytest.raises(ondisk.MdaChecksumError):
        ondisk.parse_mda_header(bytes(h), "d", 4096)
    with pytest.raises(ondisk.MdaHeaderError):
        ondisk.parse_mda_header(bytes(mda_header()), "d", 8192)      # start field disagrees
    with pytest.raises(ondisk.MdaHeaderError):
        ondisk.parse_mda_header(bytes(mda_header()), "d", 4096, device_size=65536)


@pytest.mark.parametrize("offset,size", [
    (2 ** 40, 1000),            # offset far outside the area
    (1536, 2 ** 40),            # a size no one should allocate
    (100, 1000),                # inside the header
])
def test_text_location_outside_area_is_refused_before_any_read(offset, size):
    h = mda_header()
    struct.pack_into("<QQ", h, 40, offset, size)
    with pytest.raises(ondisk.MdaLocationError):
        ondisk.parse_mda_header(bytes(with_crc(h, 0, 4, 512)), "d", 4096)


def test_text_checksum_and_truncation():
    data = bytearray(simple())
    hdr = ondisk.parse_mda_header(bytes(data[4096:4608]), "d", 4096)
    off = hdr.start + hdr.committed.offset
    data[off + 10] ^= 1
    with pytest.raises(ondisk.TextChecksumError):
        read_text(bytes(data), hdr)
    with pytest.raises(ondisk.TruncatedError):
        ondisk.check_text(b"short", hdr, "d")


def test_orphan_area_has_no_committed_text():
    img = MANIFEST["cases"]["orphan"]["images"][0]
    data = image(img)
    label = ondisk.find_label(data[:2048], "d")
    area = label.metadata_areas[0]
    hdr = ondisk.parse_mda_header(data[area.offset:area.offset + 512], "d", area.offset)
    assert hdr.committed is None and ondisk.ring_pieces(hdr) == ()


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=0, max_size=2048))
def test_random_label_area_raises_only_ondisk_errors(data):
    try:
        ondisk.find_label(data, "fuzz")
    except ondisk.OnDiskError:
        pass


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 511), st.integers(0, 255)), min_size=1, max_size=8),
       st.booleans())
def test_mutated_real_label_raises_only_ondisk_errors(edits, fix_crc):
    sec = label_sector()
    for pos, val in edits:
        sec[pos] = val
    if fix_crc:
        sec = with_crc(sec, 16, 20, 512)
    try:
        label = ondisk.parse_label_sector(bytes(sec), 1, "fuzz")
        assert len(label.pv_uuid) == 32
    except ondisk.OnDiskError:
        pass


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 511), st.integers(0, 255)), min_size=1, max_size=8),
       st.integers(4096, 2 ** 33))
def test_mutated_real_mda_header_raises_only_ondisk_errors(edits, device_size):
    h = mda_header()
    for pos, val in edits:
        h[pos] = val
    h = with_crc(h, 0, 4, 512)
    try:
        hdr = ondisk.parse_mda_header(bytes(h), "fuzz", 4096, device_size)
    except ondisk.OnDiskError:
        return
    for off, n in ondisk.ring_pieces(hdr):
        assert hdr.start + 512 <= off and off + n <= hdr.start + hdr.size and n >= 0


def test_claimed_uuid_of_a_label_whose_checksum_fails():
    """A corrupt label still names its PV (the label layout is ondisk's)."""
    data = bytearray(simple()[:ondisk.LABEL_AREA])
    data[512 + 100] ^= 0xFF                                    # the label checksum now fails
    with pytest.raises(ondisk.LabelChecksumError):
        ondisk.find_label(bytes(data), "d")
    assert ondisk.claimed_pv_uuid(bytes(data)) == MANIFEST["cases"]["simple"]["images"][0]["pv_uuid"]
    struct.pack_into("<I", data, 512 + 20, 600)                # pv_header offset past the sector
    assert ondisk.claimed_pv_uuid(bytes(data)) is None
    assert ondisk.claimed_pv_uuid(bytes(ondisk.LABEL_AREA)) is None
    assert ondisk.claimed_pv_uuid(simple()[:700]) is None     # the label sector cut short


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=2048))
def test_claimed_uuid_of_any_bytes_is_none_or_a_uuid(data):
    data = ondisk.LABEL_ID + data
    got = ondisk.claimed_pv_uuid(data)
    assert got is None or len(got.replace("-", "")) == ondisk.ID_LEN
