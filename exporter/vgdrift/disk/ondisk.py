"""LVM2 on-disk structures: label, pv_header, metadata-area header, ring.

Pure parsing of bytes already read; every check goes length, then magic,
then CRC, and every failure is an ``OnDiskError`` subclass that says which
device, at which offset, what was expected and what was found.
"""

import struct
import zlib
from typing import List, NamedTuple, Optional, Tuple

SECTOR = 512
LABEL_SCAN_SECTORS = 4          # LVM looks for the label in sectors 0..3
LABEL_AREA = SECTOR * LABEL_SCAN_SECTORS
LABEL_ID = b"LABELONE"
LVM2_TYPE = b"LVM2 001"
MDA_MAGIC = b" LVM2 x[5A%r0N*>"
MDA_HEADER_SIZE = 512
MDA_VERSION = 1
ID_LEN = 32
RAW_LOCN_IGNORED = 0x1   # lvm2: RAW_LOCN_IGNORED 0x00000001 (the flag value 1)
CRC_INITIAL = 0xF597A6CF

# Largest metadata area we accept.  LVM caps --metadatasize far below this;
# a bigger size field is corruption, and we must not allocate what it asks.
MAX_MDA_SIZE = 1 << 30

LABEL_HEADER = struct.Struct("<8sQII8s")   # id, sector_xl, crc_xl, offset_xl, type
PV_HEADER_ID = struct.Struct("<32sQ")      # pv_uuid, device_size_xl
DISK_LOCN = struct.Struct("<QQ")           # offset, size
PV_HEADER_EXT = struct.Struct("<II")       # version, flags
MDA_HEADER = struct.Struct("<I16sIQQ")     # checksum, magic, version, start, size
RAW_LOCN = struct.Struct("<QQII")          # offset, size, checksum, flags


def crc(data, initial: int = CRC_INITIAL) -> int:
    """LVM's CRC-32: zlib's polynomial with LVM's seed and no final XOR."""
    return zlib.crc32(data, initial ^ 0xFFFFFFFF) ^ 0xFFFFFFFF


class OnDiskError(Exception):
    """Base of all binary parse errors: where, what was expected, what was found."""

    what = "on-disk structure"

    def __init__(self, device: str, offset: int, expected, got, detail: str = ""):
        self.device = device
        self.offset = offset
        self.expected = expected
        self.got = got
        self.detail = detail
        super().__init__(str(self))

    def __str__(self):
        text = (f"{self.device}: {self.what} at offset {self.offset}: "
                f"expected {self.expected}, got {self.got}")
        return f"{text} ({self.detail})" if self.detail else text


class TruncatedError(OnDiskError):
    what = "short read"


class NoLabelError(OnDiskError):
    what = "LVM2 label"


class LabelError(OnDiskError):
    what = "LVM2 label"


class LabelChecksumError(LabelError):
    what = "label checksum"


class PVHeaderError(OnDiskError):
    what = "pv_header"


class MdaHeaderError(OnDiskError):
    what = "metadata area header"


class MdaChecksumError(MdaHeaderError):
    what = "metadata area header checksum"


class MdaLocationError(MdaHeaderError):
    what = "metadata location"


class TextChecksumError(OnDiskError):
    what = "metadata text checksum"


# Checksum errors are what a read racing a writer on another node produces:
# worth re-reading before calling the copy corrupt.
RETRYABLE = (LabelChecksumError, MdaChecksumError, TextChecksumError, MdaLocationError)


class Area(NamedTuple):
    offset: int
    size: int


class Label(NamedTuple):
    sector: int
    pv_uuid: str                     # 32 characters, no dashes
    device_size: int
    data_areas: Tuple[Area, ...]
    metadata_areas: Tuple[Area, ...]
    ext_version: int = 0
    ext_flags: int = 0


class RawLocn(NamedTuple):
    offset: int                      # relative to the area start
    size: int
    checksum: int
    flags: int

    @property
    def ignored(self) -> bool:
        return bool(self.flags & RAW_LOCN_IGNORED)


class MdaHeader(NamedTuple):
    start: int
    size: int
    committed: Optional[RawLocn]     # None: the area holds no VG (orphan PV)
    ignored: bool = False            # pvchange --metadataignore y


def format_uuid(raw: str) -> str:
    """The 32-char on-disk id in the 6-4-4-4-4-4-6 dashed form the text uses."""
    if len(raw) != ID_LEN:
        return raw
    # Written out: called for every PV in every scan, several times.
    return "-".join((raw[0:6], raw[6:10], raw[10:14], raw[14:18], raw[18:22], raw[22:26], raw[26:32]))


def _read_locn_list(buf: bytes, pos: int, end: int, device: str, base: int, what: str):
    areas: List[Area] = []
    while True:
        if pos + DISK_LOCN.size > end:
            raise PVHeaderError(device, base + pos, f"{what} list ended by a zero entry",
                                "list running past the sector")
        offset, size = DISK_LOCN.unpack_from(buf, pos)
        pos += DISK_LOCN.size
        if offset == 0:
            return tuple(areas), pos
        areas.append(Area(offset, size))


def find_label(buf: bytes, device: str) -> Label:
    """Finds and parses the label in the first 2 KiB of a device.

    Raises NoLabelError when no sector carries LABELONE (not a PV)."""
    if len(buf) < LABEL_AREA:
        raise TruncatedError(device, 0, f"{LABEL_AREA} bytes", f"{len(buf)} bytes")
    for sector in range(LABEL_SCAN_SECTORS):
        if buf[sector * SECTOR:sector * SECTOR + len(LABEL_ID)] == LABEL_ID:
            return parse_label_sector(buf[sector * SECTOR:(sector + 1) * SECTOR], sector, device)
    raise NoLabelError(device, 0, "LABELONE in sectors 0-3", "none")


def claimed_pv_uuid(buf: bytes) -> Optional[str]:
    """The PV uuid a label in the first 2 KiB claims, read without trusting
    its checksum, so that a corrupt label is still attributed to the PV it
    belongs to.  None when no sector holds a plausible one."""
    for sector in range(LABEL_SCAN_SECTORS):
        sec = buf[sector * SECTOR:(sector + 1) * SECTOR]
        if len(sec) < SECTOR or sec[:len(LABEL_ID)] != LABEL_ID:
            continue
        offset_xl = LABEL_HEADER.unpack_from(sec, 0)[3]
        if not LABEL_HEADER.size <= offset_xl <= SECTOR - PV_HEADER_ID.size:
            continue
        raw = PV_HEADER_ID.unpack_from(sec, offset_xl)[0]
        if raw.isascii() and raw.isalnum():
            return format_uuid(raw.decode("ascii"))
    return None


def parse_label_sector(sec: bytes, sector: int, device: str) -> Label:
    base = sector * SECTOR
    if len(sec) < SECTOR:
        raise TruncatedError(device, base, f"{SECTOR} bytes", f"{len(sec)} bytes")
    ident, sector_xl, crc_xl, offset_xl, typ = LABEL_HEADER.unpack_from(sec, 0)
    if ident != LABEL_ID:
        raise NoLabelError(device, base, LABEL_ID.decode(), repr(ident))
    if sector_xl != sector:
        raise LabelError(device, base + 8, f"sector_xl {sector}", sector_xl)
    actual = crc(sec[20:SECTOR])
    if actual != crc_xl:
        raise LabelChecksumError(device, base + 16, f"{crc_xl:#010x}", f"{actual:#010x}")
    if typ != LVM2_TYPE:
        raise LabelError(device, base + 24, LVM2_TYPE.decode(), repr(typ))
    if not LABEL_HEADER.size <= offset_xl <= SECTOR - PV_HEADER_ID.size - 2 * DISK_LOCN.size:
        raise PVHeaderError(device, base + 20, "pv_header offset inside the sector", offset_xl)
    raw_uuid, dev_size = PV_HEADER_ID.unpack_from(sec, offset_xl)
    try:
        pv_uuid = raw_uuid.decode("ascii")
    except UnicodeDecodeError:
        raise PVHeaderError(device, base + offset_xl, "ASCII PV uuid", repr(raw_uuid)) from None
    if not pv_uuid.isalnum():
        raise PVHeaderError(device, base + offset_xl, "alphanumeric PV uuid", repr(pv_uuid))
    pos = offset_xl + PV_HEADER_ID.size
    data, pos = _read_locn_list(sec, pos, SECTOR, device, base, "data area")
    meta, pos = _read_locn_list(sec, pos, SECTOR, device, base, "metadata area")
    ext_version = ext_flags = 0
    # pv_header_extension is optional (old PVs): zero or absent means version 0.
    if pos + PV_HEADER_EXT.size <= SECTOR:
        ext_version, ext_flags = PV_HEADER_EXT.unpack_from(sec, pos)
    return Label(sector, pv_uuid, dev_size, data, meta, ext_version, ext_flags)


def parse_mda_header(buf: bytes, device: str, offset: int, device_size: int = 0) -> MdaHeader:
    """Parses the 512-byte header of the metadata area that starts at `offset`.

    `device_size` (when known) bounds the area: a header pointing outside
    the device is corruption, not a read to attempt."""
    if len(buf) < MDA_HEADER_SIZE:
        raise TruncatedError(device, offset, f"{MDA_HEADER_SIZE} bytes", f"{len(buf)} bytes")
    checksum, magic, version, start, size = MDA_HEADER.unpack_from(buf, 0)
    if magic != MDA_MAGIC:
        raise MdaHeaderError(device, offset + 4, repr(MDA_MAGIC.decode()), repr(magic))
    actual = crc(buf[4:MDA_HEADER_SIZE])
    if actual != checksum:
        raise MdaChecksumError(device, offset, f"{checksum:#010x}", f"{actual:#010x}")
    if version != MDA_VERSION:
        raise MdaHeaderError(device, offset + 20, f"version {MDA_VERSION}", version)
    if start != offset:
        raise MdaHeaderError(device, offset + 24, f"start {offset}", start)
    if not MDA_HEADER_SIZE < size <= MAX_MDA_SIZE:
        raise MdaHeaderError(device, offset + 32, f"area size in 513..{MAX_MDA_SIZE}", size)
    if device_size and start + size > device_size:
        raise MdaHeaderError(device, offset + 32, f"area ending by device size {device_size}",
                             start + size)
    first = MDA_HEADER.size
    roff, rsize, rsum, rflags = RAW_LOCN.unpack_from(buf, first)
    ignored = bool(rflags & RAW_LOCN_IGNORED)
    if roff == 0:
        return MdaHeader(start, size, None, ignored)
    locn = RawLocn(roff, rsize, rsum, rflags)
    # A committed location outside the ring is corruption: refuse before any
    # read or allocation is sized from it.
    if not (MDA_HEADER_SIZE <= roff < size and 0 < rsize <= size - MDA_HEADER_SIZE):
        raise MdaLocationError(device, offset + first,
                               f"text inside the area (offset < {size}, size <= {size - MDA_HEADER_SIZE})",
                               f"offset {roff} size {rsize}")
    return MdaHeader(start, size, locn, ignored)


def ring_pieces(header: MdaHeader) -> Tuple[Tuple[int, int], ...]:
    """Absolute (offset, length) pieces of the committed text in the ring.

    Text that runs past the end of the area continues right after the
    header: LVM's ring buffer wraps to start + 512."""
    locn = header.committed
    if locn is None:
        return ()
    wrap = max(0, locn.offset + locn.size - header.size)
    pieces = [(header.start + locn.offset, locn.size - wrap)]
    if wrap:
        pieces.append((header.start + MDA_HEADER_SIZE, wrap))
    return tuple(pieces)


def check_text(text: bytes, header: MdaHeader, device: str) -> bytes:
    """Verifies the committed text's checksum; returns it without the NUL."""
    locn = header.committed
    if locn is None:   # callers read text only from an area that holds a VG
        raise MdaLocationError(device, header.start, "a committed text", "none")
    if len(text) != locn.size:
        raise TruncatedError(device, header.start + locn.offset, f"{locn.size} bytes",
                             f"{len(text)} bytes")
    actual = crc(text)
    if actual != locn.checksum:
        raise TextChecksumError(device, header.start + locn.offset,
                                f"{locn.checksum:#010x}", f"{actual:#010x}")
    end = text.find(b"\0")
    return text if end < 0 else text[:end]
