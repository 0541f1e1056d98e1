"""`vgdrift serve` against real LVM2 in the two-node lab, over real HTTP.

The exporter runs as a real `python3 -m vgdrift serve` subprocess with node
B's view (its backup dir as the cache, its loops given with --devices, so
node A's loops over the same images are never read); node A changes the VGs
with real LVM commands.  Every exporter is terminated in teardown before the
lab is torn down (fixture order), and any FUSE disk is unblocked before the
readers it held are waited for.
"""

import os
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from helpers import free_port, local_get, sha256_files, stop_process
from lab import make_vg

EXPORTER = Path(__file__).resolve().parent.parent / "exporter"

# Restated rather than imported: a change to the exported label set must
# break this test.
VG_STATES = ("in_sync", "drift", "cache_ahead", "conflict", "uuid_mismatch", "partial", "blocked",
             "missing", "inconsistent", "unreadable", "unknown")
INTERVAL = 1.0          # --scan.interval of every exporter here
TIMEOUT = 2.0           # --timeout


# ------------------------------------------------------------------ helpers

def write_config(path, lab, port, vgs):
    """A config file for node B's exporter on `port` with the `vgs:`
    section given (a YAML line, or "" for every VG), scanning every second
    (timeout 2 s): what the SIGHUP tests rewrite and reload."""
    devices = "".join("\n  - %s" % d for d in lab.b.devices)
    path.write_text("cache_dirs: [%s]\ndevices:%s\n%s\nscan: {interval: 1s, timeout: 2s}\n"
                    "web: {listen_address: '127.0.0.1:%d'}\n"
                    % (lab.b.backup_dir, devices, vgs, port))


def loop_writes(dev):
    """Write I/Os completed on a block device (/sys/block/X/stat field 5)."""
    return int(Path(f"/sys/block/{Path(dev).name}/stat").read_text().split()[4])


class Metrics(dict):
    """{(sample name, frozenset(labels)): value} of one scrape."""

    def get1(self, name, **labels):
        return self.get((name, frozenset(labels.items())))

    def vgs(self):
        return {dict(k[1])["vg"] for k in self if k[0] == "vgdrift_vg_state"}

    def states(self, vg):
        """{state: value} of vgdrift_vg_state for `vg` ({} if absent)."""
        return {dict(k[1])["state"]: v for k, v in self.items()
                if k[0] == "vgdrift_vg_state" and dict(k[1])["vg"] == vg}

    def state(self, vg):
        """The VG's state, after checking that vgdrift_vg_state is one-hot
        over every state; None when the VG is not exported."""
        states = self.states(vg)
        if not states:
            return None
        assert set(states) == set(VG_STATES), states
        assert sorted(states.values()) == [0.0] * (len(VG_STATES) - 1) + [1.0], states
        (state,) = [s for s, v in states.items() if v == 1.0]
        return state

    def errors(self, reason):
        return self.get1("vgdrift_scan_errors_total", reason=reason)


def parse(body):
    m = Metrics()
    for family in text_string_to_metric_families(body.decode()):
        for s in family.samples:
            m[(s.name, frozenset(s.labels.items()))] = s.value
    return m


class Serve:
    """One `vgdrift serve` subprocess."""

    def __init__(self, lab, logdir, config_file=None, port=None, interval=INTERVAL):
        self.port = port or free_port()
        cmd = [sys.executable, "-m", "vgdrift", "serve"]
        if config_file:
            cmd += ["--config.file", str(config_file)]
        else:
            cmd += ["--cache-dir", str(lab.b.backup_dir)]
            for dev in lab.b.devices:
                cmd += ["--devices", dev]
            cmd += ["--web.listen-address", "127.0.0.1:%d" % self.port,
                    "--scan.interval", "%dms" % round(interval * 1000), "--timeout", "%g" % TIMEOUT]
        self.stderr_path = Path(logdir) / ("serve-%d.log" % self.port)
        self.workers = set()        # every child pid ever seen
        with open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                         stderr=err, env=dict(os.environ, PYTHONPATH=str(EXPORTER)))

    @property
    def pid(self):
        return self.proc.pid

    @property
    def stderr(self):
        return self.stderr_path.read_text()

    def get(self, path, timeout=5.0):
        return local_get(self.port, path, timeout)

    def scrape(self):
        """(Metrics, seconds the scrape took)."""
        t = time.monotonic()
        status, body = self.get("/metrics")
        elapsed = time.monotonic() - t
        assert status == 200, body
        return parse(body), elapsed

    def metrics(self):
        return self.scrape()[0]

    def wait_ready(self, timeout=20.0):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, "serve exited %s: %s" % (self.proc.returncode, self.stderr)
            try:
                last = self.get("/-/ready")
                if last[0] == 200:
                    return
            except OSError as e:
                last = e
            time.sleep(0.05)
        pytest.fail("/-/ready never answered 200: %r\n%s" % (last, self.stderr))

    def wait_for(self, predicate, timeout, what, every=0.1):
        """Scrapes until predicate(metrics) is true; returns those metrics."""
        deadline = time.monotonic() + timeout
        m = None
        while True:
            m = self.metrics()
            if predicate(m):
                return m
            if time.monotonic() > deadline:
                pytest.fail("%s: not within %gs; last scrape: %s\n%s"
                            % (what, timeout, summary(m), self.stderr))
            time.sleep(every)

    def threads(self):
        for line in Path("/proc/%d/status" % self.pid).read_text().splitlines():
            if line.startswith("Threads:"):
                return int(line.split()[1])
        raise AssertionError("no Threads: line")

    def children(self):
        """Pids whose parent is the exporter (workers, zombies included)."""
        kids = set()
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                line = Path("/proc/%s/stat" % entry).read_text()
            except OSError:
                continue
            if int(line.rsplit(")", 1)[1].split()[1]) == self.pid:
                kids.add(int(entry))
        self.workers |= kids
        return kids

    def stop(self, signum=signal.SIGTERM, timeout=30.0):
        """(exit status, seconds it took to exit)."""
        t = time.monotonic()
        self.proc.send_signal(signum)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            code = None
        return code, time.monotonic() - t

    def kill(self):
        stop_process(self.proc)


def summary(m):
    if m is None:
        return "none"
    return {vg: (m.state(vg), m.get1("vgdrift_vg_seqno", vg=vg, source="cache"),
                 m.get1("vgdrift_vg_seqno", vg=vg, source="disk")) for vg in sorted(m.vgs())}


def alive(pid):
    """Some thread of `pid` has not exited yet.  A worker whose main thread
    returned while another is stuck in a read shows as a zombie leader with
    a live (D state) thread."""
    try:
        tasks = os.listdir("/proc/%d/task" % pid)
    except OSError:
        return False
    for tid in tasks:
        try:
            line = Path("/proc/%d/task/%s/stat" % (pid, tid)).read_text()
        except OSError:
            continue
        if line.rsplit(")", 1)[1].split()[0] not in ("Z", "X"):
            return True
    return False


def stuck_on(s, device):
    """The exporter's workers holding `device` open: with the exporter's
    long-lived worker (issue 13) always alive, a worker blocked on a hung
    device is told apart by the device it holds, not by being alive."""
    return {pid for pid in s.children() if alive(pid) and device in {d for d, _ in device_fds([pid])}}


def device_fds(pids):
    """[(device path, open flags)] of the block devices `pids` hold open,
    looked up through every live thread (a zombie leader has no fd table)."""
    out = []
    for pid in pids:
        try:
            tids = os.listdir("/proc/%d/task" % pid)
        except OSError:
            continue
        for tid in tids:
            fddir = "/proc/%d/task/%s/fd" % (pid, tid)
            try:
                fds = os.listdir(fddir)
            except OSError:
                continue
            for fd in fds:
                try:
                    target = os.readlink("%s/%s" % (fddir, fd))
                    info = Path("/proc/%d/task/%s/fdinfo/%s" % (pid, tid, fd)).read_text()
                except OSError:
                    continue
                if target.startswith("/dev/") and stat.S_ISBLK(os.stat(target).st_mode):
                    flags = int(next(line.split()[1] for line in info.splitlines()
                                     if line.startswith("flags:")), 8)
                    out.append((target, flags))
            if fds:
                break                       # threads share one fd table
    return out


@pytest.fixture
def serve(lab, tmp_path):
    """serve(config_file=None) -> a running Serve over node B's view.

    Teardown runs before the lab's (this fixture depends on `lab`):
    terminate every exporter, unblock FUSE, then wait for the workers they
    left behind."""
    started = []

    def make(**kwargs):
        s = Serve(lab, tmp_path, **kwargs)
        started.append(s)
        return s

    yield make
    for s in started:
        if s.proc.poll() is None:
            s.children()
        s.kill()
    if lab.fuse is not None:
        lab.fuse.unblock_all()
    deadline = time.monotonic() + 20
    for s in started:
        for pid in s.workers:
            while alive(pid) and time.monotonic() < deadline:
                time.sleep(0.05)


# ------------------------------------------------------- drift over HTTP

def test_drift_goes_to_1_and_back_after_vgcfgbackup(lab, serve):
    d0, d1 = lab.add_disk("d0"), lab.add_disk("d1")
    make_vg(lab, "vg0", [d0, d1])
    lab.b.vgcfgbackup("vg0")
    seq = lab.a.vgs_truth("vg0")["seqno"]
    s = serve()
    s.wait_ready()
    m = s.metrics()                       # ready means a scan has finished
    assert m.get1("vgdrift_scans_total") >= 1
    assert m.get1("vgdrift_last_scan_timestamp_seconds") > 0
    assert m.get1("vgdrift_last_scan_success") == 1
    assert m.vgs() == {"vg0"}
    assert m.state("vg0") == "in_sync"
    assert m.get1("vgdrift_vg_drift", vg="vg0") == 0
    assert m.get1("vgdrift_vg_seqno", vg="vg0", source="cache") == seq
    assert m.get1("vgdrift_vg_seqno", vg="vg0", source="disk") == seq
    assert m.get1("vgdrift_vg_pvs", vg="vg0", state="ok") == 2

    # promtool lints the live exposition (names, types, HELP, units).
    status, body = s.get("/metrics")
    assert status == 200
    r = subprocess.run(["promtool", "check", "metrics"], input=body, capture_output=True, timeout=30)
    assert r.returncode == 0, (r.stdout + r.stderr).decode()

    lab.a.lvm("lvcreate", "-L", "4m", "-n", "lv2", "vg0")
    new = lab.a.vgs_truth("vg0")["seqno"]
    assert new > seq
    m = s.wait_for(lambda m: m.get1("vgdrift_vg_drift", vg="vg0") == 1, 3 * INTERVAL + TIMEOUT,
                   "drift after lvcreate on node A")
    assert m.state("vg0") == "drift"
    assert m.get1("vgdrift_vg_seqno", vg="vg0", source="cache") == seq
    assert m.get1("vgdrift_vg_seqno", vg="vg0", source="disk") == new
    assert m.get1("vgdrift_vg_drift_seconds", vg="vg0") >= 0

    lab.b.vgcfgbackup("vg0")
    m = s.wait_for(lambda m: m.get1("vgdrift_vg_drift", vg="vg0") == 0, 3 * INTERVAL + TIMEOUT,
                   "in sync after vgcfgbackup on node B")
    assert m.state("vg0") == "in_sync"
    assert m.get1("vgdrift_vg_seqno", vg="vg0", source="cache") == new
    assert m.get1("vgdrift_vg_seqno", vg="vg0", source="disk") == new

    status, body = s.get("/metrics")
    r = subprocess.run(["promtool", "check", "metrics"], input=body, capture_output=True, timeout=30)
    assert r.returncode == 0, (r.stdout + r.stderr).decode()
    code, took = s.stop()
    assert code == 0 and took < 3, (code, took, s.stderr)
    assert "Traceback" not in s.stderr


# ------------------------------------------------------------- hung device

def hung_lab(lab):
    """vg0 on a FUSE disk (node B reads it through the mount), vg1 on a
    normal disk; node B's cache current for both."""
    hung = lab.add_fuse_disk("hung", 16, via=("b",))
    plain = lab.add_disk("plain")
    make_vg(lab, "vg0", [hung])
    make_vg(lab, "vg1", [plain])
    lab.b.vgcfgbackup()
    return hung


def test_hung_device_scrapes_stay_fast_workers_bounded_and_recovers(lab, requires_fuse, serve):
    hung = hung_lab(lab)
    s = serve()
    s.wait_ready()
    m = s.wait_for(lambda m: m.state("vg0") == "in_sync" and m.state("vg1") == "in_sync",
                   3 * INTERVAL, "both VGs in sync before blocking")
    timeouts_before = m.errors("timeout")
    threads_before = s.threads()

    lab.block(hung)
    blocked_at = time.monotonic()
    durations, threads, workers, unreadable_at = [], [], [], None
    scans_at_unreadable = None
    # ~12 s: the first scan hangs for --timeout, then ~10 more scans skip
    # the device whose read is still outstanding.
    while True:
        m, took = s.scrape()
        durations.append(took)
        threads.append(s.threads())
        workers.append(len(s.children()))
        assert m.state("vg1") == "in_sync", summary(m)      # the other VG is unaffected
        st = m.state("vg0")
        assert st in ("in_sync", "unreadable"), summary(m)
        if st == "unreadable" and unreadable_at is None:
            unreadable_at = time.monotonic()
            scans_at_unreadable = m.get1("vgdrift_scans_total")
            assert m.errors("timeout") > timeouts_before
        if unreadable_at is None:
            assert time.monotonic() - blocked_at < 3 * INTERVAL + 2 * TIMEOUT, \
                "vg0 never became unreadable: %s\n%s" % (summary(m), s.stderr)
        elif m.get1("vgdrift_scans_total") >= scans_at_unreadable + 10:
            break
        assert time.monotonic() - blocked_at < 40, "too few scans while hung:\n" + s.stderr
        time.sleep(0.1)

    assert m.state("vg0") == "unreadable"
    assert m.get1("vgdrift_vg_pvs", vg="vg0", state="unreadable") == 1
    assert m.get1("vgdrift_vg_seqno", vg="vg0", source="disk") is None
    assert m.get1("vgdrift_vg_seqno", vg="vg0", source="cache") is not None
    # Every scan while hung reports the timeout again.
    assert m.errors("timeout") >= timeouts_before + 10
    assert m.get1("vgdrift_last_scan_success") is not None

    assert len(durations) >= 50
    assert max(durations) < 0.5, sorted(durations)[-5:]
    # No growth over ~10 scans: the last samples are no higher than the
    # first ones, and never more than a couple above the idle count (the
    # connection thread of a scrape).
    assert max(threads) <= threads_before + 2, (threads_before, threads)
    assert max(threads[-20:]) <= max(threads[:20]), threads
    # One abandoned worker for the hung device, plus the scans' own.
    assert max(workers) <= 2, workers
    abandoned = stuck_on(s, hung.b)
    assert len(abandoned) == 1, (abandoned, workers)   # the hung reader stays
    # The stuck reader holds node B's loop of the hung disk: read-only.
    opened = device_fds(abandoned)
    assert hung.b in {dev for dev, _ in opened}, opened
    assert all(flags & os.O_ACCMODE == os.O_RDONLY for _, flags in opened), opened
    assert all(flags & os.O_DIRECT for _, flags in opened), opened

    lab.unblock(hung)
    m = s.wait_for(lambda m: m.state("vg0") == "in_sync", 4 * INTERVAL + TIMEOUT,
                   "vg0 in sync again after the reads were unblocked")
    assert m.state("vg1") == "in_sync"
    # The abandoned worker finished its read and was reaped.
    deadline = time.monotonic() + 4 * INTERVAL
    while any(pid in s.children() for pid in abandoned) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not (abandoned & s.children()), (abandoned, s.children())
    assert max(threads) <= threads_before + 2 and s.threads() <= threads_before + 2
    code, took = s.stop()
    assert code == 0 and took < 3, (code, took, s.stderr)
    assert "Traceback" not in s.stderr


@pytest.mark.parametrize("when", ["first_scan", "later_scan"])
def test_sigterm_is_prompt_while_a_device_is_hung(lab, requires_fuse, serve, when):
    hung = hung_lab(lab)
    if when == "first_scan":
        lab.block(hung)
        s = serve()
    else:
        s = serve()
        s.wait_ready()
        s.wait_for(lambda m: m.state("vg0") == "in_sync", 3 * INTERVAL, "vg0 in sync before blocking")
        lab.block(hung)
    # Wait until a scan's worker is stuck on the hung device (alive for
    # longer than a whole normal scan takes) but the scan has not yet given
    # up on it (--timeout): the signal arrives in the middle of that scan.
    since, deadline = {}, time.monotonic() + 3 * INTERVAL + TIMEOUT
    while True:
        now = time.monotonic()
        since = {p: since.get(p, now) for p in stuck_on(s, hung.b)}
        if any(now - t >= 0.5 for t in since.values()):
            break
        assert now < deadline, "no worker got stuck on the hung device:\n" + s.stderr
        time.sleep(0.02)
    assert s.get("/-/healthy")[0] == 200
    if when == "first_scan":
        status, body = s.get("/-/ready")
        assert status == 503, body                  # no scan has finished yet
        assert b"vgdrift_vg_state{" not in s.get("/metrics")[1]
    code, took = s.stop(signal.SIGTERM)
    assert code == 0 and took < 3, (code, took, s.stderr)
    assert "Traceback" not in s.stderr
    # The reads are unblocked by the fixture's teardown, which then waits
    # for the abandoned worker.


# ------------------------------------------- torn reads under a live writer

# Faster scans and a small metadata ring full of LVs: the ring wraps every
# few commits, so scans often meet a text being overwritten or PVs caught
# between two commits.  (Checked: with diskscan's retries disabled, this
# test fails at this interval; at 1 s it sometimes passed.)
TORN_INTERVAL = 0.25


def test_no_spurious_states_while_node_a_writes(lab, serve):
    disks = [lab.add_disk("t%d" % i, 128) for i in range(3)]
    make_vg(lab, "vg0", disks, "--metadatasize", "64k", lvs=["lv%d" % i for i in range(20)])
    lab.b.vgcfgbackup("vg0")
    start_seq = lab.a.vgs_truth("vg0")["seqno"]
    s = serve(interval=TORN_INTERVAL)
    s.wait_ready()
    m = s.metrics()
    assert m.state("vg0") == "in_sync"
    errors_before = {r: m.errors(r) for r in ("timeout", "io_error", "permission", "corrupt",
                                              "cache", "internal")}
    scans_before = m.get1("vgdrift_scans_total")

    seen, bad, stop = {}, [], threading.Event()

    def scraper():
        while not stop.is_set():
            try:
                m = s.metrics()
                st = m.state("vg0")
            except Exception as e:           # a failed scrape is a finding too
                bad.append(repr(e))
                st = "scrape failed"
            seen[st] = seen.get(st, 0) + 1
            if st not in ("in_sync", "drift"):
                bad.append(summary(m) if st != "scrape failed" else st)
            stop.wait(0.1)

    t = threading.Thread(target=scraper, daemon=True)
    t.start()
    changes, i = 0, 0
    try:
        end = time.monotonic() + 30
        while time.monotonic() < end:
            lab.a.lvm("lvcreate", "-L", "4m", "-n", "w%d" % i, "vg0")
            lab.a.lvm("lvextend", "-L", "+4m", "vg0/w%d" % i)
            if i >= 2:
                lab.a.lvm("lvremove", "-f", "vg0/w%d" % (i - 2))
            changes += 3 if i >= 2 else 2
            i += 1
        last_change = time.monotonic()
        final = lab.a.vgs_truth("vg0")["seqno"]
        # ~2 intervals (one to start the next scan, one for the scan to be
        # sure to start after the change) plus the scan itself.
        converge = 2 * TORN_INTERVAL + 0.5
        # Without a refresh: drift, at node A's final seqno.
        m = s.wait_for(lambda m: m.get1("vgdrift_vg_seqno", vg="vg0", source="disk") == final,
                       converge - (time.monotonic() - last_change),
                       "disk seqno at node A's final seqno", every=0.02)
        assert m.state("vg0") == "drift"
        assert m.get1("vgdrift_vg_seqno", vg="vg0", source="cache") == start_seq
        # With the refresh: in sync.
        lab.b.vgcfgbackup("vg0")
        m = s.wait_for(lambda m: m.state("vg0") == "in_sync", converge,
                       "in sync after vgcfgbackup on node B", every=0.02)
        assert m.get1("vgdrift_vg_seqno", vg="vg0", source="cache") == final
        assert m.get1("vgdrift_vg_seqno", vg="vg0", source="disk") == final
    finally:
        stop.set()
        t.join(5)
    assert final - start_seq >= changes, (start_seq, final, changes)
    assert not bad, (seen, bad[:5])
    assert seen.get("drift", 0) > 100, seen           # it scraped all along
    m = s.metrics()
    assert m.get1("vgdrift_scans_total") - scans_before >= 60
    assert {r: m.errors(r) for r in errors_before} == errors_before
    assert "Traceback" not in s.stderr


# ---------------------------------------------------------------- read-only

def test_soak_changes_no_byte_of_any_image(lab, serve):
    d0, d1, d2 = lab.add_disk("d0"), lab.add_disk("d1"), lab.add_disk("d2")
    make_vg(lab, "vg0", [d0, d1])
    make_vg(lab, "vg1", [d2])
    lab.b.vgcfgbackup()
    lab.a.lvm("lvcreate", "-L", "4m", "-n", "lv2", "vg1")      # vg1 drifted on B
    images = [d.image for d in lab.disks]
    watched = images + sorted(lab.b.backup_dir.iterdir())
    before = sha256_files(watched)
    writes = {dev: loop_writes(dev) for dev in lab.b.devices}
    s = serve()
    s.wait_ready()
    time.sleep(20)
    m = s.metrics()
    assert m.state("vg0") == "in_sync" and m.state("vg1") == "drift", summary(m)
    assert m.get1("vgdrift_scans_total") >= 15
    assert m.get1("vgdrift_device_reads_total") > 0
    code, took = s.stop()
    assert code == 0, s.stderr
    assert sha256_files(watched) == before, "serve wrote to an image or the cache"
    assert {dev: loop_writes(dev) for dev in lab.b.devices} == writes, "write I/O on node B's loops"


# ------------------------------------------------------------ SIGHUP reload

def test_sighup_reload_changes_the_vg_set(lab, serve, tmp_path):
    make_vg(lab, "vg0", [lab.add_disk("d0")])
    make_vg(lab, "vg1", [lab.add_disk("d1")])
    make_vg(lab, "vg2", [lab.add_disk("d2")])
    lab.b.vgcfgbackup()
    port = free_port()
    config = tmp_path / "vgdrift.yml"

    write_config(config, lab, port, "vgs: {include: [vg0, vg1]}")
    s = serve(config_file=config, port=port)
    s.wait_ready()
    m = s.metrics()
    assert m.vgs() == {"vg0", "vg1"}
    assert m.state("vg0") == m.state("vg1") == "in_sync"

    for vgs, want in (("vgs: {exclude: [vg0]}", {"vg1", "vg2"}),
                      ("vgs: {include: [vg0, vg2], exclude: [vg2]}", {"vg0"}),
                      ("", {"vg0", "vg1", "vg2"})):
        write_config(config, lab, port, vgs)
        s.proc.send_signal(signal.SIGHUP)
        m = s.wait_for(lambda m, want=want: m.vgs() == want, 3 * INTERVAL + 1,
                       "VG set %s after SIGHUP" % sorted(want))
        assert all(m.state(vg) == "in_sync" for vg in want), summary(m)

    # An invalid file is refused and the previous VG set stays.
    config.write_text("vgs: {include: vg0}\n")
    s.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 5
    while "reload failed" not in s.stderr and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "reload failed" in s.stderr and "vgs.include" in s.stderr, s.stderr
    time.sleep(2 * INTERVAL)
    assert s.metrics().vgs() == {"vg0", "vg1", "vg2"}
    code, took = s.stop()
    assert code == 0 and took < 3, (code, took, s.stderr)
    assert "Traceback" not in s.stderr


def test_sighup_while_a_device_is_hung_adds_no_stuck_worker(lab, requires_fuse, serve, tmp_path):
    hung = hung_lab(lab)
    port = free_port()
    config = tmp_path / "vgdrift.yml"

    def stuck():
        """Workers holding the hung device at every sample over ~1.5
        intervals: the ones blocked in the kernel (a scan's worker holds
        a device for a read, then closes it)."""
        common = None
        end = time.monotonic() + 1.5 * INTERVAL
        while time.monotonic() < end:
            now = stuck_on(s, hung.b)
            common = now if common is None else common & now
            time.sleep(0.02)
        return common

    write_config(config, lab, port, "vgs: {include: [vg0, vg1]}")
    s = serve(config_file=config, port=port)
    s.wait_ready()
    lab.block(hung)
    s.wait_for(lambda m: m.state("vg0") == "unreadable", 3 * INTERVAL + TIMEOUT, "vg0 unreadable")
    first = stuck()
    assert len(first) == 1, first
    for vgs in ("vgs: {include: [vg0]}", "vgs: {include: [vg0, vg1]}"):
        write_config(config, lab, port, vgs)
        s.proc.send_signal(signal.SIGHUP)
        s.wait_for(lambda m, vgs=vgs: m.vgs() == ({"vg0"} if "vg1" not in vgs else {"vg0", "vg1"}),
                   3 * INTERVAL + TIMEOUT, "reloaded: " + vgs)
        s.wait_for(lambda m: m.state("vg0") == "unreadable", 3 * INTERVAL + TIMEOUT, "vg0 unreadable")
        # The new scan options must not forget the read still outstanding.
        assert stuck() == first, (first, s.children())
    lab.unblock(hung)
    s.wait_for(lambda m: m.state("vg0") == "in_sync", 4 * INTERVAL + TIMEOUT, "vg0 in sync again")
    code, took = s.stop()
    assert code == 0 and took < 3, (code, took, s.stderr)
