"""Discovery (issue 11) without the lab: the worker's discovery phase and
the Scanner's unknown VGs, over the real fixture images (made by LVM2)."""

import os
import shutil

import pytest

from test_pvread import FIXTURES, unpack
from vgdrift import model as m
from vgdrift.disk import diskscan
from vgdrift.disk.diskscan import Plan
from vgdrift.scan import Scanner, ScanOptions


@pytest.fixture(autouse=True)
def _forget_parsed_texts():
    """diskscan.run here runs in this process: texts it parsed must not be
    served from a per-process parse cache (if pvread keeps one) to later
    tests."""
    yield
    from vgdrift.disk import pvread
    forget = getattr(pvread, "new_scan", None)
    if forget is not None:
        forget()
        forget()


def _discover(monkeypatch, paths, known=frozenset()):
    """Runs a plan with no cached VG and discovery on, over `paths` as
    the host's disks; returns the emitted (kind, observation) pairs."""
    monkeypatch.setattr(diskscan.locate, "candidate_paths", lambda patterns: [str(p) for p in paths])
    emitted = []
    diskscan.run(Plan((), (), 5.0, frozenset(), True, frozenset(known)), lambda k, o: emitted.append((k, o)))
    return emitted


def test_discovery_reads_labels_then_the_unknown_pvs_metadata(tmp_path, monkeypatch):
    simple, odd, orphan = (unpack(c, tmp_path) for c in ("simple", "oddnames", "orphan"))
    emitted = _discover(monkeypatch, [simple, odd, orphan])
    kinds = {k for k, _ in emitted}
    # Devices only discovery read are never plain heads: the cached VGs'
    # views must not depend on whether discovery ran.
    assert "head" not in kinds and "discovered" in kinds
    heads = {o.path: o for k, o in emitted if k == "discovered"}
    assert set(heads) == {str(simple), str(odd), str(orphan)}
    assert all(h.mda is not None for h in heads.values())     # each an unknown PV: its header read
    texts = [o.vg for k, o in emitted if k == "text"]
    assert len(texts) == 2 and all(t is not None for t in texts)
    # The orphan PV (labelled, in no VG) has no committed copy: no text.
    assert heads[str(orphan)].text_key is None


def test_known_pvs_get_a_label_read_only(tmp_path, monkeypatch):
    simple, odd = unpack("simple", tmp_path), unpack("oddnames", tmp_path)
    first = {o.path: o for k, o in _discover(monkeypatch, [simple, odd]) if k == "discovered"}
    known = {first[str(simple)].pv_uuid}
    emitted = _discover(monkeypatch, [simple, odd], known)
    heads = {o.path: o for k, o in emitted if k == "discovered"}
    assert heads[str(simple)].mda is None and heads[str(odd)].mda is not None
    assert len([o for k, o in emitted if k == "text"]) == 1


def test_scanner_reports_vgs_no_cache_file_describes(tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    shutil.copy(os.path.join(FIXTURES, "simple", "cache_a", "vg0"), cache / "vg0")
    for case in ("simple", "oddnames", "orphan"):
        unpack(case, tmp_path)
    options = ScanOptions(cache_dirs=(str(cache),), device_globs=(str(tmp_path / "*.img"),))
    plain = Scanner(options, isolation="fork").scan()
    assert plain.unknown_vgs == () and plain.discovered is None and plain.exit_code == 0
    result = Scanner(options._replace(discover=True), isolation="fork").scan()
    assert [v.state for v in result.vgs] == [m.IN_SYNC]
    (u,) = result.unknown_vgs
    odd_name = os.listdir(os.path.join(FIXTURES, "oddnames", "cache_a"))[0]
    assert u.name == odd_name and u.seqno > 0 and result.exit_code == 1
    assert [p.device for p in u.pvs] == [str(tmp_path / "oddnames.img")]
    # The refresh, into the cache directory vgdrift reads (not LVM's, here).
    assert u.actions[-1].command.startswith("vgcfgbackup -f ")
    # --vg and exclusions apply to discovered VGs as to cached ones.
    none = Scanner(options._replace(discover=True, exclude_vgs=(odd_name,)), isolation="fork").scan()
    assert none.unknown_vgs == () and none.exit_code == 0
    # Once cached, it is no longer unknown.
    shutil.copy(os.path.join(FIXTURES, "oddnames", "cache_a", odd_name), cache / odd_name)
    again = Scanner(options._replace(discover=True), isolation="fork").scan()
    assert again.unknown_vgs == () and again.exit_code == 0


def test_a_discovery_that_did_not_finish_is_not_none_found(tmp_path, monkeypatch):
    """check --discover whose device reader did not complete its plan
    cannot say "no unknown VG": exit 3.  serve keeps its last discovery."""
    from vgdrift import scan
    cache = tmp_path / "cache"
    cache.mkdir()
    shutil.copy(os.path.join(FIXTURES, "simple", "cache_a", "vg0"), cache / "vg0")
    unpack("simple", tmp_path)
    unpack("oddnames", tmp_path)
    options = ScanOptions(cache_dirs=(str(cache),), device_globs=(str(tmp_path / "*.img"),))
    serve_scanner = Scanner(options._replace(discovery_interval=3600.0), isolation="fork")
    first = serve_scanner.scan()
    assert len(first.unknown_vgs) == 1
    real = scan.worker.finish

    def unfinished(*args, **kwargs):
        out = real(*args, **kwargs)
        out.stats = None            # as if the backstop deadline had passed
        return out
    monkeypatch.setattr(scan.worker, "finish", unfinished)
    result = Scanner(options._replace(discover=True), isolation="fork").scan()
    assert result.exit_code == 3 and result.discovered is None
    assert [e.where for e in result.errors] == ["discovery"]
    later = serve_scanner.scan(discover=True)
    assert later.unknown_vgs == first.unknown_vgs and later.discovered == first.discovered
    assert [w.where for w in later.warnings] == ["discovery"] and later.errors == ()


def test_no_vg_is_unknown_while_the_cache_directory_cannot_be_listed(tmp_path):
    """Without the list of cached VGs every VG on the disks would look
    unknown: none is reported (the answer is unknown, exit 3)."""
    cache = tmp_path / "cache"
    cache.mkdir()
    shutil.copy(os.path.join(FIXTURES, "simple", "cache_a", "vg0"), cache / "vg0")
    unpack("simple", tmp_path)
    unpack("oddnames", tmp_path)
    options = ScanOptions(cache_dirs=(str(cache),), device_globs=(str(tmp_path / "*.img"),),
                          discovery_interval=3600.0)
    scanner = Scanner(options, isolation="fork")
    assert len(scanner.scan().unknown_vgs) == 1
    gone = options._replace(cache_dirs=(str(tmp_path / "no-such-dir"),))
    scanner.options = gone       # as a reload would, keeping the Scanner's findings
    for discover in (False, True):
        result = scanner.scan(discover=discover)
        assert result.unknown_vgs == () and result.exit_code == 3, discover
    assert Scanner(gone._replace(discover=True), isolation="fork").scan().unknown_vgs == ()
