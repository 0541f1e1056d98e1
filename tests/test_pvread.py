"""Reading one PV: the retry rule, and an unexpected error while reading one
device staying that device's observation (reason internal) instead of
ending the whole worker."""

import gzip
import os
import shutil

import pytest

from vgdrift import model as m
from vgdrift.disk import ondisk, pvread
from vgdrift.scan import Scanner, ScanOptions

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")


def unpack(case, dest):
    path = dest / f"{case}.img"
    with gzip.open(os.path.join(FIXTURES, case, "pv0.img.gz")) as f:
        path.write_bytes(f.read())
    return path


@pytest.fixture
def no_sleep(monkeypatch):
    slept = []
    monkeypatch.setattr(pvread.time, "sleep", slept.append)
    return slept


def test_retrying_retries_only_the_given_errors_then_raises_the_last(no_sleep):
    calls, between = [], []

    def torn():
        calls.append(1)
        raise ondisk.TextChecksumError("d", 0, 1, len(calls))
    with pytest.raises(ondisk.TextChecksumError) as e:
        pvread.retrying(torn, ondisk.RETRYABLE, between.append)
    assert len(calls) == len(pvread.RETRY_DELAYS) + 1 and e.value.got == len(calls)
    assert no_sleep == list(pvread.RETRY_DELAYS) and len(between) == len(pvread.RETRY_DELAYS)

    def corrupt():
        calls.append(1)
        raise ondisk.MdaHeaderError("d", 0, 1, 2)      # not a torn read: no retry
    calls.clear()
    with pytest.raises(ondisk.MdaHeaderError):
        pvread.retrying(corrupt, ondisk.RETRYABLE)
    assert len(calls) == 1

    answers = iter([ondisk.LabelChecksumError("d", 0, 1, 2), "ok"])

    def second_time():
        a = next(answers)
        if isinstance(a, Exception):
            raise a
        return a
    assert pvread.retrying(second_time, ondisk.RETRYABLE) == "ok"


def _head(path):
    return pvread.read_head(str(path), ("t", str(path)), pvread.HEAD_READ, None, lambda dev: None, 0.0)


def test_an_exception_reading_a_label_is_that_device_internal_error(tmp_path, monkeypatch):
    img = unpack("simple", tmp_path)

    def bug(*args):
        raise ValueError("boom")
    monkeypatch.setattr(ondisk, "find_label", bug)
    head = _head(img)
    assert head.reason == m.REASON_INTERNAL and head.label is None
    assert head.error == f"{img}: internal error: ValueError: boom"


def test_an_exception_after_the_label_keeps_the_pv(tmp_path, monkeypatch):
    img = unpack("simple", tmp_path)

    def bug(*args):
        raise OverflowError("huge")
    monkeypatch.setattr(ondisk, "parse_mda_header", bug)
    head = _head(img)
    assert head.reason == m.REASON_INTERNAL and head.pv_uuid is not None and "OverflowError: huge" in head.error


def test_an_exception_parsing_a_text_is_that_copy_internal_error(tmp_path, monkeypatch):
    img = unpack("simple", tmp_path)
    head = _head(img)
    assert head.reason is None and head.text_key is not None

    def bug(*args):
        raise ValueError("Exceeds the limit (4300 digits)")
    monkeypatch.setattr(pvread, "parse_vg", bug)
    head2, text = pvread.read_text(head, lambda dev: None, 0.0)
    assert text.vg is None and text.reason == m.REASON_INTERNAL and text.key == head.text_key
    assert "ValueError: Exceeds the limit" in text.error and str(img) in text.error


def test_one_device_failing_unexpectedly_leaves_other_vgs_alone(tmp_path, monkeypatch):
    """In the worker, a bug while reading one device makes that PV
    unreadable (reason internal), the other VG is read as usual, and the
    answer as a whole is unknown (exit 3)."""
    cache = tmp_path / "cache"
    cache.mkdir()
    shutil.copy(os.path.join(FIXTURES, "simple", "cache_a", "vg0"), cache / "vg0")
    odd = os.listdir(os.path.join(FIXTURES, "oddnames", "cache_a"))[0]
    shutil.copy(os.path.join(FIXTURES, "oddnames", "cache_a", odd), cache / odd)
    bad = unpack("simple", tmp_path)
    unpack("oddnames", tmp_path)
    real = pvread.parse_vg

    def parse_vg(text, source):
        if source.startswith(str(bad)):
            raise ValueError("boom")
        return real(text, source)
    monkeypatch.setattr(pvread, "parse_vg", parse_vg)   # the forked worker inherits it
    result = Scanner(ScanOptions(cache_dirs=(str(cache),), device_globs=(str(tmp_path / "*.img"),)),
                     isolation="fork").scan()
    states = {vg.name: vg for vg in result.vgs}
    assert states[odd].state == m.IN_SYNC
    vg0 = states["vg0"]
    assert vg0.state == m.UNREADABLE and vg0.pvs[0].state == m.PV_UNREADABLE
    assert "internal error: ValueError: boom" in vg0.pvs[0].error
    assert result.exit_code == 3
    assert [e.reason for e in result.errors] == [m.REASON_INTERNAL] and str(bad) in result.errors[0].where


def test_long_lived_worker_parses_a_text_once_and_still_reads_it(tmp_path, monkeypatch):
    """serve's worker (keep_parsed) skips parsing a text it parsed in the
    last scan; the text is still read, and its checksum checked, each time."""
    img = unpack("simple", tmp_path)
    head = _head(img)
    monkeypatch.setattr(pvread, "_keep", True)
    monkeypatch.setattr(pvread, "_parsed", {})
    monkeypatch.setattr(pvread, "_parsed_before", {})
    calls, checked, reads = [], [], []
    real_parse, real_check = pvread.parse_vg, pvread.ondisk.check_text
    monkeypatch.setattr(pvread, "parse_vg", lambda text, source: calls.append(1) or real_parse(text, source))
    monkeypatch.setattr(pvread.ondisk, "check_text", lambda *a: checked.append(1) or real_check(*a))
    for _ in range(2):
        pvread.new_scan()
        _, text = pvread.read_text(head, lambda dev: reads.append(dev.reads), 0.0)
        assert text.vg is not None and text.vg.name == "vg0"
    assert len(calls) == 1 and len(checked) == 2 and len(reads) == 2 and all(reads)
    pvread.new_scan()
    pvread.new_scan()       # not seen for a whole scan: forgotten
    pvread.read_text(head, lambda dev: None, 0.0)
    assert len(calls) == 2


class _Count:
    def __init__(self):
        self.reads = self.bytes_read = 0

    def __call__(self, dev):
        self.reads += dev.reads
        self.bytes_read += dev.bytes_read


def test_label_sweep_reads_4k_once_and_agrees_with_read_head(tmp_path):
    """read_label_area (candidate sweeps): a device without a label costs
    one 4 KiB read and is no PV; a PV's label comes out as read_head's,
    from the same single read, and its header (when wanted) with one more."""
    blank = tmp_path / "blank.img"
    blank.write_bytes(b"\0" * (1 << 20))
    count = _Count()
    obs = pvread.read_label_area(str(blank), (1, 1), frozenset(), count, 0.0)
    assert obs.reason == pvread.NOT_PV and obs.label is None and (count.reads, count.bytes_read) == (1, 4096)

    pv = unpack("simple", tmp_path)
    count = _Count()
    swept = pvread.read_label_area(str(pv), (1, 2), frozenset(), count, 0.0)
    plain = pvread.read_head(str(pv), (1, 2), pvread.LABEL_READ, frozenset(), _Count(), 0.0)
    assert swept.label is not None and swept.label == plain.label and swept.mda is None
    assert swept._replace(elapsed=0.0) == plain._replace(elapsed=0.0) and count.reads == 1
    count = _Count()
    wanted = pvread.read_label_area(str(pv), (1, 2), None, count, 0.0)
    assert wanted.mda is not None and wanted.reason is None and count.reads == 2


def test_label_sweep_of_odd_devices_says_what_read_head_says(tmp_path):
    """Short, missing and unreadable devices: the sweep falls back to
    read_head, which names the device and the reason."""
    short = tmp_path / "short.img"
    short.write_bytes(b"LABELONE")
    assert pvread.read_label_area(str(short), (1, 3), frozenset(), _Count(), 0.0).reason == pvread.NOT_PV
    gone = pvread.read_label_area(str(tmp_path / "gone.img"), (1, 4), frozenset(), _Count(), 0.0)
    assert gone.reason == "io_error" and "gone.img" in gone.error
    d = tmp_path / "dir.img"
    d.mkdir()
    odd = pvread.read_label_area(str(d), (1, 5), frozenset(), _Count(), 0.0)
    assert odd.reason is not None and odd.label is None
