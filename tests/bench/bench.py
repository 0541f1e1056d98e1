#!/usr/bin/env python3
"""vgdrift vs LVM's own `vgs`: wall time, block-layer reads and bytes, peak RSS.

Run as root:

    python3 tests/bench/bench.py [--devices 1000 --pvs 256 --vgs 64 --runs 7]
    python3 tests/bench/bench.py --latency     # 100 / 32 / 8, 2 ms per read
    python3 tests/bench/bench.py --serve       # the exporter: scrapes, scans, RSS

Builds N loop devices over sparse image files, K of them PVs in V VGs (K/V
PVs and two LVs each), made by real LVM2 under a private LVM_SYSTEM_DIR
whose filter accepts only the bench loops.  The node's cache is that
directory's backup dir, with right device hints.  Then `vgdrift check
--cache-dir BACKUP` (default candidate devices) and `vgs` run alternately,
R times each.  Figures only; nothing is asserted (DEVELOPERS.md).

Block reads and bytes are deltas of /sys/block/loopN/stat (reads
completed, sectors read x 512) summed over the bench loops; both tools read
with O_DIRECT, so no cache needs dropping.  Peak RSS is ru_maxrss from
wait4, which covers reaped children; the bench is a child subreaper, so a
worker its parent did not wait for is counted too.

--latency puts the images behind tests/fusedisk.py (mounted direct_io: no
page cache, every read reaches the server) with a delay on every read; the
loops are attached over the FUSE files.  The delay is switched on only
after setup.

--serve soaks the exporter instead of comparing with vgs (same setup, same
defaults; --devices may be lowered, the figures are about the exporter):

    python3 tests/bench/bench.py --serve [--devices 300] [--soak 600 --scrapes 2000]

It starts `vgdrift serve --cache-dir BACKUP --web.listen-address
127.0.0.1:<free port> --scan.interval 1s` (the venv's script or python -m
vgdrift with PYTHONPATH=exporter, as for check), times /-/ready, then for
--soak seconds: --scrapes GETs of /metrics spread evenly over the soak,
sequential, on one persistent keep-alive http.client connection with
Prometheus' Accept and Accept-Encoding: gzip headers (latency = request sent
to body read: p50/p90/p99/max); every 5 s VmRSS and Threads of the exporter
from /proc/PID/status, its child processes from /proc/*/stat, and one scrape
on a fresh connection.  It prints the scan duration (mean from the
vgdrift_scan_duration_seconds histogram sum/count, the last scan's and a
p50/p90/max from count/sum deltas between scrapes one scan apart, the
per-VG vgdrift_vg_scan_duration_seconds of the last scan), scans and scan
errors (vgdrift_scans_total, vgdrift_scan_errors_total), RSS averaged over
the first and the last minute, its max and growth (targets: scrape p99 <=
10 ms, RSS <= 40 MiB with no growth).  Then it leaves the exporter alone
for a quarter of the soak (10 to 60 s, one scrape at each end) and prints
the CPU per scan of that spell, the exporter's and its worker's (target
<= 20 ms), beside the soak's, which includes answering the scrapes.  Last
it sends SIGTERM and times the exit.
With --profile it also prints a cProfile of the scrape path (collector,
encoder, gzip) in a harness process on a real scan of the bench's VGs.

Every loop attached here is detached at the end, also on failure or Ctrl-C
(tests/lab.py's teardown), after the exporter, if still running, is killed;
nothing else is touched.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

TESTS = Path(__file__).resolve().parent.parent
ROOT = TESTS.parent
sys.path.insert(0, str(TESTS))

from helpers import free_port  # noqa: E402
from lab import Lab, LabError, _clean_stderr, device_filter, lvm_conf  # noqa: E402

MIB = 1024 * 1024
TARGETS = {"wall": 0.25, "wall_latency": 0.25, "bytes": 0.05, "rss_mib": 30, "discover_wall": 0.5}
PR_SET_CHILD_SUBREAPER = 36


LOOP_CTL_REMOVE = 0x4C81
HINTS = "/run/lvm/hints"      # LVM's hints file (--with-default-run-dir=/run/lvm)
LOOP_BLOCK = 10000


def loop_names() -> set:
    return {n for n in os.listdir("/sys/class/block") if n.startswith("loop")}


def free_loop_block(existing) -> int | None:
    """The first block of 10000 loop numbers from 20000 on that no loop
    device uses (losetup -f hands out the lowest free numbers, so other
    users of loop devices stay far below); None if there is none."""
    used = {int(n[4:]) for n in existing if n[4:].isdigit()}
    for base in range(2 * LOOP_BLOCK, 100 * LOOP_BLOCK, LOOP_BLOCK):
        if not any(base <= u < base + LOOP_BLOCK for u in used):
            return base
    return None


class BenchLab(Lab):
    """The lab's loop/FUSE handling and teardown, one node, our own lvm.conf.
    Also removes, after teardown, the loop devices that losetup -f created
    for us (a detached loop device stays in /sys/class/block and /dev
    otherwise, and a thousand of them slow down later scans of sysfs)."""

    def __init__(self, workdir):
        self.preexisting = loop_names()
        self.attached_names = []
        self.base = free_loop_block(self.preexisting)
        super().__init__(workdir)

    def _attach(self, path, sector_size):
        """Loop numbers base, base+1, ... (not losetup -f): one short
        filter pattern then names exactly the bench's loops.  LVM keeps its
        hints only while the filter it was written with fits a line of the
        hints file (4 KiB): a thousand-entry filter makes every vgs rescan."""
        if self.base is None:
            dev = super()._attach(path, sector_size)
        else:
            dev = f"/dev/loop{self.base + len(self.attached_names)}"
            cmd = ["losetup"] + (["--sector-size", str(sector_size)] if sector_size != 512 else [])
            r = subprocess.run(cmd + [dev, str(path)], capture_output=True, text=True)
            if r.returncode != 0:
                raise LabError(f"losetup {dev} {path} failed: {r.stderr.strip()}")
            self._loops[dev] = Path(path)
        self.attached_names.append(os.path.basename(dev))
        return dev

    def filter(self, devices) -> str:
        """LVM filter accepting the bench's loops: one pattern for the block."""
        if self.base is None:
            return device_filter(devices)
        return f'[ "a|^/dev/loop{self.base // LOOP_BLOCK}[0-9][0-9][0-9][0-9]$|", "r|.*|" ]'

    def _regen(self) -> None:   # lvm.conf is written by the bench
        pass

    def remove_created(self) -> int:
        """LOOP_CTL_REMOVE each unbound loop device that did not exist before
        we started; one another process took meanwhile is busy and stays."""
        import fcntl
        removed = 0
        fd = os.open("/dev/loop-control", os.O_RDWR | os.O_CLOEXEC)
        try:
            for name in self.attached_names:
                if name in self.preexisting or not name[4:].isdigit():
                    continue
                if os.path.exists(f"/sys/block/{name}/loop/backing_file"):
                    continue    # bound again, by someone else
                try:
                    fcntl.ioctl(fd, LOOP_CTL_REMOVE, int(name[4:]))
                    removed += 1
                except OSError:
                    pass
        finally:
            os.close(fd)
        return removed


def only(devices) -> str:
    """--config value restricting a setup command to `devices`."""
    flt = device_filter(devices)
    return f"devices {{ filter = {flt} global_filter = {flt} }}"


def block_stats(loops):
    """{loop: (reads completed, bytes read)} from /sys/block/<loop>/stat."""
    out = {}
    for dev in loops:
        with open(f"/sys/block/{os.path.basename(dev)}/stat") as f:
            fields = f.read().split()
        out[dev] = (int(fields[0]), int(fields[2]) * 512)
    return out


def set_subreaper() -> bool:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except OSError:
        return False


def reap_orphans(keep, wait_s: float = 0.5) -> tuple:
    """Reaps children re-parented to us (not `keep`): (count, max ru_maxrss KiB)."""
    n, rss = 0, 0
    deadline = time.monotonic() + wait_s
    while True:
        try:
            info = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            info = None
        if info is not None and info.si_pid not in keep:
            _, _, ru = os.wait4(info.si_pid, 0)
            n, rss = n + 1, max(rss, ru.ru_maxrss)
            continue
        if info is None or time.monotonic() > deadline:
            return n, rss
        time.sleep(0.01)


class Measure:
    def __init__(self, loops, keep_pids):
        self.loops = loops
        self.keep = keep_pids
        # A child's ru_maxrss starts at its parent's RSS at fork (Linux
        # keeps the pre-exec high-water mark), so commands are launched
        # through GNU time, a small process, which reports its child's.
        self.time = shutil.which("time", path="/usr/bin:/bin")

    def run(self, cmd, env) -> dict:
        before = block_stats(self.loops)
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, \
                tempfile.NamedTemporaryFile("r") as rssf:
            launch = [self.time, "-q", "-f", "%M", "-o", rssf.name] if self.time else []
            t0 = time.perf_counter()
            p = subprocess.Popen(launch + cmd, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=err)
            _, status, ru = os.wait4(p.pid, 0)
            wall = time.perf_counter() - t0
            p.returncode = os.waitstatus_to_exitcode(status)
            orphans, orss = reap_orphans(self.keep | {p.pid}, wait_s=0.0)
            out.seek(0)
            err.seek(0)
            stdout, stderr = out.read().decode(errors="replace"), err.read().decode(errors="replace")
            maxrss = ru.ru_maxrss
            if self.time:
                try:
                    maxrss = int(rssf.read().split()[-1])
                except (ValueError, IndexError):
                    maxrss = -1
        after = block_stats(self.loops)
        delta = {d: (after[d][0] - before[d][0], after[d][1] - before[d][1]) for d in self.loops}
        return {"wall": wall, "rc": p.returncode, "stdout": stdout, "stderr": stderr,
                "rss_kib": max(maxrss, orss), "orphans": orphans,
                "reads": sum(r for r, _ in delta.values()),
                "bytes": sum(b for _, b in delta.values()),
                "touched": {d for d, (r, _) in delta.items() if r}}


def vgdrift_cmd():
    """The venv's console script when run from a venv, else python -m with PYTHONPATH.

    Bytecode is compiled first, as `pip install` does: with
    PYTHONDONTWRITEBYTECODE set (some sandboxes set it) every run would
    compile the package from source, ~13 ms that no installed copy pays."""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "exporter" / "vgdrift")],
                   check=False, env=env)
    script = Path(sys.executable).parent / "vgdrift"
    if sys.prefix != sys.base_prefix and script.exists():
        return [str(script)], env
    env["PYTHONPATH"] = str(ROOT / "exporter") + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return [sys.executable, "-m", "vgdrift"], env


def fmt_bytes(n: float) -> str:
    return f"{n / MIB:.2f} MiB" if n >= MIB else f"{n / 1024:.1f} KiB"


def setup(lab: BenchLab, a, log) -> dict:
    """Attach the loops, make PVs, VGs and LVs.  Returns the layout."""
    n = a.devices
    t0 = time.monotonic()
    loops, errors = [], None
    for i in range(n):
        name = f"d{i:04d}"
        try:
            if a.latency:
                disk = lab.add_fuse_disk(name, size_mib=a.size_mib, via=("a",), nodes=("a",), delay_ms=0)
            else:
                disk = lab.add_disk(name, size_mib=a.size_mib, nodes=("a",))
        except LabError as e:
            errors = str(e).strip().splitlines()[-1]
            break
        loops.append(disk.a)
    if len(loops) < n:
        log(f"LOOP LIMIT: only {len(loops)} of {n} loop devices could be attached ({errors}); "
            f"running with {len(loops)}")
    else:
        how = f"as /dev/loop{lab.base}.." if lab.base is not None else "via losetup -f"
        log(f"loop devices: all {n} attached on demand {how} (/dev/loop-control)")
    n = len(loops)
    k = min(a.pvs, n)
    v = max(1, min(a.vgs, k))
    # PVs spread evenly among the devices, so blank disks sit between them.
    pv_idx = [i * n // k for i in range(k)]
    pvs = [loops[i] for i in pv_idx]
    t_attach = time.monotonic() - t0

    node = lab.a
    conf = node.system_dir / "lvm.conf"
    conf.write_text(lvm_conf(pvs, node.backup_dir, node.archive_dir, node.locking_dir,
                              "tests/bench/bench.py: only the bench's loops", archive=False))
    for chunk in range(0, k, 512):
        node.lvm("pvcreate", "-qq", "-y", *pvs[chunk:chunk + 512], timeout=600)
    groups = [pvs[g * k // v:(g + 1) * k // v] for g in range(v)]

    def make_vg(g):
        name, members = f"bench{g:03d}", groups[g]
        cfg = only(members)
        node.lvm("vgcreate", "-qq", "--config", cfg, "-s", "1m", name, *members)
        extents = len(members) * (a.size_mib - 2)
        node.lvm("lvcreate", "-qq", "--config", cfg, "-l", str(max(1, extents // 2)), "-n", "lv0", name)
        node.lvm("lvcreate", "-qq", "--config", cfg, "-l", str(max(1, extents // 4)), "-n", "lv1", name)
        return name

    with ThreadPoolExecutor(max_workers=4) as pool:
        vg_names = list(pool.map(make_vg, range(v)))
    conf.write_text(node_conf(lab, loops))
    return {"loops": loops, "pvs": pvs, "vgs": vg_names, "t_attach": t_attach,
            "t_lvm": time.monotonic() - t0 - t_attach}


def node_conf(lab: BenchLab, loops) -> str:
    """The node's lvm.conf as a healthy node has it: a filter that accepts
    the bench's loops (one pattern) and LVM's hints on (its default), so
    that `vgs` after `pvscan --cache` reads only the PVs its hints name.
    vgdrift reads this configuration too (readiness) and ignores hints."""
    node = lab.a
    conf = lvm_conf(loops, node.backup_dir, node.archive_dir, node.locking_dir,
                    "tests/bench/bench.py: only the bench's loops", archive=False)
    flt = device_filter(loops)
    conf = conf.replace(f"filter = {flt}", f"filter = {lab.filter(loops)}")
    return conf.replace('hints = "none"', 'hints = "all"')


def hints_file() -> tuple:
    """(mtime_ns, PVs listed) of LVM's hints file, (None, 0) without one."""
    try:
        with open(HINTS) as f:
            text = f.read()
        return os.stat(HINTS).st_mtime_ns, sum(1 for line in text.splitlines() if line.startswith("scan:"))
    except OSError:
        return None, 0


def direct_io_probe(dev: str, times: int = 5) -> list:
    """Wall ms of repeated O_DIRECT 4 KiB reads of one sector: a cached page
    would answer well under the FUSE delay."""
    import mmap
    fd = os.open(dev, os.O_RDONLY | os.O_DIRECT)
    buf = mmap.mmap(-1, 4096)
    out = []
    try:
        for _ in range(times):
            t0 = time.perf_counter()
            os.preadv(fd, [buf], 0)
            out.append((time.perf_counter() - t0) * 1000)
    finally:
        buf.close()
        os.close(fd)
    return out


def summary(runs, key):
    vals = [r[key] for r in runs]
    return statistics.median(vals), min(vals), max(vals)


# --- --serve: the exporter under a 1 s scan interval ------------------------

# What Prometheus 2.x/3.x sends by default: OpenMetrics preferred, gzip.
SCRAPE_HEADERS = {
    "Accept": "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
              "text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
    "Accept-Encoding": "gzip",
    "User-Agent": "vgdrift-bench",
}
SERVE_TARGETS = {"scrape_p99_ms": 10.0, "rss_mib": 40.0, "growth_mib": 0.0, "cpu_ms": 20.0}
SAMPLE_EVERY = 5.0
QUIET_MIN, QUIET_MAX = 10.0, 60.0   # --serve: seconds without scrapes after the soak


def parse_exposition(text: str) -> dict:
    """{(name, frozenset of label pairs): value} from the text or OpenMetrics
    format (enough for our own exposition: no escaped quotes in values)."""
    import re
    line_re = re.compile(r'^([A-Za-z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\S+)?$')
    label_re = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        mo = line_re.match(line)
        if mo:
            labels = frozenset(label_re.findall(mo.group(2) or ""))
            out[(mo.group(1), labels)] = float(mo.group(3))
    return out


def series(expo: dict, name: str, **want) -> list:
    """[(labels dict, value)] of `name` whose labels include `want`."""
    rows = []
    for (n, labels), value in expo.items():
        d = dict(labels)
        if n == name and all(d.get(k) == v for k, v in want.items()):
            rows.append((d, value))
    return rows


def value(expo: dict, name: str, **want) -> float:
    rows = series(expo, name, **want)
    return sum(v for _, v in rows) if rows else float("nan")


def proc_status(pid: int) -> dict:
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM", "Threads"):
                out[key] = int(rest.split()[0])
    return out


def children_of(pid: int) -> list:
    """PIDs whose parent is `pid` (from /proc/*/stat), and their RSS in KiB."""
    kids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
            ppid = int(stat[stat.rindex(")") + 2:].split()[1])
            if ppid == pid:
                kids.append((int(entry), proc_status(int(entry)).get("VmRSS", 0)))
        except (OSError, ValueError):
            continue
    return kids


def cpu_seconds(pid: int) -> tuple:
    """(CPU seconds of `pid` with its reaped children, of its live children):
    utime+stime(+cutime+cstime) from /proc/PID/stat."""
    tick = os.sysconf("SC_CLK_TCK")

    def fields(p):
        with open(f"/proc/{p}/stat") as f:
            text = f.read()
        return text[text.rindex(")") + 2:].split()
    own = fields(pid)
    kids = 0
    for kid, _ in children_of(pid):
        try:
            x = fields(kid)
            kids += int(x[11]) + int(x[12])
        except (OSError, ValueError, IndexError):
            continue
    return sum(int(x) for x in own[11:15]) / tick, kids / tick


def percentile(sorted_vals, q: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    if not sorted_vals:
        return float("nan")
    import math
    return sorted_vals[min(len(sorted_vals) - 1, max(0, math.ceil(q / 100 * len(sorted_vals)) - 1))]


class Scraper:
    """GET /metrics like Prometheus (headers above).  `persistent`: one
    keep-alive http.client connection, reopened only if the server drops it."""

    def __init__(self, port: int, path: str = "/metrics", persistent: bool = True):
        import http.client
        self.http = http.client
        self.port, self.path, self.persistent = port, path, persistent
        self.conn = None
        self.reconnects = 0

    def get(self, path=None, headers=None):
        """(status, decoded body, wire bytes, seconds)."""
        import gzip
        for attempt in (0, 1):
            if self.conn is None:
                self.conn = self.http.HTTPConnection("127.0.0.1", self.port, timeout=30)
            t0 = time.perf_counter()
            try:
                self.conn.request("GET", path or self.path, headers=SCRAPE_HEADERS if headers is None else headers)
                resp = self.conn.getresponse()
                body = resp.read()
            except (OSError, self.http.HTTPException):
                self.close()
                if attempt or not self.persistent:
                    raise
                self.reconnects += 1
                continue
            elapsed = time.perf_counter() - t0
            if not self.persistent or resp.will_close:
                self.close()
            wire = len(body)
            if resp.getheader("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            return resp.status, body.decode("utf-8", "replace"), wire, elapsed
        raise AssertionError("unreachable")

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def start_exporter(lab, backup, log):
    """`vgdrift serve` on a free 127.0.0.1 port; (Popen, port, log path, seconds to ready)."""
    vd_cmd, vd_env = vgdrift_cmd()
    logpath = lab.workdir / "exporter.log"
    for _ in range(5):
        port = free_port()
        cmd = vd_cmd + ["serve", "--cache-dir", str(backup), "--lvm-system-dir", str(lab.a.system_dir),
                        "--web.listen-address", f"127.0.0.1:{port}", "--scan.interval", "1s"]
        t0 = time.monotonic()
        logf = open(logpath, "ab")
        proc = subprocess.Popen(cmd, env=vd_env, stdin=subprocess.DEVNULL, stdout=logf, stderr=logf)
        logf.close()
        lab.exporter = proc
        log(f"exporter: {' '.join(cmd[-9:])} (pid {proc.pid}"
            + (", PYTHONPATH=exporter" if "PYTHONPATH" in vd_env else "") + ")")
        probe = Scraper(port, persistent=False)
        while proc.poll() is None and time.monotonic() - t0 < 120:
            try:
                status = probe.get("/-/ready", headers={})[0]
            except OSError:
                status = None
            if status == 200:
                return proc, port, logpath, time.monotonic() - t0
            time.sleep(0.02)
        if proc.poll() is None:
            raise RuntimeError("exporter not ready after 120 s")
        tail = logpath.read_text(errors="replace").strip().splitlines()[-1:]
        if not any("cannot listen" in l for l in tail):
            raise RuntimeError(f"exporter exited with {proc.returncode}: {' '.join(tail)}")
    raise RuntimeError("could not find a free port for the exporter")


def stop_exporter(proc, timeout: float = 30.0) -> tuple:
    """SIGTERM; (seconds until it exited, exit code or None if it had to be killed)."""
    t0 = time.perf_counter()
    proc.send_signal(signal.SIGTERM)
    try:
        rc = proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        rc = None
    return time.perf_counter() - t0, rc


def serve_bench(lab, a, log, lay, subreaper: bool) -> int:
    backup = lab.a.backup_dir
    n, k, v = len(lay["loops"]), len(lay["pvs"]), len(lay["vgs"])
    proc, port, logpath, t_ready = start_exporter(lab, backup, log)
    pid = proc.pid
    log(f"ready after {t_ready:.2f} s (first scan included)")

    persistent = Scraper(port)
    fresh = Scraper(port, persistent=False)
    status, body, wire, _ = persistent.get()
    expo = parse_exposition(body)
    states = {}
    for labels, val in series(expo, "vgdrift_vg_state"):
        if val == 1:
            states[labels["state"]] = states.get(labels["state"], 0) + 1
    log(f"first scrape: HTTP {status}, {len(body) / 1024:.1f} KiB exposition ({wire / 1024:.1f} KiB gzip), "
        f"{len(expo)} samples; VG states {states}")

    soak = max(0.0, float(a.soak))
    period = soak / a.scrapes if soak else 0.0
    log(f"soak {soak:.0f} s at --scan.interval 1s: {a.scrapes} sequential scrapes of /metrics on one persistent "
        f"keep-alive http.client connection, one every {period * 1000:.0f} ms (Prometheus' Accept and "
        f"Accept-Encoding: gzip headers; time = request sent to body read); every {SAMPLE_EVERY:.0f} s "
        f"VmRSS/Threads/children of pid {pid} from /proc plus one scrape on a fresh connection")

    cpu0, scans0 = cpu_seconds(pid), value(expo, "vgdrift_scans_total")
    lat, fresh_lat, samples, scan_deltas = [], [], [], []
    prev = (value(expo, "vgdrift_scan_duration_seconds_count"), value(expo, "vgdrift_scan_duration_seconds_sum"))
    max_children, max_child_rss, exited_early = 0, 0, None
    t_start = time.monotonic()
    next_scrape, next_sample, done = t_start, t_start, 0
    last_body = body

    def account(text):
        nonlocal prev, last_body
        last_body = text
        e = parse_exposition(text)
        cur = (value(e, "vgdrift_scan_duration_seconds_count"), value(e, "vgdrift_scan_duration_seconds_sum"))
        if cur[0] == prev[0] + 1:
            scan_deltas.append(cur[1] - prev[1])   # exactly one scan in between: its duration
        prev = cur

    while True:
        now = time.monotonic()
        if proc.poll() is not None:
            exited_early = proc.returncode
            break
        if now >= next_sample and now - t_start <= soak + 0.5:
            st = proc_status(pid)
            kids = children_of(pid)
            max_children = max(max_children, len(kids))
            max_child_rss = max([max_child_rss] + [r for _, r in kids])
            samples.append((now - t_start, st["VmRSS"], st["Threads"], len(kids)))
            _, text, _, secs = fresh.get()
            fresh_lat.append(secs)
            account(text)
            next_sample += SAMPLE_EVERY
            continue
        if done < a.scrapes and now >= next_scrape:
            status, text, _, secs = persistent.get()
            if status == 200:
                lat.append(secs)
            done += 1
            next_scrape = t_start + done * period
            # Parsing ~every scan (not after every back-to-back scrape) keeps
            # the bench's own CPU use off the exporter's.
            if period >= 0.2 or done % 50 == 0:
                account(text)
            continue
        if done >= a.scrapes and now - t_start >= soak:
            break
        wake = min(next_sample if now - t_start <= soak else float("inf"),
                   next_scrape if done < a.scrapes else float("inf"), t_start + soak)
        time.sleep(max(0.0, min(1.0, wake - time.monotonic())))
    elapsed = time.monotonic() - t_start
    persistent.close()

    if exited_early is not None:
        log(f"EXPORTER EXITED during the soak (status {exited_early}); log tail:\n"
            + "\n".join(logpath.read_text(errors="replace").splitlines()[-10:]))
        lab.exporter = None
        return 1

    # Final figures from one last scrape.
    _, text, _, _ = fresh.get()
    expo = parse_exposition(text)
    scans = value(expo, "vgdrift_scans_total")
    cpu1 = cpu_seconds(pid)
    # Then a quiet spell, no scrape but one at each end: the CPU of scans
    # alone (the soak's figure includes answering the scrapes).
    quiet = max(QUIET_MIN, min(QUIET_MAX, soak / 4))
    time.sleep(quiet)
    _, text, _, _ = fresh.get()
    quiet_scans = value(parse_exposition(text), "vgdrift_scans_total") - scans
    cpu2 = cpu_seconds(pid)
    count, total = value(expo, "vgdrift_scan_duration_seconds_count"), value(expo, "vgdrift_scan_duration_seconds_sum")
    errors = {d["reason"]: int(x) for d, x in series(expo, "vgdrift_scan_errors_total") if x}
    vg_durs = sorted(x for _, x in series(expo, "vgdrift_vg_scan_duration_seconds"))
    rss_metric = value(expo, "process_resident_memory_bytes")
    st_end = proc_status(pid)

    def ms(x):
        return f"{x * 1000:.2f}"
    verdict = lambda ok: "ok" if ok else "MISSED"  # noqa: E731

    log(f"\n--serve results: {n} devices, {k} PVs in {v} VGs; soak {elapsed:.0f} s; exporter pid {pid}")
    s = sorted(lat)
    p99 = percentile(s, 99)
    log(f"  scrape latency, {len(s)} scrapes, persistent connection ({persistent.reconnects} reconnects): "
        f"p50 {ms(percentile(s, 50))}  p90 {ms(percentile(s, 90))}  p99 {ms(p99)}  max {ms(s[-1] if s else 0)} ms"
        f"  (target p99 <= {SERVE_TARGETS['scrape_p99_ms']:.0f} ms)  "
        f"{verdict(p99 * 1000 <= SERVE_TARGETS['scrape_p99_ms'])}")
    f = sorted(fresh_lat)
    log(f"  scrape latency, {len(f)} scrapes, fresh connection each: p50 {ms(percentile(f, 50))}  "
        f"p90 {ms(percentile(f, 90))}  max {ms(f[-1] if f else 0)} ms")
    sd = sorted(scan_deltas)
    log(f"  scans completed {scans:.0f} in {elapsed + t_ready:.0f} s since start; scan errors "
        f"{sum(errors.values())} {errors or ''}; last scan success {value(expo, 'vgdrift_last_scan_success'):.0f}")
    log(f"  scan duration: mean {ms(total / count)} ms (histogram sum/count over {count:.0f} scans); "
        f"last one {ms(scan_deltas[-1]) if scan_deltas else '?'} ms; over {len(sd)} isolated scans: "
        f"p50 {ms(percentile(sd, 50))}  p90 {ms(percentile(sd, 90))}  max {ms(sd[-1] if sd else 0)} ms")
    d_scans = scans - scans0
    if quiet_scans > 0:
        # The worker's CPU is the reading (a worker that was replaced and
        # reaped is in the exporter's cutime/cstime, hence in its figure).
        own, kids = (cpu2[0] - cpu1[0]) * 1000 / quiet_scans, (cpu2[1] - cpu1[1]) * 1000 / quiet_scans
        log(f"  CPU per scan, {quiet_scans:.0f} scans in {quiet:.0f} s without scrapes: {own + kids:.1f} ms "
            f"(exporter process {own:.1f} ms, long-lived worker {kids:.1f} ms)  "
            f"(target <= {SERVE_TARGETS['cpu_ms']:.0f} ms)  {verdict(own + kids <= SERVE_TARGETS['cpu_ms'])}")
    if d_scans > 0:
        own, kids = (cpu1[0] - cpu0[0]) * 1000 / d_scans, (cpu1[1] - cpu0[1]) * 1000 / d_scans
        per_scrape = ""
        if quiet_scans > 0 and done:
            quiet_cpu = (cpu2[0] - cpu1[0] + cpu2[1] - cpu1[1]) / quiet_scans
            extra = (cpu1[0] - cpu0[0] + cpu1[1] - cpu0[1]) - quiet_cpu * d_scans
            per_scrape = f"; about {max(0.0, extra) * 1000 / (done + len(fresh_lat)):.2f} ms per scrape"
        log(f"  CPU per scan during the soak, {d_scans:.0f} scans: {own + kids:.1f} ms (exporter process "
            f"{own:.1f} ms with the scrapes at {a.scrapes / soak if soak else 0:.1f}/s, long-lived worker "
            f"{kids:.1f} ms){per_scrape}")
    if vg_durs:
        log(f"  vgdrift_vg_scan_duration_seconds (last scan, {len(vg_durs)} VGs): min {ms(vg_durs[0])}  "
            f"median {ms(statistics.median(vg_durs))}  max {ms(vg_durs[-1])} ms")
    first = [x for x in samples if x[0] < 60]
    last = [x for x in samples if x[0] >= max(0.0, elapsed - 60)]
    mib = lambda kib: kib / 1024  # noqa: E731
    f_avg = statistics.mean(x[1] for x in first) if first else float("nan")
    l_avg = statistics.mean(x[1] for x in last) if last else float("nan")
    rss_max = max(x[1] for x in samples) if samples else 0
    growth = mib(l_avg - f_avg)
    log(f"  RSS (VmRSS, {len(samples)} samples every {SAMPLE_EVERY:.0f} s): first minute {mib(f_avg):.1f} MiB, "
        f"last minute {mib(l_avg):.1f} MiB, max {mib(rss_max):.1f} MiB, growth {growth:+.2f} MiB; "
        f"VmHWM {mib(st_end['VmHWM']):.1f} MiB; process_resident_memory_bytes {rss_metric / MIB:.1f} MiB "
        f"(target <= {SERVE_TARGETS['rss_mib']:.0f} MiB, no growth)  "
        f"{verdict(mib(rss_max) <= SERVE_TARGETS['rss_mib'] and growth <= 0.5)}")
    threads = sorted({x[2] for x in samples})
    log(f"  threads: {threads[0]}-{threads[-1]}" if threads else "  threads: ?")
    log(f"  child processes seen at samples: max {max_children} (max child RSS {mib(max_child_rss):.1f} MiB); "
        f"{sum(1 for x in samples if x[3])} of {len(samples)} samples had a worker running")

    kids_before = len(children_of(pid))
    secs, rc = stop_exporter(proc)
    lab.exporter = None
    orphans, _ = reap_orphans(set(), wait_s=1.0) if subreaper else (0, 0)
    log(f"  SIGTERM -> exit in {secs * 1000:.0f} ms, exit status {rc if rc is not None else 'KILLED after 30 s'}; "
        f"{kids_before} worker(s) alive at SIGTERM, {orphans} orphaned worker(s) reaped by the bench")
    lines = logpath.read_text(errors="replace").splitlines()
    bad = [l for l in lines if "level=warn" in l or "level=error" in l or "Traceback" in l]
    log(f"  exporter log: {len(lines)} lines, {len(bad)} warnings/errors"
        + ("".join(f"\n    {l[:200]}" for l in bad[:5]) if bad else ""))
    if a.profile:
        profile_scrape(backup, log)
    return 0


PROFILE_HARNESS = r"""
import cProfile, pstats, sys, time
from vgdrift.serve import collector
from vgdrift.serve import main as serve
from vgdrift.scan import Scanner, ScanOptions
from prometheus_client.exposition import choose_encoder
result = Scanner(ScanOptions(cache_dirs=(sys.argv[1],)), isolation="fork").scan()
stats = collector.ScanStats()
stats.record(result)
expo = serve.build_exposition(stats)
encoder, _ = choose_encoder(sys.argv[2])
def scrape():
    return expo.render(sys.argv[2], True)[0]
for _ in range(20):
    scrape()
n = 300
t0 = time.perf_counter()
for _ in range(n):
    scrape()
print(f"in-process render+gzip of /metrics ({len(expo.render(sys.argv[2], False)[0])} bytes): "
      f"{(time.perf_counter() - t0) / n * 1000:.2f} ms each (mean of {n})")
prof = cProfile.Profile()
prof.enable()
for _ in range(n):
    scrape()
prof.disable()
pstats.Stats(prof, stream=sys.stdout).sort_stats("tottime").print_stats(15)
"""


def profile_scrape(backup, log) -> None:
    """cProfile of the scrape path (collector + encoder + gzip) in a small
    harness process, on a real scan of the bench's VGs."""
    vd_cmd, vd_env = vgdrift_cmd()
    py = sys.executable if vd_cmd[0] == sys.executable else str(Path(vd_cmd[0]).parent / "python")
    r = subprocess.run([py, "-c", PROFILE_HARNESS, str(backup), SCRAPE_HEADERS["Accept"]],
                       capture_output=True, text=True, env=vd_env, timeout=300)
    rows = [l for l in r.stdout.splitlines() if l.strip()]
    start = next((i for i, l in enumerate(rows) if "ncalls" in l), len(rows))
    log("\n".join(rows[:1]) + "\ncProfile of 300 scrape renderings (top 15 by own time):\n"
        + "\n".join(rows[start:start + 16]) + (f"\n{r.stderr.strip()[-500:]}" if r.returncode else ""))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--devices", type=int)
    p.add_argument("--pvs", type=int)
    p.add_argument("--vgs", type=int)
    p.add_argument("--runs", type=int, default=7)
    p.add_argument("--latency", action="store_true", help="disks behind FUSE, a delay on every read")
    p.add_argument("--delay-ms", type=int, default=2)
    p.add_argument("--size-mib", type=int, default=8)
    p.add_argument("--workdir", help="default: a new directory in /tmp")
    p.add_argument("--profile", action="store_true",
                   help="also print a cProfile of one vgdrift check (parent process); "
                        "with --serve, of the scrape path")
    p.add_argument("--serve", action="store_true",
                   help="soak `vgdrift serve` at a 1 s scan interval instead of comparing with vgs")
    p.add_argument("--scaling", nargs="*", type=int, metavar="DEVICES",
                   help="a table of check and vgs at several machine sizes (default 250 1000 4000 devices, "
                        "PVs and VGs in the proportion 1000/256/64), each set up and torn down in turn")
    p.add_argument("--soak", type=float, default=600, help="--serve: soak seconds (default 600)")
    p.add_argument("--scrapes", type=int, default=2000,
                   help="--serve: /metrics scrapes spread evenly over the soak (default 2000)")
    a = p.parse_args()
    defaults = (100, 32, 8) if a.latency else (1000, 256, 64)
    a.devices = a.devices or defaults[0]
    a.pvs = a.pvs or defaults[1]
    a.vgs = a.vgs or defaults[2]
    if os.geteuid() != 0:
        print("bench.py needs root (loop devices, LVM)", file=sys.stderr)
        return 2
    if a.pvs > a.devices or a.vgs > a.pvs or a.size_mib < 4 or a.scrapes < 1 or a.soak < 0:
        print("need vgs <= pvs <= devices, --size-mib >= 4, --scrapes >= 1, --soak >= 0", file=sys.stderr)
        return 2

    def log(msg):
        print(msg, flush=True)

    def term(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, term)
    subreaper = set_subreaper()
    if a.scaling is not None:
        return scaling(a, log)

    workdir = Path(a.workdir or tempfile.mkdtemp(prefix="vgdrift-bench-"))
    lab = BenchLab(workdir)
    lab.exporter = None
    try:
        return bench(lab, a, log, subreaper)
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        t0 = time.monotonic()
        if lab.exporter is not None and lab.exporter.poll() is None:
            lab.exporter.kill()     # before the loops go: it holds no device open between scans
            lab.exporter.wait()
            log("exporter killed (SIGKILL) before teardown")
        try:
            lab.close()
            removed = lab.remove_created()
            if not a.workdir and not any(workdir.name in l for l in open("/proc/self/mountinfo")):
                shutil.rmtree(workdir, ignore_errors=True)
            log(f"teardown: detached all bench loops, removed {removed} loop devices created for the bench, "
                f"{time.monotonic() - t0:.1f} s")
        except Exception as e:  # noqa: BLE001
            print(f"teardown FAILED: {e}", file=sys.stderr)


def bench(lab: BenchLab, a, log, subreaper: bool) -> int:
    lvm_version = subprocess.run(["lvm", "version"], capture_output=True, text=True).stdout.split("\n")[0]
    mode = f"latency ({a.delay_ms} ms per read, FUSE direct_io)" if a.latency else "local sparse files"
    if a.serve:
        mode += f"; --serve (exporter soak {a.soak:.0f} s, {a.scrapes} scrapes)"
    log(f"vgdrift bench: {mode}; kernel {platform.release()}, {lvm_version.strip()}, "
        f"python {platform.python_version()}, {os.cpu_count()} CPUs")
    lay = setup(lab, a, log)
    loops, pvs, vgs = lay["loops"], lay["pvs"], lay["vgs"]
    n, k, v = len(loops), len(pvs), len(vgs)
    log(f"setup: {n} devices x {a.size_mib} MiB, {k} PVs in {v} VGs (2 LVs each); "
        f"attach {lay['t_attach']:.1f} s, LVM {lay['t_lvm']:.1f} s")
    backup = lab.a.backup_dir
    if a.latency:
        lab.fuse.set_delay(a.delay_ms)
        probe = direct_io_probe(pvs[0])
        log(f"direct_io check: O_DIRECT 4 KiB re-reads of {pvs[0]}: "
            + ", ".join(f"{x:.1f}" for x in probe) + f" ms (each >= {a.delay_ms} ms: not cached)")
    if a.serve:
        return serve_bench(lab, a, log, lay, subreaper)

    vd_cmd, vd_env = vgdrift_cmd()
    # The node's own LVM configuration (its filter accepts only the bench's
    # loops, no devices file): what `check` reads besides the disks.
    vd = vd_cmd + ["check", "--cache-dir", str(backup), "--lvm-system-dir", str(lab.a.system_dir)]
    vgs_cmd = ["vgs", "--driverloaded", "n"]
    keep = {lab.fuse.proc.pid} if lab.fuse is not None else set()
    m = Measure(loops, keep)
    stamp = lambda: {f.name: f.stat().st_mtime_ns for f in backup.iterdir()}  # noqa: E731
    mtimes = stamp()

    # Warm-up (untimed): checks both agree, warms the page cache of binaries
    # and Python modules for both alike.
    w = m.run(vd + ["--format", "json"], vd_env)
    doc = json.loads(w["stdout"]) if w["stdout"].strip().startswith("{") else {}
    states = {}
    for x in doc.get("vgs", []):
        states[x["state"]] = states.get(x["state"], 0) + 1
    log(f"vgdrift warm-up: exit {w['rc']}, states {states or '?'}, own counters "
        f"{doc.get('reads')} reads / {fmt_bytes(doc.get('read_bytes') or 0)}"
        + (f"; stderr: {w['stderr'].strip()[:300]}" if w["rc"] else ""))
    # vgs as on a healthy node: `pvscan --cache` just ran and wrote LVM's
    # hints (the node's filter accepts only the bench's loops, so no other
    # device on this machine invalidates them); vgs then reads only the PVs
    # the hints name.  Its read count below shows whether it did.
    ps = m.run(["pvscan", "--cache"], lab.a.env)
    wv = m.run(vgs_cmd, lab.a.env)
    lines = [l for l in wv["stdout"].splitlines()[1:] if l.strip()]
    hints_mtime, hinted = hints_file()
    log(f"pvscan --cache: exit {ps['rc']}, {ps['reads']} reads; vgs warm-up: exit {wv['rc']}, "
        f"{len(lines)} VGs listed, {wv['reads']} reads of {len(wv['touched'])} devices; "
        f"{HINTS} names {hinted} PVs"
        + (f"; stderr: {_clean_stderr(wv['stderr'])[:300]}" if wv["rc"] else ""))

    if a.profile:
        prof = subprocess.run([sys.executable, "-m", "cProfile", "-s", "tottime", "-m", "vgdrift"]
                              + vd[vd.index("check"):], capture_output=True, text=True, env=vd_env)
        rows = [l for l in prof.stdout.splitlines() if l.strip()]
        start = next((i for i, l in enumerate(rows) if "ncalls" in l), 0)
        log("cProfile of one check (parent; top 25 by own time):\n" + "\n".join(rows[start:start + 26]))

    runs = {"vgdrift": [], "vgs": []}
    for _ in range(a.runs):
        runs["vgdrift"].append(m.run(vd, vd_env))
        runs["vgs"].append(m.run(vgs_cmd, lab.a.env))
    if stamp() != mtimes:
        log("NOTE: the backup dir changed during the bench (vgs rewrote it?)")
    else:
        log(f"backup dir unchanged by {a.runs + 1} vgs runs")
    if hints_file()[0] != hints_mtime:
        log(f"NOTE: {HINTS} was rewritten during the runs: some vgs run found its hints stale and rescanned")
    else:
        log(f"{HINTS} unchanged by {a.runs} vgs runs: each used the hints")

    log(f"\n{a.runs} runs each, alternating; medians (min-max)")
    med = {}
    for name, rs in runs.items():
        wall, wmin, wmax = summary(rs, "wall")
        reads, rmin, rmax = summary(rs, "reads")
        byts = statistics.median(r["bytes"] for r in rs)
        rss = max(r["rss_kib"] for r in rs) / 1024
        rcs = sorted({r["rc"] for r in rs})
        med[name] = {"wall": wall, "reads": reads, "bytes": byts, "rss": rss}
        extra = f", workers reaped by the bench: {sum(r['orphans'] for r in rs)}" if name == "vgdrift" else ""
        log(f"  {name:8s} wall {wall * 1000:8.1f} ms ({wmin * 1000:.1f}-{wmax * 1000:.1f})  "
            f"reads {reads:6.0f}" + (f" ({rmin}-{rmax})" if rmin != rmax else "")
            + f"  bytes {fmt_bytes(byts):>11s}  peak RSS {rss:5.1f} MiB  exit {rcs}{extra}")
    pvset = set(pvs)
    nonpv = [len(r["touched"] - pvset) for r in runs["vgdrift"]]
    pv_touched = [len(r["touched"] & pvset) for r in runs["vgdrift"]]
    log(f"  vgdrift read non-PV devices: {max(nonpv)} (target 0); PVs read: "
        f"{max(pv_touched)} of {k}; vgs read {max(len(r['touched']) for r in runs['vgs'])} of {n} devices")
    d, l = med["vgdrift"], med["vgs"]
    wall_target = TARGETS["wall_latency"] if a.latency else TARGETS["wall"]

    def verdict(ok):
        return "ok" if ok else "MISSED"
    log("ratios vs targets:")
    log(f"  wall   {d['wall'] / l['wall']:.3f} x vgs   (target <= {wall_target})  "
        f"{verdict(d['wall'] <= wall_target * l['wall'])}")
    log(f"  bytes  {100 * d['bytes'] / l['bytes']:.2f} % of vgs (target <= {TARGETS['bytes'] * 100:.0f} %)  "
        f"{verdict(d['bytes'] <= TARGETS['bytes'] * l['bytes'])}")
    log(f"  reads  {d['reads']:.0f} vs PVs+VGs {k + v}   (target <=)  {verdict(d['reads'] <= k + v)}")
    log(f"  RSS    {d['rss']:.1f} MiB   (target <= {TARGETS['rss_mib']} MiB)  "
        f"{verdict(d['rss'] <= TARGETS['rss_mib'])}")
    if not m.time:
        log("  (no /usr/bin/time: RSS figures include the bench's own RSS at fork)")
    if not subreaper:
        log("  (could not become a child subreaper: an unreaped worker's RSS is not counted)")
    devices_file_bench(lab, a, log, m, vd_cmd, vd_env, backup, pvs)
    discover_bench(lab, a, log, m, vd_cmd, vd_env, backup, loops, vgs)
    return 0


DISCOVER_UNKNOWN_EVERY = 4    # one VG in 4 is left out of the cache: "created elsewhere"


def discover_bench(lab, a, log, m, vd_cmd, vd_env, backup, loops, vgs) -> None:
    """`check --discover` (issue 11) against what LVM needs in order to see
    a VG created elsewhere: a full scan, `vgs --config devices/hints=none`
    (hints list only the devices known to hold PVs).  The cache is a copy
    of the node's without one VG in DISCOVER_UNKNOWN_EVERY, so that those
    are unknown VGs; candidates are the bench's loops (what the node's
    filter accepts)."""
    cache = lab.workdir / "cache-discover"
    cache.mkdir(exist_ok=True)
    unknown = set(vgs[::DISCOVER_UNKNOWN_EVERY])
    for f in backup.iterdir():
        if f.is_file() and f.name not in unknown:
            shutil.copy2(f, cache / f.name)
    if lab.base is not None:
        devices = ["--devices", f"/dev/loop{lab.base // LOOP_BLOCK}[0-9][0-9][0-9][0-9]"]
    else:
        devices = [x for d in loops for x in ("--devices", d)]
    # Candidates: the bench's loops (--devices GLOB), as the node's LVM
    # filter has them.  (Without --devices they would be every disk of the
    # host, other users' loops included on a shared machine.)
    vd = vd_cmd + ["check", "--discover", "--cache-dir", str(cache), "--lvm-system-dir",
                   str(lab.a.system_dir)] + devices
    full = ["vgs", "--driverloaded", "n", "--config", "devices/hints=none"]
    w = m.run(vd + ["--format", "json"], vd_env)
    doc = json.loads(w["stdout"]) if w["stdout"].strip().startswith("{") else {}
    found = sorted(u["name"] for u in doc.get("unknown_vgs", []))
    wv = m.run(full, lab.a.env)
    listed = [l for l in wv["stdout"].splitlines()[1:] if l.strip()]
    log(f"\ncheck --discover: {len(unknown)} of {len(vgs)} VGs left out of the cache; warm-up: exit "
        f"{w['rc']}, unknown VGs found {len(found)} ({'all' if set(found) == unknown else 'NOT the left-out ones'})"
        f"; vgs (hints=none) warm-up: exit {wv['rc']}, {len(listed)} VGs, {len(wv['touched'])} devices read")
    runs = {"check --discover": [], "check (no --discover)": [], "vgs hints=none": []}
    for _ in range(a.runs):
        runs["check --discover"].append(m.run(vd, vd_env))
        runs["check (no --discover)"].append(m.run([x for x in vd if x != "--discover"], vd_env))
        runs["vgs hints=none"].append(m.run(full, lab.a.env))
    log("  (with explicit --devices, check reads the label area (4 KiB) of every named device, and the "
        "header of every PV there, with or without --discover)")
    med = {}
    for name, rs in runs.items():
        wall, wmin, wmax = summary(rs, "wall")
        reads, _, _ = summary(rs, "reads")
        byts = statistics.median(r["bytes"] for r in rs)
        med[name] = {"wall": wall, "bytes": byts}
        log(f"  {name:21s} wall {wall * 1000:8.1f} ms ({wmin * 1000:.1f}-{wmax * 1000:.1f})  reads {reads:6.0f}"
            f"  bytes {fmt_bytes(byts):>11s}  peak RSS {max(r['rss_kib'] for r in rs) / 1024:5.1f} MiB  "
            f"exit {sorted({r['rc'] for r in rs})}")
    l = med["vgs hints=none"]
    ok = lambda c: "ok" if c else "MISSED"   # noqa: E731
    for name in ("check --discover",):
        d = med[name]
        log(f"  {name.strip()}: wall {d['wall'] / l['wall']:.3f} x vgs hints=none (target <= "
            f"{TARGETS['discover_wall']}) {ok(d['wall'] <= TARGETS['discover_wall'] * l['wall'])}; "
            f"bytes {100 * d['bytes'] / l['bytes']:.2f} % (target <= {TARGETS['bytes'] * 100:.0f} %) "
            f"{ok(d['bytes'] <= TARGETS['bytes'] * l['bytes'])}")


def scaling(a, log) -> int:
    """--scaling: for each machine size, set up (PVs and VGs in the default
    proportion), `pvscan --cache`, then R alternating runs of `check`,
    `check --vg bench000` (one VG of 4 PVs, whatever the machine size) and
    `vgs`; medians in one table.  vgdrift's cost should follow the PVs it
    checks: flat for one VG, proportional for all; not the devices."""
    sizes = a.scaling or [250, 1000, 4000]
    rows = []
    for n in sizes:
        k, v = max(1, n * 256 // 1000), max(1, n * 64 // 1000)
        workdir = Path(tempfile.mkdtemp(prefix=f"vgdrift-bench-{n}-"))
        lab = BenchLab(workdir)
        lab.exporter = None
        try:
            sub = argparse.Namespace(**{**vars(a), "devices": n, "pvs": k, "vgs": v})
            lay = setup(lab, sub, log)
            loops, backup = lay["loops"], lab.a.backup_dir
            vd_cmd, vd_env = vgdrift_cmd()
            vd = vd_cmd + ["check", "--cache-dir", str(backup), "--lvm-system-dir", str(lab.a.system_dir)]
            one = vd + ["--vg", lay["vgs"][0]]
            vgs_cmd = ["vgs", "--driverloaded", "n"]
            m = Measure(loops, set())
            m.run(["pvscan", "--cache"], lab.a.env)
            for cmd, env in ((vd, vd_env), (one, vd_env), (vgs_cmd, lab.a.env)):
                m.run(cmd, env)        # warm-up
            runs = {"all": [], "one": [], "vgs": []}
            for _ in range(a.runs):
                runs["all"].append(m.run(vd, vd_env))
                runs["one"].append(m.run(one, vd_env))
                runs["vgs"].append(m.run(vgs_cmd, lab.a.env))
            med = {name: {key: statistics.median(r[key] for r in rs) for key in ("wall", "reads")}
                   for name, rs in runs.items()}
            rcs = {name: sorted({r["rc"] for r in rs}) for name, rs in runs.items()}
            rows.append((len(loops), len(lay["pvs"]), len(lay["vgs"]), med, rcs,
                         max(r["rss_kib"] for r in runs["all"]) / 1024))
            log(f"  {len(loops)} devices: done ({a.runs} runs each)")
        finally:
            lab.close()
            lab.remove_created()
            shutil.rmtree(workdir, ignore_errors=True)
    log(f"\nscaling: medians of {a.runs} alternating runs; vgs after pvscan --cache (hints in use)")
    log(f"{'devices':>8} {'PVs':>5} {'VGs':>4} | {'check: wall':>11} {'reads':>6} {'RSS':>8} | "
        f"{'check --vg (4 PVs)':>18} {'reads':>5} | {'vgs: wall':>9} {'reads':>6} | {'check/vgs':>9}")
    for n, k, v, med, rcs, rss in rows:
        d, o, g = med["all"], med["one"], med["vgs"]
        log(f"{n:>8} {k:>5} {v:>4} | {d['wall'] * 1000:>8.1f} ms {d['reads']:>6.0f} {rss:>4.1f} MiB | "
            f"{o['wall'] * 1000:>15.1f} ms {o['reads']:>5.0f} | {g['wall'] * 1000:>6.1f} ms {g['reads']:>6.0f} | "
            f"{d['wall'] / g['wall']:>8.3f}x" + ("" if all(c == [0] for c in rcs.values()) else f"  exit {rcs}"))
    return 0


DEVICES_FILE_ENTRIES = 1000


def devices_file_bench(lab, a, log, m, vd_cmd, vd_env, backup, pvs) -> None:
    """`check` wall time with the node's configuration as is (no devices
    file: the filters decide) and with a devices file of 1000 entries in
    use (every bench PV listed, the rest other devices), alternating."""
    with_df = lab.workdir / "etc-devicesfile"
    (with_df / "devices").mkdir(parents=True, exist_ok=True)
    shutil.copy(lab.a.system_dir / "lvm.conf", with_df / "lvm.conf")
    (with_df / "lvmlocal.conf").write_text("devices {\n    use_devicesfile = 1\n}\n")
    r = lab.a.lvm("pvs", "--noheadings", "-o", "pv_name,pv_uuid", *pvs)
    lines = ["# written by tests/bench/bench.py", "VERSION=1.1.1"]
    for row in r.stdout.splitlines():
        if row.split():
            dev, uuid = row.split()
            lines.append(f"IDTYPE=devname IDNAME={dev} DEVNAME={dev} PVID={uuid.replace('-', '')}")
    for i in range(DEVICES_FILE_ENTRIES - (len(lines) - 2)):
        lines.append(f"IDTYPE=sys_wwid IDNAME=naa.6000bench{i:08d} DEVNAME=/dev/mapper/mpath{i} "
                     f"PVID=benchfill{i:023d}")
    (with_df / "devices" / "system.devices").write_text("\n".join(lines) + "\n")
    cmds = {"no devices file": vd_cmd + ["check", "--cache-dir", str(backup),
                                         "--lvm-system-dir", str(lab.a.system_dir)],
            f"devices file, {DEVICES_FILE_ENTRIES} entries": vd_cmd + [
                "check", "--cache-dir", str(backup), "--lvm-system-dir", str(with_df)]}
    w = m.run(cmds[f"devices file, {DEVICES_FILE_ENTRIES} entries"] + ["--format", "json"], vd_env)
    doc = json.loads(w["stdout"]) if w["stdout"].strip().startswith("{") else {}
    states = {}
    for x in doc.get("vgs", []):
        states[x["state"]] = states.get(x["state"], 0) + 1
    log(f"\ncheck with a devices file of {DEVICES_FILE_ENTRIES} entries (warm-up: exit {w['rc']}, "
        f"states {states or '?'}, devices file in use: {(doc.get('lvm') or {}).get('devices_file')})")
    runs = {name: [] for name in cmds}
    for _ in range(a.runs):
        for name, cmd in cmds.items():
            runs[name].append(m.run(cmd, vd_env))
    for name, rs in runs.items():
        wall, wmin, wmax = summary(rs, "wall")
        log(f"  {name:28s} wall {wall * 1000:8.1f} ms ({wmin * 1000:.1f}-{wmax * 1000:.1f})  "
            f"exit {sorted({r['rc'] for r in rs})}")


if __name__ == "__main__":
    sys.exit(main())
