"""The lab's teardown when another process holds one of its loops open (an
LVM scan elsewhere on the machine): `losetup -d` then only marks the loop
for autoclear, and teardown waits for it to go instead of failing."""

import subprocess
import sys

from lab import Lab


def test_teardown_waits_for_a_loop_held_open_elsewhere(requires_root_lab, tmp_path):
    lab = Lab(tmp_path / "lab")
    try:
        disk = lab.add_disk("d0", size_mib=4, nodes=("a",))
        loop = disk.a
        # Another process holds the loop open for a while, then lets go.
        holder = subprocess.Popen([sys.executable, "-c",
                                   "import os, sys, time; fd = os.open(sys.argv[1], os.O_RDONLY); "
                                   "print('open', flush=True); time.sleep(1.5)", loop],
                                  stdout=subprocess.PIPE, text=True)
        assert holder.stdout.readline().strip() == "open"
    except BaseException:
        lab.close()
        raise
    try:
        lab.close()          # must not raise although the loop is busy at first
        # Once close() returns, the loop is gone: what the conftest checks.
        left = subprocess.run(["losetup", "-a"], capture_output=True, text=True).stdout
    finally:
        holder.wait(30)
    assert lab.loops == [] and str(tmp_path) not in left, left
