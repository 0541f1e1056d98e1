"""Read-only, aligned O_DIRECT reads of block devices and image files.

With shared storage a buffered read can return what this node's page cache
kept from before another node's write; LVM itself reads with O_DIRECT, and
so do we.  Buffered reads are the fallback only where O_DIRECT is refused.
"""

import errno
import mmap
import os
import stat
import threading
from typing import Tuple

# 4096 satisfies both 512- and 4096-byte logical sectors (and the page
# alignment O_DIRECT wants for the buffer, which mmap gives us).
ALIGN = 4096

_O_DIRECT = getattr(os, "O_DIRECT", 0)


class DeviceError(Exception):
    """A device could not be opened or read: carries device, offset and errno."""

    def __init__(self, device: str, offset: int, err: int, what: str):
        self.device = device
        self.offset = offset
        self.errno = err
        self.what = what
        super().__init__(str(self))

    @property
    def reason(self) -> str:
        if self.errno in (errno.EACCES, errno.EPERM):
            return "permission"
        return "io_error"

    def __str__(self):
        text = f"{self.device}: {self.what} at offset {self.offset}: {os.strerror(self.errno)}"
        if self.reason == "permission":
            text += " (reading devices needs root, or the capability CAP_DAC_READ_SEARCH)"
        return text


def identity(path: str) -> Tuple[int, ...]:
    """What makes two paths the same device: the device number of a block
    device, the inode of a regular file.  Raises OSError."""
    st = os.stat(path)
    if stat.S_ISBLK(st.st_mode):
        return (0, st.st_rdev)
    if stat.S_ISREG(st.st_mode):
        return (1, st.st_dev, st.st_ino)
    raise OSError(errno.ENOTBLK, "not a block device or regular file", path)


# Each reading thread keeps one page-aligned buffer (O_DIRECT wants one)
# of up to _KEPT bytes: labels, headers and most texts are read into it
# instead of a new mmap per read.  Larger reads get a buffer of their own.
_KEPT = 64 << 10
_local = threading.local()


def _buffer(size: int) -> mmap.mmap:
    if size > _KEPT:
        return mmap.mmap(-1, size)
    buf = getattr(_local, "buf", None)
    if buf is None:
        buf = _local.buf = mmap.mmap(-1, _KEPT)
    return buf


class Peeked:
    """What peek() read, counted like a Device's reads."""
    __slots__ = ("reads", "bytes_read")

    def __init__(self, nbytes: int):
        self.reads = 1
        self.bytes_read = nbytes


def peek(path: str) -> Tuple[mmap.mmap, int]:
    """The first ALIGN bytes of a device: one O_DIRECT read into this
    thread's buffer, valid until the thread's next read.  A sweep of a
    thousand candidates, most of them no PV, pays for little more than the
    system calls.  Raises OSError for anything unusual (the caller falls
    back to Device, which knows the fallbacks and what to say)."""
    buf = _buffer(ALIGN)
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOCTTY | _O_DIRECT)
    try:
        with memoryview(buf) as view:
            return buf, os.preadv(fd, [view[:ALIGN]], 0)
    finally:
        os.close(fd)


def _align_down(n: int) -> int:
    return n - n % ALIGN


def _align_up(n: int) -> int:
    return -(-n // ALIGN) * ALIGN


class Device:
    """One open device.  `reads`/`bytes_read` count what reached the block
    layer, for the benchmark and the exporter's counters."""

    def __init__(self, path: str):
        self.path = path
        self.reads = 0
        self.bytes_read = 0
        self.direct = bool(_O_DIRECT)
        self.fd = self._open(_O_DIRECT)
        try:
            self.size = os.lseek(self.fd, 0, os.SEEK_END)
        except OSError as e:
            self.close()
            raise DeviceError(path, 0, e.errno or errno.EIO, "size") from None

    def _open(self, extra: int) -> int:
        try:
            return os.open(self.path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOCTTY | extra)
        except OSError as e:
            if extra and e.errno == errno.EINVAL:
                self.direct = False
                return self._open(0)
            raise DeviceError(self.path, 0, e.errno or errno.EIO, "open") from None

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def read(self, offset: int, length: int) -> bytes:
        """Exactly the bytes [offset, offset+length) or fewer at the end of
        the device; the window actually read is aligned outward."""
        start = _align_down(offset)
        end = min(_align_up(offset + length), _align_up(self.size)) if self.size else _align_up(offset + length)
        if end <= start:
            return b""
        size = end - start
        buf = _buffer(size)
        view = memoryview(buf)[:size]
        try:
            got = self._pread(view, start)
            skip = offset - start
            return bytes(view[skip:min(got, skip + length)]) if got > skip else b""
        finally:
            view.release()
            if size > _KEPT:
                buf.close()

    def _pread(self, view: memoryview, start: int) -> int:
        got = 0
        while got < len(view):
            try:
                n = os.preadv(self.fd, [view[got:]], start + got)
            except OSError as e:
                if e.errno == errno.EINVAL and self.direct:
                    # Some file systems accept O_DIRECT at open and refuse the read.
                    # The old descriptor is forgotten before reopening: if
                    # that fails, close() must not close it again (it may
                    # be another thread's by then).
                    fd, self.fd = self.fd, -1
                    os.close(fd)
                    self.fd = self._open(0)
                    self.direct = False
                    continue
                raise DeviceError(self.path, start + got, e.errno or errno.EIO, "read") from None
            self.reads += 1
            self.bytes_read += n
            if n == 0:
                break
            got += n
        return got
