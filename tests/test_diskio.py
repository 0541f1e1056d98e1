"""Aligned, read-only reads of devices and image files."""

import errno
import os

import pytest

from vgdrift.disk import diskio


def test_unaligned_ranges_come_back_exact(tmp_path):
    path = tmp_path / "img"
    data = os.urandom(3 * 4096 + 100)            # not a multiple of the alignment
    path.write_bytes(data)
    with diskio.Device(str(path)) as dev:
        assert dev.size == len(data)
        assert dev.read(5000, 10) == data[5000:5010]
        assert dev.read(4095, 2) == data[4095:4097]
        assert dev.read(len(data) - 50, 500) == data[-50:]      # short at the end
        assert dev.read(len(data) + 4096, 10) == b""
        assert dev.reads >= 4 and dev.bytes_read % 4096 in (0, len(data) % 4096)


def test_opened_read_only(tmp_path):
    path = tmp_path / "img"
    path.write_bytes(b"x" * 4096)
    with diskio.Device(str(path)) as dev:
        with pytest.raises(OSError):
            os.write(dev.fd, b"y")
    assert path.read_bytes() == b"x" * 4096


def test_errors_name_device_and_reason(tmp_path):
    with pytest.raises(diskio.DeviceError) as e:
        diskio.Device(str(tmp_path / "absent"))
    assert e.value.errno == errno.ENOENT and e.value.reason == "io_error"
    assert str(e.value).startswith(f"{tmp_path}/absent: open at offset 0: ")


def test_identity_of_files_and_links(tmp_path):
    a = tmp_path / "a"
    a.write_bytes(b"1")
    os.symlink(a, tmp_path / "link")
    assert diskio.identity(str(a)) == diskio.identity(str(tmp_path / "link"))
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(OSError):                 # opening a FIFO would block: never a candidate
        diskio.identity(str(fifo))


def test_failed_reopen_after_o_direct_einval_closes_nothing_twice(tmp_path, monkeypatch):
    """Some file systems accept O_DIRECT at open and refuse the read with
    EINVAL: the descriptor is closed and the file reopened.  When reopening
    fails, the old descriptor number must not be closed again (by then it
    may be another thread's)."""
    path = tmp_path / "img"
    path.write_bytes(b"x" * 8192)
    dev = diskio.Device(str(path))
    dev.direct = True
    old_fd = dev.fd
    closed = []
    real_close = os.close

    def preadv(fd, bufs, offset):
        del bufs   # as the C function: the traceback must not keep the buffer exported
        raise OSError(errno.EINVAL, "Invalid argument")

    def open_fails(path, flags, *args):
        raise OSError(errno.EIO, "Input/output error")

    def close(fd):
        closed.append(fd)
        real_close(fd)
    monkeypatch.setattr(os, "preadv", preadv)
    monkeypatch.setattr(os, "open", open_fails)
    monkeypatch.setattr(os, "close", close)
    with pytest.raises(diskio.DeviceError) as e:
        dev.read(0, 10)
    assert e.value.errno == errno.EIO
    dev.close()
    assert closed == [old_fd] and dev.fd == -1


def test_permission_error_says_what_is_needed():
    err = diskio.DeviceError("/dev/sdq", 0, errno.EACCES, "open")
    assert err.reason == "permission"
    assert str(err) == ("/dev/sdq: open at offset 0: Permission denied (reading devices needs root, "
                        "or the capability CAP_DAC_READ_SEARCH)")
    assert "CAP_DAC" not in str(diskio.DeviceError("/dev/sdq", 0, errno.EIO, "read"))


def test_reused_read_buffer_never_shows_an_earlier_read(tmp_path):
    """Each thread reads into one kept buffer (issue 13): a short read at
    the end of a device after a long one, and reads larger than the kept
    buffer, come back exact."""
    big = tmp_path / "big"
    data = os.urandom(diskio._KEPT * 2 + 123)
    big.write_bytes(data)
    small = tmp_path / "small"
    tail = os.urandom(4096 + 7)
    small.write_bytes(tail)
    with diskio.Device(str(big)) as dev:
        assert dev.read(0, len(data)) == data                  # larger than the kept buffer
        assert dev.read(0, 8192) == data[:8192]
    with diskio.Device(str(small)) as dev:
        assert dev.read(0, 65536) == tail                      # short: nothing of `data` after it
        assert dev.read(4096, 4096) == tail[4096:]
