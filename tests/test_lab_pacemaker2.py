"""The OCF agents on a real two-node Pacemaker cluster: a failover (issue 10).

Two nodes on this machine, one set of namespaces each (tests/cluster.py),
corosync knet over a veth pair between them, `two_node`, no fencing. /dev
is shared, so the lab's images are the shared disks: cluster node1 is lab
node A (A's loops, cache and LVM config: it is the node that changes the
VG), node2 is lab node B. The group {guard, ocf:pacemaker:Dummy} runs on
node1 with stickiness; a crash is SIGKILL to node1's PID 1 (all its
processes die at once, like a power cut).
"""

import pytest

from cluster import (
    Cluster,
    agent_params,
    failures,
    guard_group,
    health_clone,
    node_attr,
    require_cluster,
    resource_state,
    started_on,
    sync_links,
    wait_for,
    wait_offline,
)
from lab import make_vg, pv_layout

VG = "vgha"

PREFER_NODE1 = '<rsc_location id="grp-prefers-node1" rsc="grp" node="node1" score="50"/>'


def two_nodes(lab, tmp_path, properties=None):
    d1, d2 = lab.add_disk("d1"), lab.add_disk("d2")
    make_vg(lab, VG, [d1, d2])
    lab.b.vgcfgbackup(VG)
    links = {"a": tmp_path / "dev-a", "b": tmp_path / "dev-b"}
    for n, d in links.items():
        sync_links(d, lab, n)
    cluster = Cluster(tmp_path / "cluster", [lab.a.system_dir, lab.b.system_dir],
                      properties=properties)
    return cluster, links, (d1, d2)


@pytest.fixture
def pair(lab, tmp_path):
    """node-health-strategy at its default: the guard itself decides."""
    require_cluster()
    cluster, links, disks = two_nodes(lab, tmp_path)
    try:
        cluster.start()
        yield lab, cluster, links, disks
    finally:
        cluster.close()


@pytest.fixture
def pair_migrate_on_red(lab, tmp_path):
    require_cluster()
    cluster, links, disks = two_nodes(lab, tmp_path, {"node-health-strategy": "migrate-on-red"})
    try:
        cluster.start()
        yield lab, cluster, links, disks
    finally:
        cluster.close()


def configure(lab, cluster, links):
    """The health clone on both nodes, the guard group preferring node1
    with stickiness. Each node gets its own lab node's cache, devices and
    LVM dir."""
    per_node = {"node1": agent_params(lab.a, links["a"]), "node2": agent_params(lab.b, links["b"])}
    common = {"timeout": per_node["node1"]["timeout"]}
    cluster.crm("crm_attribute", "--type", "rsc_defaults", "--name", "resource-stickiness",
                "--update", "100")
    cluster.crm("cibadmin", "--create", "-o", "resources", "--xml-text",
                health_clone(common, per_node=per_node))
    cluster.crm("cibadmin", "--create", "-o", "resources", "--xml-text",
                guard_group(common, VG, per_node=per_node))
    cluster.crm("cibadmin", "--create", "-o", "constraints", "--xml-text", PREFER_NODE1)
    cluster.settle()


def colours(cluster, want):
    """Wait until #health-vgdrift is ``want`` ({node: colour or None})."""
    wait_for(f"#health-vgdrift {want}",
          lambda: {n: node_attr(cluster, n) for n in want} == want, timeout=60)


def test_failover_to_drifted_node_refreshes(pair):
    lab, cluster, links, _ = pair
    node1, node2 = cluster.nodes
    configure(lab, cluster, links)
    mon = node2.mon()
    assert resource_state(mon, "guard") == ["node1"]
    assert resource_state(mon, "dummy") == ["node1"]
    colours(cluster, {"node1": "green", "node2": "green"})

    # Node 1 changes the VG: node 2's cache drifts (yellow).
    lab.a.lvm("lvcreate", "-L", "4m", "-n", "lv2", VG)
    colours(cluster, {"node1": "green", "node2": "yellow"})

    node1.crash()
    wait_offline(cluster, node1)
    cluster.settle()
    mon = node2.mon()
    # Node 2's guard refreshed its cache, and the group runs there.
    assert resource_state(mon, "guard") == ["node2"], failures(mon, "guard")
    assert resource_state(mon, "dummy") == ["node2"]
    assert failures(mon, "guard") == []
    truth_seqno = max(int(line.split("=")[1]) for line in lab.a.read_backup(VG).splitlines()
                      if line.strip().startswith("seqno = "))
    assert f"seqno = {truth_seqno}\n" in lab.b.read_backup(VG)
    # A node that is down has no attribute; node 2 is in sync again.
    colours(cluster, {"node1": None, "node2": "green"})


def running_on_node1_then_node2_red(lab, cluster, links, d2):
    """The group runs on node 1, both nodes green; then a PV of the VG
    vanishes from node 2, which makes it unsafe there (red)."""
    node2 = cluster.nodes[1]
    configure(lab, cluster, links)
    assert resource_state(node2.mon(), "dummy") == ["node1"]
    colours(cluster, {"node1": "green", "node2": "green"})
    lab.detach(d2, "b")
    sync_links(links["b"], lab, "b")
    colours(cluster, {"node1": "green", "node2": "red"})


def test_failover_to_unsafe_node_refused_then_back(pair):
    lab, cluster, links, (_, d2) = pair
    node1, node2 = cluster.nodes
    running_on_node1_then_node2_red(lab, cluster, links, d2)

    node1.crash()
    wait_offline(cluster, node1)
    cluster.settle()
    mon = node2.mon()
    # The guard refused: nothing of the group runs, the Dummy (LVM-activate)
    # was never started on node 2.
    assert resource_state(mon, "guard") == []
    assert resource_state(mon, "dummy") == []
    assert not started_on(mon, "dummy", "node2")
    (fail,) = failures(mon, "guard")
    assert fail["node"] == "node2" and fail["task"] == "start", fail
    assert fail["exitreason"].startswith(
        f"{VG} partial (pv_missing): PV {pv_layout(d2.image)['pv_uuid']} missing"), fail
    colours(cluster, {"node1": None, "node2": "red"})

    # Node 1 comes back: the group returns there.
    cluster.restart(node1)
    cluster.settle()
    mon = node2.mon()
    assert resource_state(mon, "guard") == ["node1"]
    assert resource_state(mon, "dummy") == ["node1"]
    colours(cluster, {"node1": "green", "node2": "red"})


def test_migrate_on_red_never_tries_a_red_node(pair_migrate_on_red):
    lab, cluster, links, (_, d2) = pair_migrate_on_red
    node1, node2 = cluster.nodes
    running_on_node1_then_node2_red(lab, cluster, links, d2)
    # The health clone stays on the red node (allow-unhealthy-nodes).
    assert "node2" in resource_state(node2.mon(), "health")

    node1.crash()
    wait_offline(cluster, node1)
    cluster.settle()
    mon = node2.mon()
    # Never placed on the red node: no start attempt, so no failure either.
    assert resource_state(mon, "guard") == []
    assert not started_on(mon, "guard", "node2")
    assert failures(mon, "guard") == []
    assert "node2" in resource_state(mon, "health")
