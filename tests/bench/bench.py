#!/usr/bin/env python3
"""vgdrift vs LVM's own `vgs`: wall time, block-layer reads and bytes, peak RSS.

Run as root:

    python3 tests/bench/bench.py [--devices 1000 --pvs 256 --vgs 64 --runs 7]
    python3 tests/bench/bench.py --latency     # 100 / 32 / 8, 2 ms per read

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

Every loop attached here is detached at the end, also on failure or Ctrl-C
(tests/lab.py's teardown); nothing else is touched.
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

from lab import Lab, LabError, _clean_stderr  # noqa: E402

MIB = 1024 * 1024
TARGETS = {"wall": 0.5, "wall_latency": 0.25, "bytes": 0.05, "rss_mib": 30}
PR_SET_CHILD_SUBREAPER = 36


LOOP_CTL_REMOVE = 0x4C81


def loop_names() -> set:
    return {n for n in os.listdir("/sys/class/block") if n.startswith("loop")}


class BenchLab(Lab):
    """The lab's loop/FUSE handling and teardown, one node, our own lvm.conf.
    Also removes, after teardown, the loop devices that losetup -f created
    for us (a detached loop device stays in /sys/class/block and /dev
    otherwise, and a thousand of them slow down later scans of sysfs)."""

    def __init__(self, workdir):
        self.preexisting = loop_names()
        self.attached_names = []
        super().__init__(workdir)

    def _attach(self, path, sector_size):
        dev = super()._attach(path, sector_size)
        self.attached_names.append(os.path.basename(dev))
        return dev

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


def lvm_conf(devices, backup_dir, archive_dir, locking_dir) -> str:
    flt = "[ " + ", ".join([f'"a|^{d}$|"' for d in devices] + ['"r|.*|"']) + " ]"
    return f"""\
# Written by tests/bench/bench.py: only the bench's loops.
devices {{
    filter = {flt}
    global_filter = {flt}
    hints = "none"
    use_devicesfile = 0
    obtain_device_list_from_udev = 0
    external_device_info_source = "none"
}}
backup {{
    backup = 1
    backup_dir = "{backup_dir}"
    archive = 0
    archive_dir = "{archive_dir}"
}}
global {{
    locking_dir = "{locking_dir}"
    use_lvmpolld = 0
    event_activation = 0
}}
activation {{
    monitoring = 0
    udev_sync = 0
    udev_rules = 0
}}
"""


def only(devices) -> str:
    """--config value restricting a setup command to `devices`."""
    flt = "[ " + ", ".join([f'"a|^{d}$|"' for d in devices] + ['"r|.*|"']) + " ]"
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
    """The venv's console script when run from a venv, else python -m with PYTHONPATH."""
    env = dict(os.environ)
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
        log(f"loop devices: all {n} attached on demand via losetup -f (/dev/loop-control)")
    n = len(loops)
    k = min(a.pvs, n)
    v = max(1, min(a.vgs, k))
    # PVs spread evenly among the devices, so blank disks sit between them.
    pv_idx = [i * n // k for i in range(k)]
    pvs = [loops[i] for i in pv_idx]
    t_attach = time.monotonic() - t0

    node = lab.a
    conf = node.system_dir / "lvm.conf"
    conf.write_text(lvm_conf(pvs, node.backup_dir, node.archive_dir, node.locking_dir))
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
    conf.write_text(lvm_conf(loops, node.backup_dir, node.archive_dir, node.locking_dir))
    return {"loops": loops, "pvs": pvs, "vgs": vg_names, "t_attach": t_attach,
            "t_lvm": time.monotonic() - t0 - t_attach}


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
                   help="also print a cProfile of one vgdrift check (parent process)")
    a = p.parse_args()
    defaults = (100, 32, 8) if a.latency else (1000, 256, 64)
    a.devices = a.devices or defaults[0]
    a.pvs = a.pvs or defaults[1]
    a.vgs = a.vgs or defaults[2]
    if os.geteuid() != 0:
        print("bench.py needs root (loop devices, LVM)", file=sys.stderr)
        return 2
    if a.pvs > a.devices or a.vgs > a.pvs or a.size_mib < 4:
        print("need vgs <= pvs <= devices and --size-mib >= 4", file=sys.stderr)
        return 2

    def log(msg):
        print(msg, flush=True)

    def term(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, term)
    subreaper = set_subreaper()

    workdir = Path(a.workdir or tempfile.mkdtemp(prefix="vgdrift-bench-"))
    lab = BenchLab(workdir)
    try:
        return bench(lab, a, log, subreaper)
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        t0 = time.monotonic()
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

    vd_cmd, vd_env = vgdrift_cmd()
    vd = vd_cmd + ["check", "--cache-dir", str(backup)]
    vgs_cmd = ["vgs", "--driverloaded", "n"]
    keep = {lab.fuse.proc.pid} if lab.fuse is not None else set()
    m = Measure(loops, keep)
    stamp = lambda: {f.name: f.stat().st_mtime_ns for f in backup.iterdir()}  # noqa: E731
    mtimes = stamp()

    # Warm-up (untimed): checks both agree, warms the page cache of binaries
    # and Python modules for both alike.
    w = m.run(vd_cmd + ["check", "--cache-dir", str(backup), "--format", "json"], vd_env)
    doc = json.loads(w["stdout"]) if w["stdout"].strip().startswith("{") else {}
    states = {}
    for x in doc.get("vgs", []):
        states[x["state"]] = states.get(x["state"], 0) + 1
    log(f"vgdrift warm-up: exit {w['rc']}, states {states or '?'}, own counters "
        f"{doc.get('reads')} reads / {fmt_bytes(doc.get('read_bytes') or 0)}"
        + (f"; stderr: {w['stderr'].strip()[:300]}" if w["rc"] else ""))
    wv = m.run(vgs_cmd, lab.a.env)
    lines = [l for l in wv["stdout"].splitlines()[1:] if l.strip()]
    log(f"vgs warm-up: exit {wv['rc']}, {len(lines)} VGs listed"
        + (f"; stderr: {_clean_stderr(wv['stderr'])[:300]}" if wv["rc"] else ""))

    if a.profile:
        prof = subprocess.run([sys.executable, "-m", "cProfile", "-s", "tottime", "-m", "vgdrift", "check",
                               "--cache-dir", str(backup)], capture_output=True, text=True, env=vd_env)
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
    log(f"  wall   {d['wall'] / l['wall']:.3f} x vgs   (target <= {wall_target})  {verdict(d['wall'] <= wall_target * l['wall'])}")
    log(f"  bytes  {100 * d['bytes'] / l['bytes']:.2f} % of vgs (target <= {TARGETS['bytes'] * 100:.0f} %)  "
        f"{verdict(d['bytes'] <= TARGETS['bytes'] * l['bytes'])}")
    log(f"  reads  {d['reads']:.0f} vs PVs+VGs {k + v}   (target <=)  {verdict(d['reads'] <= k + v)}")
    log(f"  RSS    {d['rss']:.1f} MiB   (target <= {TARGETS['rss_mib']} MiB)  {verdict(d['rss'] <= TARGETS['rss_mib'])}")
    if not m.time:
        log("  (no /usr/bin/time: RSS figures include the bench's own RSS at fork)")
    if not subreaper:
        log("  (could not become a child subreaper: an unreaped worker's RSS is not counted)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
