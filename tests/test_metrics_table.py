"""One table of metric descriptors (serve/metrics.py): the collector, the
README's metric table and the golden exposition all agree with it."""

import re
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from samples import all_states_result
from vgdrift.serve.main import build_exposition
from vgdrift.serve.metrics import METRICS
from vgdrift.serve.scanstats import ScanStats

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = Path(__file__).parent / "golden" / "metrics.prom"


def readme_rows():
    text = (ROOT / "README.md").read_text()
    section = text.split("### Metrics", 1)[1].split("\n### ", 1)[0]
    rows = {}
    for line in section.splitlines():
        m = re.match(r"^\| `(vgdrift_\w+)` \| (\w+) \|([^|]*)\|", line)
        if m:
            labels = tuple(x.strip() for x in m.group(3).split(",") if x.strip())
            rows[m.group(1)] = (m.group(2), labels)
    return rows


def test_readme_metric_table_is_the_descriptor_table():
    assert readme_rows() == {d.name: (d.type, d.labels) for d in METRICS}


def golden_heads():
    helps, types = {}, {}
    for line in GOLDEN.read_text().splitlines():
        if line.startswith("# HELP "):
            name, _, text = line[7:].partition(" ")
            helps[name] = text
        elif line.startswith("# TYPE "):
            name, _, kind = line[7:].partition(" ")
            types[name] = kind
    return helps, types


def test_golden_exposition_uses_the_descriptors():
    helps, types = golden_heads()
    scan = {d.name: d for d in METRICS if d.source == "scan"}
    assert set(helps) == set(types) == set(scan)
    for name, d in scan.items():
        assert helps[name] == d.help and types[name] == d.type, name


def test_served_families_have_the_descriptors_labels():
    stats = ScanStats()
    stats.record(all_states_result())
    body, _ = build_exposition(stats).render("", False)
    by_name = {d.name: d for d in METRICS}
    seen = set()
    for family in text_string_to_metric_families(body.decode()):
        if not family.name.startswith("vgdrift_"):
            continue
        name = family.name + ("_total" if family.type == "counter" else "")
        d = by_name[name]
        seen.add(name)
        assert family.type == d.type and family.documentation == d.help, name
        for sample in family.samples:
            assert set(sample.labels) - {"le"} == set(d.labels), (name, sample.labels)
    assert seen == set(by_name)


