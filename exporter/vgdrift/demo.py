"""The shipped demo: real LVM2-made PV images and a standby node's stale
cache.  `python -m vgdrift.demo DIR --check` unpacks them into DIR and runs
`vgdrift check` on them; `--run` starts the exporter on them."""

import argparse
import gzip
import os
import re
import shlex
import shutil
import sys

from .disk import ondisk

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "demo")


# The demo standby node's own LVM configuration (--lvm-system-dir DIR/etc):
# no devices file (on a host whose LVM uses one, the demo images are not in
# it) and, like an HA node, no autoactivation.
DEMO_LVM_CONF = """\
# vgdrift demo: the standby node's LVM configuration.
devices {
    use_devicesfile = 0
}
activation {
    auto_activation_volume_list = [ ]
}
"""


def unpack(target: str) -> dict:
    """Writes DIR/disks/*.img, DIR/cache/* and DIR/etc/lvm.conf; returns
    {pv uuid: image path}.
    The cache's device hints named the maker's loop devices: they are
    pointed at the images so that the demo reads nothing else."""
    disks = os.path.join(target, "disks")
    cache = os.path.join(target, "cache")
    os.makedirs(disks, exist_ok=True)
    os.makedirs(cache, exist_ok=True)
    os.makedirs(os.path.join(target, "etc"), exist_ok=True)
    with open(os.path.join(target, "etc", "lvm.conf"), "w") as f:
        f.write(DEMO_LVM_CONF)
    where = {}
    for name in sorted(os.listdir(os.path.join(HERE, "disks"))):
        if not name.endswith(".img.gz"):
            continue
        path = os.path.join(disks, name[:-3])
        with gzip.open(os.path.join(HERE, "disks", name)) as src, open(path, "wb") as dst:
            shutil.copyfileobj(src, dst)
        with open(path, "rb") as f:
            label = ondisk.find_label(f.read(ondisk.LABEL_AREA), path)
        where[ondisk.format_uuid(label.pv_uuid)] = os.path.abspath(path)
    hint = re.compile(r'(id = "([^"]+)"\s*\n\s*device = ")[^"]*(")')
    for name in sorted(os.listdir(os.path.join(HERE, "cache"))):
        with open(os.path.join(HERE, "cache", name)) as f:
            text = f.read()
        text = hint.sub(lambda m: m.group(1) + where.get(m.group(2), "") + m.group(3), text)
        with open(os.path.join(cache, name), "w") as f:
            f.write(text)
    return where


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m vgdrift.demo")
    p.add_argument("dir", help="where to unpack the demo disks and cache")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true", help="run vgdrift check on the demo (default)")
    mode.add_argument("--run", action="store_true", help="start the exporter on the demo")
    p.add_argument("--listen", default="127.0.0.1:9867", help="exporter address for --run")
    args = p.parse_args(argv)
    unpack(args.dir)
    common = ["--cache-dir", os.path.join(args.dir, "cache"),
              "--devices", os.path.join(os.path.abspath(args.dir), "disks", "*.img"),
              "--lvm-system-dir", os.path.join(args.dir, "etc")]
    from .cli import main as cli_main
    if args.run:
        print(f"vgdrift demo exporter: http://{args.listen}/metrics (Ctrl-C stops it)", flush=True)
        return cli_main(["serve", *common, "--web.listen-address", args.listen, "--scan.interval", "10s"])
    print("$ vgdrift check " + " ".join(shlex.quote(c) for c in common), flush=True)
    code = cli_main(["check", *common])
    print(f"(exit code {code}: 0 in sync, 1 drift, 2 unsafe, 3 unknown)")
    return 0 if code in (0, 1) else code


if __name__ == "__main__":
    sys.exit(main())
