"""End to end across nodes (issue 11): the lab's node A and node B both run
`vgdrift serve` (each its own cache directory and devices), a real
Prometheus scrapes both every second with the rules rendered by
alerts/generate.py (`for:` of the two cross-node alerts shortened, every
other alert as committed), a real Alertmanager notifies a webhook run by
this test.

Each exporter's candidate devices are symlinks in a directory of its own
(--devices DIR/*), one per disk, to that node's loop device: giving node B
another view of a disk is repointing its symlink.

Scenario:
1. Ten ordinary commits on node A, both exporters scanning every second:
   nothing is notified (a commit in flight is not a disagreement).
2. Node B is given a consistent stale view: loops over snapshot images of
   every PV of the VG, taken before a change on node A.  Node B says
   in_sync; LVMVGNodesDisagree fires with the VG's vg_uuid and names both
   instances; the fleet panels of the dashboard return data.  It resolves
   when node B's links point at its loops over the real images again.
3. Node A creates a VG on a free shared disk: LVMVGUnknownOnNode fires for
   node B (never for node A, which wrote its backup right after the
   disks), and resolves after node B's vgcfgbackup.

Every process is stopped and every loop device detached at the end, even on
failure (fixture teardown; the `lab` fixture checks no loop is left).
"""

import importlib.util
import json
import os
import shutil
import time
from pathlib import Path

import pytest

from helpers import free_port
from test_e2e import JOB, Stack, http_get, wait_for
from test_grafana import dashboard_queries

ROOT = Path(__file__).resolve().parent.parent
VG = "fleet_vg"
NEW_VG = "fleet_new"
# The two cross-node alerts' `for:` in the test's rendering: several scan
# intervals (1 s), so that a commit in flight (one scan) never lasts that
# long.  Every other alert keeps its committed `for:` (minutes): the test
# would notice any of them firing as an unexpected notification.
FOR = {"LVMVGNodesDisagree": "10s", "LVMVGUnknownOnNode": "5s"}
COMMIT_PAUSE = 2.0       # seconds between the ten commits, as ordinary changes are spaced


def render_rules(path):
    spec = importlib.util.spec_from_file_location("alerts_generate", ROOT / "alerts" / "generate.py")
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    fors = dict(gen.DEFAULT_FORS)
    fors.update({gen.FOR_KEYS[name]: value for name, value in FOR.items()})
    path.write_text(gen.render(gen.Params(fors=fors)))
    return path


class Fleet(Stack):
    """Alertmanager, two exporters (node A, node B) and Prometheus."""

    def __init__(self, lab, tmp):
        super().__init__(lab, tmp)
        self.instances = {}

    def link(self, node, disk, dev):
        """Point `node`'s candidate `disk` at `dev` (atomically)."""
        d = self.tmp / f"devs-{node}"
        d.mkdir(exist_ok=True)
        tmp = d / f".{disk.name}.tmp"
        if tmp.is_symlink():
            tmp.unlink()
        os.symlink(dev, tmp)
        os.replace(tmp, d / disk.name)

    def start(self):
        self.start_alertmanager()
        for node in self.lab.nodes:
            for disk in self.lab.disks:
                self.link(node.name, disk, disk.on(node))
            self.instances[node.name] = f"127.0.0.1:{free_port()}"
            self.start_serve(f"vgdrift serve {node.name}", self.instances[node.name],
                             ["--cache-dir", node.backup_dir,
                              "--devices", str(self.tmp / f"devs-{node.name}" / "*"),
                              "--discovery.interval", "1s"])
        prom_dir = self.tmp / "prometheus"
        prom_dir.mkdir()
        self.start_prometheus(render_rules(prom_dir / "vgdrift.rules.yml"), self.instances.values())
        return self

    def query(self, expr):
        return super().query(expr)["result"]

    def wait_alert(self, alertname, status, since, timeout=90, **labels):
        # Two exporters and the fleet rules' own `for:` take longer than one.
        return super().wait_alert(alertname, status, since, timeout=timeout, **labels)


@pytest.fixture
def fleet(lab, tmp_path):
    d0, d1, free = lab.add_disk("fl0", 64), lab.add_disk("fl1", 64), lab.add_disk("flfree", 16)
    lab.a.lvm("pvcreate", d0.a, d1.a)
    lab.a.lvm("vgcreate", VG, d0.a, d1.a)
    lab.a.lvm("lvcreate", "-L", "4m", "-n", "lv0", VG)
    lab.b.vgcfgbackup(VG)
    f = Fleet(lab, tmp_path)
    try:
        f.start()
        yield f, d0, d1, free
    finally:
        f.close()      # before the lab fixture detaches the loops


def states(fleet, vg_uuid):
    """{instance: state} of the VG id, from the recording rule."""
    return {s["metric"]["instance"]: s["metric"]["state"] for s in fleet.query(
        f'instance_vg_uuid:vgdrift_vg_state:join{{job="{JOB}", vg_uuid="{vg_uuid}"}}')}


def disk_seqnos(fleet, vg_uuid):
    return {s["metric"]["instance"]: int(float(s["value"][1])) for s in fleet.query(
        f'instance_vg_uuid:vgdrift_vg_disk_seqno:join{{job="{JOB}", vg_uuid="{vg_uuid}"}}')}


def history(fleet, seconds=60):
    """What each exporter said over the last minute, per scrape, and the
    processes' logs: for a failure message (which node lagged, and whether
    its scans failed, stalled, or its scrapes did)."""
    lines = []
    for expr in (f'vgdrift_vg_seqno{{job="{JOB}", vg="{VG}", source="disk"}}',
                 f'vgdrift_last_scan_timestamp_seconds{{job="{JOB}"}}',
                 f'vgdrift_last_scan_success{{job="{JOB}"}}',
                 f'scrape_duration_seconds{{job="{JOB}"}}', f'up{{job="{JOB}"}}'):
        for s in fleet.query(f"{expr}[{seconds}s]"):
            values = " ".join(f"{float(t):.1f}={float(v):.3f}" for t, v in s["values"])
            lines.append(f'{s["metric"]["__name__"]} {s["metric"]["instance"]}: {values}')
    return "\n".join(lines) + "\n" + fleet.logs()


def test_fleet_disagreement_and_unknown_vgs(fleet):
    fleet, d0, d1, free = fleet
    lab = fleet.lab
    a, b = fleet.instances["a"], fleet.instances["b"]
    uuid = lab.a.vgs_truth(VG)["uuid"]

    def rules_health():
        groups = json.loads(http_get(fleet.prom_url + "/api/v1/rules")[1])["data"]["groups"]
        return {r["name"]: r["health"] for g in groups for r in g["rules"]}
    wait_for("the rules to be evaluated", lambda: set(rules_health().values()) == {"ok"}, procs=fleet.procs)
    wait_for("both nodes in sync, joined by the VG id",
             lambda: states(fleet, uuid) == {a: "in_sync", b: "in_sync"}, procs=fleet.procs)

    # 1. Ten ordinary commits on node A: no notification at all.
    for i in range(10):
        lab.a.lvm("lvcreate", "-L", "4m", "-n", f"c{i}", VG)
        time.sleep(COMMIT_PAUSE)
    seqno = lab.a.vgs_truth(VG)["seqno"]
    wait_for("both nodes to read the last commit",
             lambda: disk_seqnos(fleet, uuid) == {a: seqno, b: seqno}, procs=fleet.procs)
    time.sleep(3)      # an alert that fired at the last evaluation reaches the webhook
    assert fleet.webhook.alerts() == [], f"{fleet.webhook.alerts()}\n{history(fleet)}"
    assert fleet.query('ALERTS{alertname="LVMVGNodesDisagree", alertstate="firing"}') == []
    lab.b.vgcfgbackup(VG)
    wait_for("node B in sync again", lambda: states(fleet, uuid)[b] == "in_sync", procs=fleet.procs)

    # 2. Node B's view goes stale: loops over snapshots of both PVs' images.
    snaps = {}
    for disk in (d0, d1):
        image = lab.image_dir / f"snap-{disk.name}.img"
        shutil.copyfile(disk.image, image)
        lab._images.append(image)                 # removed at teardown
        snaps[disk.name] = lab._attach(image, 512)  # detached at teardown
    for disk in (d0, d1):
        fleet.link("b", disk, snaps[disk.name])
    t = time.monotonic()
    lab.a.lvm("lvcreate", "-L", "4m", "-n", "after_snapshot", VG)
    new_seqno = lab.a.vgs_truth(VG)["seqno"]
    wait_for("node A reading the change, node B the snapshot",
             lambda: disk_seqnos(fleet, uuid) == {a: new_seqno, b: seqno}, procs=fleet.procs)
    disagree = fleet.wait_alert("LVMVGNodesDisagree", "firing", t, vg_uuid=uuid)
    assert {k: disagree["labels"].get(k) for k in ("severity", "job", "vg_uuid", "vg")} == {
        "severity": "critical", "job": JOB, "vg_uuid": uuid, "vg": VG}, disagree
    assert "instance" not in disagree["labels"]
    description = disagree["annotations"]["description"]
    assert f"{a} seqno {new_seqno}" in description and f"{b} seqno {seqno}" in description, description
    # Node B itself says in_sync: only the cross-node rule catches it.
    assert states(fleet, uuid) == {a: "in_sync", b: "in_sync"}
    # The fleet panels of the dashboard return data now.
    for q in dashboard_queries({"job": JOB, "instance": ".+", "vg": ".+"}):
        if "vg_uuid:" in q:
            wait_for(f"data for dashboard query\n{q}", lambda q=q: fleet.query(q) or None, timeout=20,
                     procs=fleet.procs)

    t = time.monotonic()
    for disk in (d0, d1):
        fleet.link("b", disk, disk.b)
    fleet.wait_alert("LVMVGNodesDisagree", "resolved", t, vg_uuid=uuid)
    assert states(fleet, uuid)[b] == "drift"      # node B's cache is behind now: its own alert's job

    # 3. Node A creates a VG on the free disk: unknown to node B only.
    t = time.monotonic()
    lab.a.lvm("pvcreate", free.a)
    lab.a.lvm("vgcreate", NEW_VG, free.a)
    new_uuid = lab.a.vgs_truth(NEW_VG)["uuid"]
    unknown = fleet.wait_alert("LVMVGUnknownOnNode", "firing", t, vg=NEW_VG)
    assert {k: unknown["labels"].get(k) for k in ("severity", "job", "instance", "vg", "vg_uuid")} == {
        "severity": "warning", "job": JOB, "instance": b, "vg": NEW_VG, "vg_uuid": new_uuid}, unknown
    q = next(q for q in dashboard_queries({"job": JOB, "instance": ".+", "vg": ".+"})
             if "vgdrift_unknown_vg_info" in q)
    assert [s["metric"]["instance"] for s in fleet.query(q)] == [b]
    t = time.monotonic()
    lab.b.vgcfgbackup(NEW_VG)
    fleet.wait_alert("LVMVGUnknownOnNode", "resolved", t, vg=NEW_VG, instance=b)
    wait_for("the new VG in both caches", lambda: states(fleet, new_uuid) == {a: "in_sync", b: "in_sync"},
             procs=fleet.procs)

    # Node A, which created the VG, never reported it as unknown (its
    # backup is written after the disks; the cache is read after the labels).
    assert fleet.query(f'max_over_time(vgdrift_unknown_vg_info{{instance="{a}"}}[1h])') == []
    assert not fleet.webhook.find("LVMVGUnknownOnNode", "firing", instance=a)
    notified = {x["labels"]["alertname"] for x in fleet.webhook.alerts()}
    assert notified == {"LVMVGNodesDisagree", "LVMVGUnknownOnNode"}, f"{notified}\n{fleet.logs()}"
