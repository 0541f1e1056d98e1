import gzip
import os
import shutil
import stat
import subprocess
import zlib
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from samples import STARTED, T0, all_states_result, vg_report
from vgdrift import model
from vgdrift.serve.collector import (
    SCAN_DURATION_BUCKETS,
    ScanStats,
    TextfileError,
    VgdriftCollector,
    render_textfile,
    write_textfile,
)
from vgdrift.serve.main import build_exposition

GOLDEN = Path(__file__).parent / "golden" / "metrics.prom"


def registry_for(*results):
    stats = ScanStats()
    for r in results:
        stats.record(r)
    registry = CollectorRegistry(auto_describe=True)
    registry.register(VgdriftCollector(stats, version="0.0.0-test", python="3.9.0"))
    return registry, stats


def value(registry, name, **labels):
    return registry.get_sample_value(name, labels)


def test_every_vg_state_is_exported():
    registry, _ = registry_for(all_states_result())
    for current in model.VG_STATES:
        vg = "vg_" + current
        for s in model.VG_STATES:
            assert value(registry, "vgdrift_vg_state", vg=vg, state=s) == (1 if s == current else 0)
        assert value(registry, "vgdrift_vg_drift", vg=vg) == (1 if current in model.DRIFT_STATES else 0)
        assert value(registry, "vgdrift_vg_seqno", vg=vg, source="cache") == 10
        assert value(registry, "vgdrift_vg_mtime_seconds", vg=vg, source="cache") == T0
        assert value(registry, "vgdrift_vg_scan_duration_seconds", vg=vg) == 0.004
        report = vg_report(current)
        for s in model.PV_STATES:
            assert value(registry, "vgdrift_vg_pvs", vg=vg, state=s) == report.pv_counts()[s]
        if report.disk is None:
            assert value(registry, "vgdrift_vg_seqno", vg=vg, source="disk") is None
            assert value(registry, "vgdrift_vg_mtime_seconds", vg=vg, source="disk") is None
        else:
            assert value(registry, "vgdrift_vg_seqno", vg=vg, source="disk") == report.disk.seqno
            assert value(registry, "vgdrift_vg_mtime_seconds", vg=vg, source="disk") == report.disk.mtime
        # vg_uuid joins VGs across nodes: the disk's VG id (another VG's
        # under uuid_mismatch), the cached id without a disk copy.
        join = report.disk.uuid if report.disk is not None else "UUID-" + vg
        assert join == ("UUID-recreated" if current == model.UUID_MISMATCH else "UUID-" + vg)
        info = dict(vg=vg, vg_uuid=join, cache_host="nodeb",
                    disk_host="" if report.disk is None else "nodea", system_id=report.system_id)
        assert value(registry, "vgdrift_vg_info", **info) == 1


def test_drift_seconds_only_while_drifted():
    registry, _ = registry_for(all_states_result())
    assert value(registry, "vgdrift_vg_drift_seconds", vg="vg_drift") == 300
    assert value(registry, "vgdrift_vg_drift_seconds", vg="vg_cache_ahead") == -60
    assert value(registry, "vgdrift_vg_drift_seconds", vg="vg_uuid_mismatch") == 7
    for s in (model.IN_SYNC, model.PARTIAL, model.MISSING, model.INCONSISTENT, model.UNREADABLE):
        assert value(registry, "vgdrift_vg_drift_seconds", vg="vg_" + s) == 0


def test_scan_counters_accumulate():
    first = all_states_result()
    second = all_states_result(duration_seconds=12.0, errors=(
        model.ErrorItem(model.REASON_CACHE, "/etc/lvm/backup/x", "garbage"),
        model.ErrorItem("something_new", "?", "unexpected reason")), reads=4, read_bytes=100,
        unknown=True)
    registry, _ = registry_for(first, second)
    assert value(registry, "vgdrift_scans_total") == 2
    assert value(registry, "vgdrift_scan_errors_total", reason="io_error") == 2
    assert value(registry, "vgdrift_scan_errors_total", reason="timeout") == 1
    assert value(registry, "vgdrift_scan_errors_total", reason="cache") == 1
    assert value(registry, "vgdrift_scan_errors_total", reason="internal") == 1   # unknown reason
    assert value(registry, "vgdrift_scan_errors_total", reason="something_new") is None
    assert value(registry, "vgdrift_device_reads_total") == 40
    assert value(registry, "vgdrift_device_read_bytes_total") == 36 * 4096 + 100
    assert value(registry, "vgdrift_scan_duration_seconds_count") == 2
    assert value(registry, "vgdrift_scan_duration_seconds_sum") == pytest.approx(12.042)
    assert value(registry, "vgdrift_scan_duration_seconds_bucket", le="0.05") == 1
    assert value(registry, "vgdrift_scan_duration_seconds_bucket", le="10.0") == 1
    assert value(registry, "vgdrift_scan_duration_seconds_bucket", le="30.0") == 2
    assert value(registry, "vgdrift_scan_duration_seconds_bucket", le="+Inf") == 2
    assert value(registry, "vgdrift_last_scan_timestamp_seconds") == STARTED + 12.0
    assert value(registry, "vgdrift_last_scan_success") == 0


def test_before_the_first_scan():
    registry, stats = registry_for()
    assert not stats.ready
    assert value(registry, "vgdrift_scans_total") == 0
    for reason in model.ERROR_REASONS:
        assert value(registry, "vgdrift_scan_errors_total", reason=reason) == 0
    assert value(registry, "vgdrift_build_info", version="0.0.0-test", python="3.9.0") == 1
    assert value(registry, "vgdrift_last_scan_timestamp_seconds") is None
    assert b"vgdrift_vg_state{" not in generate_latest(registry)


def test_failed_scan_keeps_the_previous_vgs():
    registry, stats = registry_for(all_states_result())
    stats.record_failure(STARTED + 60, 0.5)
    assert stats.ready
    assert value(registry, "vgdrift_last_scan_success") == 0
    assert value(registry, "vgdrift_last_scan_timestamp_seconds") == STARTED + 60.5
    assert value(registry, "vgdrift_scan_errors_total", reason="internal") == 1
    assert value(registry, "vgdrift_vg_drift", vg="vg_drift") == 1


def test_duplicate_vg_names_keep_the_first():
    result = all_states_result(vgs=(vg_report(model.DRIFT, name="vg0"),
                                    vg_report(model.IN_SYNC, name="vg0")))
    registry, _ = registry_for(result)
    assert value(registry, "vgdrift_vg_state", vg="vg0", state="drift") == 1
    assert generate_latest(registry).count(b'vgdrift_vg_drift{vg="vg0"}') == 1


def test_describe_names_every_family():
    stats = ScanStats()
    stats.record(all_states_result())
    collector = VgdriftCollector(stats)
    described = {m.name for m in collector.describe()}
    collected = {m.name for m in collector.collect()}
    assert described == collected
    registry = CollectorRegistry()
    registry.register(collector)
    with pytest.raises(ValueError):      # names known up front: duplicates are refused
        registry.register(VgdriftCollector(ScanStats()))


def test_bucket_bounds_cover_1ms_to_60s():
    assert SCAN_DURATION_BUCKETS[0] == 0.001 and SCAN_DURATION_BUCKETS[-1] == 60
    assert list(SCAN_DURATION_BUCKETS) == sorted(set(SCAN_DURATION_BUCKETS))


def golden_exposition():
    registry, _ = registry_for(all_states_result())
    return generate_latest(registry)


def test_golden_exposition():
    text = golden_exposition()
    if os.environ.get("VGDRIFT_UPDATE_GOLDEN"):
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_bytes(text)
    assert text.decode() == GOLDEN.read_text()


def promtool_check(text: bytes):
    promtool = shutil.which("promtool")
    assert promtool, "promtool is required (apt install prometheus)"
    proc = subprocess.run([promtool, "check", "metrics"], input=text,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
    assert proc.returncode == 0, proc.stdout.decode()
    assert proc.stdout.strip() == b"", proc.stdout.decode()     # no lint warnings either


def test_promtool_accepts_the_golden_file():
    promtool_check(GOLDEN.read_bytes())


def vg_part(body):
    """The exposition without the per-request process_* families."""
    live = (b"process_", b"# HELP process", b"# TYPE process")
    return [line for line in body.splitlines() if not line.startswith(live)]


def test_promtool_accepts_the_serve_exposition_in_both_formats_and_gzip():
    stats = ScanStats()
    stats.record(all_states_result())
    expo = build_exposition(stats)
    text, ctype = expo.render("", False)
    assert ctype.startswith("text/plain") and b"process_" in text and b"vgdrift_vg_state" in text
    promtool_check(text)
    om, ctype = expo.render("application/openmetrics-text; version=1.0.0", False)
    assert ctype.startswith("application/openmetrics-text")
    assert om.endswith(b"# EOF\n") and om.count(b"# EOF") == 1
    for accept, plain in (("", text), ("application/openmetrics-text; version=1.0.0", om)):
        body, _ = expo.render(accept, True)
        unzipped = gzip.decompress(body)
        # One gzip member (not two glued together): some clients read only the first.
        assert zlib.decompressobj(31).decompress(body) == unzipped
        assert vg_part(unzipped) == vg_part(plain)


def test_exposition_cache_follows_scans():
    stats = ScanStats()
    stats.record(all_states_result())
    expo = build_exposition(stats)
    first, _ = expo.render("", False)
    assert expo.render("", False)[0].split(b"# HELP process")[0] == first.split(b"# HELP process")[0]
    stats.record(all_states_result())
    assert b"vgdrift_scans_total 2.0" in expo.render("", False)[0]


@pytest.mark.parametrize("accept", ["", "application/openmetrics-text; version=1.0.0"])
def test_exposition_renders_each_changed_family_again_and_reuses_the_rest(accept):
    """Family by family, with the unchanged ones' text kept from the last
    scan: byte for byte what prometheus_client renders of the whole
    registry, scan after scan, whatever changed."""
    from prometheus_client.exposition import choose_encoder
    encoder, ctype = choose_encoder(accept)
    stats = ScanStats()
    expo = build_exposition(stats)
    results = [all_states_result(),
               all_states_result(),     # only the scan counters change
               all_states_result(vgs=tuple(vg_report(s, duration=0.5) for s in model.VG_STATES)),
               all_states_result(vgs=(vg_report(model.DRIFT, name="vg_in_sync"),) +
                                 tuple(vg_report(s) for s in model.VG_STATES[1:])),
               all_states_result(vgs=())]
    before: dict = {}
    for result in results:
        stats.record(result)
        whole = encoder(expo.scan_registry)
        got = expo.render(accept, False)[0]
        assert got.startswith(whole[:-len(b"# EOF\n")] if whole.endswith(b"# EOF\n") else whole)
        now = {name: text for name, (_, text) in expo._families[ctype].items()}
        for name, text in now.items():
            if name in before and before[name] == text:
                assert text is before[name], name         # reused, not rendered again
        before = now
    # A scan like the last changes only the scan's own families: the VG ones are reused.
    stats.record(results[0])
    expo.render(accept, False)
    kept = {name: text for name, (_, text) in expo._families[ctype].items()}
    stats.record(results[0])
    expo.render(accept, False)
    again = {name: text for name, (_, text) in expo._families[ctype].items()}
    assert again["vgdrift_vg_state"] is kept["vgdrift_vg_state"]
    assert again["vgdrift_scans"] is not kept["vgdrift_scans"]     # a counter family drops _total


def test_write_textfile(tmp_path):
    target = tmp_path / "vgdrift.prom"
    target.write_text("old")
    result = all_states_result()
    write_textfile(str(target), result)
    assert target.read_bytes() == render_textfile(result)
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    assert os.listdir(tmp_path) == ["vgdrift.prom"]          # no temp file left


@pytest.mark.parametrize("make_target", [
    lambda d: d / "missing-dir" / "vgdrift.prom",
    lambda d: (d / "a-directory").mkdir() or d / "a-directory",
])
def test_write_textfile_failure_is_one_line(tmp_path, make_target):
    target = make_target(tmp_path)
    before = sorted(os.listdir(tmp_path))
    with pytest.raises(TextfileError) as err:
        write_textfile(str(target), all_states_result())
    message = str(err.value)
    assert "\n" not in message and str(target) in message
    assert sorted(os.listdir(tmp_path)) == before


def test_warm_renders_the_formats_scrapers_used():
    stats = ScanStats()
    stats.record(all_states_result())
    expo = build_exposition(stats)
    expo.warm()                                  # nobody asked yet: nothing to do
    assert expo._cache == {}
    om = "application/openmetrics-text; version=1.0.0"
    expo.render(om, True)
    stats.record(all_states_result())
    expo.warm()
    assert [(k[1].split(";")[0], k[2]) for k in expo._cache] == [("application/openmetrics-text", True)]
    assert all(k[0] == stats.generation for k in expo._cache)


def test_readiness_metrics():
    registry, _ = registry_for(all_states_result())
    for reason in model.BLOCK_REASONS:            # every reason, for every VG
        for s in model.VG_STATES:
            expect = 1 if (s, reason) == (model.BLOCKED, model.BlockReason.DEVICES_FILE) else 0
            assert value(registry, "vgdrift_vg_blocked", vg="vg_" + s, reason=str(reason)) == expect
    assert value(registry, "vgdrift_vg_autoactivation", vg="vg_drift") == 1
    assert value(registry, "vgdrift_vg_autoactivation", vg="vg_in_sync") == 0
    assert value(registry, "vgdrift_vg_owned", vg="vg_conflict") == 0
    # Unknown is absent, not 0 (no disk copy was read for a missing VG).
    assert value(registry, "vgdrift_vg_autoactivation", vg="vg_missing") is None
    assert value(registry, "vgdrift_vg_owned", vg="vg_missing") is None
    assert value(registry, "vgdrift_node_lvm_info", use_devicesfile="1", system_id_source="lvmlocal",
                 local_system_id="nodeb") == 1
    unknown = model.NodeLVMInfo("/etc/lvm", None, None, "appmachineid", None)
    registry, _ = registry_for(all_states_result(lvm=unknown))
    assert value(registry, "vgdrift_node_lvm_info", use_devicesfile="unknown",
                 system_id_source="appmachineid", local_system_id="unknown") == 1
