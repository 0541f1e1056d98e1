"""Scrapes under abuse: `vgdrift serve` answering a normal scraper while
200 idle sockets, 200 slowloris connections and 4 slow readers hammer it.

    python3 tests/bench/abuse.py [--seconds 60] [--idle 200] [--slowloris 200] [--readers 4]

No root needed: the exporter scans a copy of the test fixture `drift` (a
cache file and two PV images), on 127.0.0.1 and a free port.  The abusers
run in this process on one asyncio loop and reconnect whenever the server
closes them, as an attacker would:

- idle: connect, send nothing, wait to be closed;
- slowloris: a request line, then one header byte per second, never the end;
- slow readers: 50 pipelined GETs of /metrics, then read 2 KB per second.

The scraper (a thread, like Prometheus: one keep-alive connection,
reconnected when dropped) GETs /metrics every 200 ms with a 10 s timeout.
Printed: scrapes answered, latency p50/p99/max, the exporter's peak RSS
(VmHWM), the log lines from its HTTP side, and its refusal counters.
Targets (issue 9): 100 % answered, p99 <= 50 ms, RSS <= 60 MiB, <= 20 log
lines from the HTTP side.
"""

import argparse
import asyncio
import http.client
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))

from helpers import drift_node, free_port  # noqa: E402

TARGETS = {"answered": 100.0, "p99_ms": 50.0, "rss_mib": 60.0, "http_log_lines": 20}


def percentile(values, q):
    values = sorted(values)
    if not values:
        return float("nan")
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def start_exporter(work: Path, port: int, log_path: Path) -> subprocess.Popen:
    cache, devs = drift_node(work)
    env = dict(os.environ, PYTHONPATH=str(ROOT / "exporter"))
    log = open(log_path, "wb")
    proc = subprocess.Popen([sys.executable, "-m", "vgdrift", "serve", "--cache-dir", str(cache),
                             "--devices", str(devs / "*.img"), "--web.listen-address", f"127.0.0.1:{port}",
                             "--scan.interval", "5s"], env=env, stdout=log, stderr=log)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/-/ready")
            if conn.getresponse().status == 200:
                conn.close()
                return proc
            conn.close()
        except OSError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise SystemExit("exporter did not become ready:\n" + log_path.read_text()[-2000:])


# --- abusers (asyncio, in this process) ----------------------------------------

async def idle(port, stop, stats):
    while not stop.is_set():
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            stats["idle_connects"] += 1
            while not stop.is_set():
                try:
                    if not await asyncio.wait_for(reader.read(1024), 1.0):
                        break
                except asyncio.TimeoutError:
                    continue
            writer.close()
        except OSError:
            await asyncio.sleep(0.1)


async def slowloris(port, stop, stats):
    header = b"X-Slow: " + b"a" * 100000
    while not stop.is_set():
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            stats["slowloris_connects"] += 1
            writer.write(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
            for i in range(len(header)):
                if stop.is_set() or reader.at_eof():
                    break
                writer.write(header[i:i + 1])
                await writer.drain()
                await asyncio.sleep(1.0)
            writer.close()
        except OSError:
            await asyncio.sleep(0.1)


async def slow_reader(port, stop, stats):
    request = b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"
    while not stop.is_set():
        try:
            sock = socket.create_connection(("127.0.0.1", port))
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.setblocking(False)
            reader, writer = await asyncio.open_connection(sock=sock)
            stats["reader_connects"] += 1
            writer.write(request * 50)
            while not stop.is_set():
                data = await reader.read(2048)
                if not data:
                    break
                stats["reader_bytes"] += len(data)
                await asyncio.sleep(1.0)
            writer.close()
        except OSError:
            await asyncio.sleep(0.1)


def run_abusers(port, args, stop_flag: threading.Event, stats):
    async def main():
        stop = asyncio.Event()

        async def watch():
            while not stop_flag.is_set():
                await asyncio.sleep(0.1)
            stop.set()

        tasks = [asyncio.ensure_future(idle(port, stop, stats)) for _ in range(args.idle)]
        tasks += [asyncio.ensure_future(slowloris(port, stop, stats)) for _ in range(args.slowloris)]
        tasks += [asyncio.ensure_future(slow_reader(port, stop, stats)) for _ in range(args.readers)]
        await watch()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    asyncio.run(main())


# --- the scraper -----------------------------------------------------------------

def scrape(port, seconds, every=0.2):
    latencies, failures = [], []
    conn = None
    end = time.monotonic() + seconds
    next_at = time.monotonic()
    while time.monotonic() < end:
        next_at += every
        t0 = time.perf_counter()
        try:
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            conn.request("GET", "/metrics", headers={"Accept-Encoding": "gzip"})
            response = conn.getresponse()
            body = response.read()
            if response.status != 200 or not body:
                failures.append(f"status {response.status}")
            else:
                latencies.append(time.perf_counter() - t0)
        except (OSError, http.client.HTTPException) as e:
            # A kept-alive connection the server closed meanwhile: retried
            # at once on a new one, as Prometheus's client does.
            if conn is not None:
                conn.close()
            conn = None
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                conn.request("GET", "/metrics", headers={"Accept-Encoding": "gzip"})
                response = conn.getresponse()
                response.read()
                if response.status == 200:
                    latencies.append(time.perf_counter() - t0)
                else:
                    failures.append(f"status {response.status}")
            except (OSError, http.client.HTTPException) as e2:
                failures.append(f"{type(e).__name__}/{type(e2).__name__}")
                conn = None
        time.sleep(max(0.0, next_at - time.monotonic()))
    return latencies, failures


def proc_status(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if value.strip().endswith("kB"):
                out[key] = int(value.split()[0])
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=60)
    p.add_argument("--idle", type=int, default=200)
    p.add_argument("--slowloris", type=int, default=200)
    p.add_argument("--readers", type=int, default=4)
    args = p.parse_args()
    work = Path(tempfile.mkdtemp(prefix="vgdrift-abuse-"))
    port = free_port()
    log_path = work / "serve.log"
    proc = start_exporter(work, port, log_path)
    lines_before = len(log_path.read_text().splitlines())
    stats = {k: 0 for k in ("idle_connects", "slowloris_connects", "reader_connects", "reader_bytes")}
    stop = threading.Event()
    abusers = threading.Thread(target=run_abusers, args=(port, args, stop, stats), daemon=True)
    try:
        abusers.start()
        time.sleep(2)                      # let the abuse build up first
        latencies, failures = scrape(port, args.seconds)
        status = proc_status(proc.pid)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/metrics")
        metrics = conn.getresponse().read().decode()
        conn.close()
    finally:
        stop.set()
        abusers.join(10)
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
    log_lines = log_path.read_text().splitlines()[lines_before:]
    http_lines = [line for line in log_lines if "logger=vgdrift.server" in line]
    total = len(latencies) + len(failures)
    answered = 100.0 * len(latencies) / total if total else 0.0
    ms = [x * 1000 for x in latencies]
    rss = status.get("VmHWM", 0) / 1024
    refused = dict(re.findall(r'vgdrift_http_refused_total\{reason="(\w+)"\} (\S+)', metrics))

    def verdict(ok):
        return "ok" if ok else "MISSED"

    print(f"abuse for {args.seconds:.0f} s: {args.idle} idle, {args.slowloris} slowloris, "
          f"{args.readers} slow readers (reconnecting: {stats['idle_connects']} idle, "
          f"{stats['slowloris_connects']} slowloris, {stats['reader_connects']} reader connections; "
          f"readers got {stats['reader_bytes']} bytes)")
    print(f"scrapes answered: {len(latencies)}/{total} ({answered:.1f} %)  {verdict(answered >= 100.0)}"
          + (f"; failures: {sorted(set(failures))}" if failures else ""))
    if ms:
        print(f"latency: p50 {statistics.median(ms):.1f} ms, p99 {percentile(ms, 0.99):.1f} ms, "
              f"max {max(ms):.1f} ms  {verdict(percentile(ms, 0.99) <= TARGETS['p99_ms'])}")
    print(f"exporter peak RSS (VmHWM): {rss:.1f} MiB  {verdict(rss <= TARGETS['rss_mib'])}")
    print(f"exporter log lines during the run: {len(log_lines)}, from the HTTP side: {len(http_lines)}  "
          f"{verdict(len(http_lines) <= TARGETS['http_log_lines'])}")
    print(f"vgdrift_http_refused_total: {refused}")
    for line in http_lines[:5]:
        print("  " + line[:300])
    shutil.rmtree(work, ignore_errors=True)
    ok = (answered >= 100.0 and ms and percentile(ms, 0.99) <= TARGETS["p99_ms"]
          and rss <= TARGETS["rss_mib"] and len(http_lines) <= TARGETS["http_log_lines"])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
