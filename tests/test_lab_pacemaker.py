"""The OCF agents on a real single-node Pacemaker cluster (issue 10).

corosync and pacemakerd run in their own namespaces (tests/cluster.py),
ring on the namespace's own 127.0.0.1. The cluster node is the lab's node
B: the agents get B's cache, B's loops and B's LVM system dir; node A
changes the VG on the host. The group {ocf:vgdrift:guard, ocf:pacemaker:
Dummy} stands for {guard, LVM-activate, ...}.
"""

import pytest

from cluster import (
    Cluster,
    agent_params,
    failures,
    guard_group,
    health_clone,
    resource_state,
    sync_links,
    vg_cached_on_b,
    wait_for,
)
from lab import pv_layout

VG = "vgha"


@pytest.fixture
def one_node(lab, tmp_path):
    """A VG over two disks, node B's cache in sync, a one-node cluster on
    node B. Torn down (cluster first, then the lab) even on failure."""
    links, disks = vg_cached_on_b(lab, tmp_path, VG)
    cluster = Cluster(tmp_path / "cluster", [lab.b.system_dir])
    try:
        cluster.start()
        yield lab, cluster, links, disks
    finally:
        cluster.close()


def dummy_state(node):
    """ocf:pacemaker:Dummy's state file: present exactly while it runs."""
    return node.dir / "run" / "Dummy-dummy.state"


def set_role(cluster, rid, role):
    cluster.crm("crm_resource", "--resource", rid, "--meta", "--set-parameter", "target-role",
                "--parameter-value", role)
    cluster.settle()


def restart(cluster, rid):
    set_role(cluster, rid, "Stopped")
    assert resource_state(cluster.nodes[0].mon(), "guard") == []
    set_role(cluster, rid, "Started")


def test_group_starts_in_sync_and_refreshes_drift(one_node):
    lab, cluster, links, _ = one_node
    node = cluster.nodes[0]
    params = agent_params(lab.b, links)
    cluster.crm("cibadmin", "--create", "-o", "resources", "--xml-text", guard_group(params, VG))
    cluster.settle()

    # 1. In sync: the group runs.
    mon = node.mon()
    assert resource_state(mon, "guard") == ["node1"]
    assert resource_state(mon, "dummy") == ["node1"]
    assert failures(mon, "guard") == []
    assert dummy_state(node).exists()

    # 2. Node A adds an LV: node B's cache drifts. A restart of the group
    #    refreshes it (vgcfgbackup with B's LVM_SYSTEM_DIR, into B's cache)
    #    and the group runs.
    lab.a.lvm("lvcreate", "-L", "4m", "-n", "lv2", VG)
    truth = lab.a.vgs_truth(VG)
    assert f"seqno = {truth['seqno']}\n" not in lab.b.read_backup(VG)
    restart(cluster, "grp")
    mon = node.mon()
    assert resource_state(mon, "guard") == ["node1"], failures(mon, "guard")
    assert resource_state(mon, "dummy") == ["node1"]
    backup = lab.b.read_backup(VG)
    assert f"seqno = {truth['seqno']}\n" in backup and "lv2 {" in backup
    # Written by the guard's refresh action: the lab's own vgcfgbackup
    # runs with --driverloaded n, the check's refresh action without.
    (desc,) = [line for line in backup.splitlines() if line.startswith("description = ")]
    assert "'vgcfgbackup " in desc and "--driverloaded" not in desc, desc


def test_unsafe_node_refused_health_red_then_cleanup(one_node):
    lab, cluster, links, (_, d2) = one_node
    node = cluster.nodes[0]
    params = agent_params(lab.b, links)
    cluster.crm("cibadmin", "--create", "-o", "resources", "--xml-text", health_clone(params))
    cluster.crm("cibadmin", "--create", "-o", "resources", "--xml-text", guard_group(params, VG))
    cluster.settle()
    assert resource_state(node.mon(), "dummy") == ["node1"]
    # 4. In sync: green.
    wait_for("#health-vgdrift green", lambda: node.health() == "green", timeout=60)

    # 3. A PV of the VG vanishes from node B: unsafe (partial).
    lab.detach(d2, "b")
    sync_links(links, lab, "b")
    wait_for("#health-vgdrift red", lambda: node.health() == "red", timeout=60)
    restart(cluster, "grp")
    mon = node.mon()
    assert resource_state(mon, "guard") == []
    assert resource_state(mon, "dummy") == []
    (fail,) = failures(mon, "guard")
    assert fail["task"] == "start" and fail["exitcode"] == "1", fail
    reason = fail["exitreason"]
    assert reason.startswith(f"{VG} partial (pv_missing): PV {pv_layout(d2.image)['pv_uuid']} "
                             "missing"), reason
    # The Dummy (LVM-activate) was not started again: no state file.
    assert failures(mon, "dummy") == []
    assert not dummy_state(node).exists()

    # The PV is back: green again; after a cleanup the group runs.
    lab.reattach(d2, "b")
    sync_links(links, lab, "b")
    wait_for("#health-vgdrift green", lambda: node.health() == "green", timeout=60)
    cluster.crm("crm_resource", "--cleanup", "--resource", "grp")
    cluster.settle()
    mon = node.mon()
    assert resource_state(mon, "guard") == ["node1"]
    assert resource_state(mon, "dummy") == ["node1"]
    assert failures(mon, "guard") == []
