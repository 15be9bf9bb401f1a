#!/usr/bin/env python3
"""Checks that every metric the alert rules and the Grafana dashboard query is one the node
exposes.

Usage: check_metric_names.py METRICS_TEXT RULES_YAML DASHBOARD_JSON

METRICS_TEXT is a node's /metrics in the Prometheus text format (deploy/check.sh takes it from
a live `entrepot serve`). A family is exposed when its `# TYPE` line is there, even with no
sample yet (a feed gauge on a node without feeds); a histogram family exposes its _bucket,
_sum and _count series. The names checked are every `entrepot_*` and `process_*` identifier in
the rules' `expr` and the dashboard's queries (the node's own prefixes; `up` and PromQL
functions are Prometheus's). Exits 1 naming each metric used but not exposed.
"""
import json
import re
import sys

import yaml

NAME = re.compile(r"\b((?:entrepot|process)_[a-zA-Z0-9_]+)")


def exposed(text):
    names = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            names.add(name)
            if kind.strip() == "histogram":
                names.update(name + s for s in ("_bucket", "_sum", "_count"))
        elif line and not line.startswith("#"):
            names.add(re.split(r"[{ ]", line, maxsplit=1)[0])
    return names


def rule_queries(path):
    with open(path) as f:
        doc = yaml.safe_load(f)
    for group in doc["groups"]:
        for rule in group["rules"]:
            yield f"rule {rule.get('alert') or rule.get('record')}", rule["expr"]


def dashboard_queries(path):
    with open(path) as f:
        doc = json.load(f)
    for panel in doc["panels"]:
        for target in panel.get("targets", []):
            yield f"panel '{panel['title']}'", target["expr"]
    for var in doc.get("templating", {}).get("list", []):
        query = var.get("query")
        if isinstance(query, dict):
            query = query.get("query")
        if var.get("type") == "query" and query:
            yield f"variable {var['name']}", query


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    with open(sys.argv[1]) as f:
        have = exposed(f.read())
    if not any(n.startswith("entrepot_") for n in have):
        sys.exit(f"error: {sys.argv[1]} holds no entrepot_ metric: not a node's /metrics")
    missing, used = [], set()
    for where, expr in [*rule_queries(sys.argv[2]), *dashboard_queries(sys.argv[3])]:
        names = NAME.findall(expr)
        if not names and "up{" not in expr:
            missing.append(f"{where}: queries no metric of the node: {expr!r}")
        for name in names:
            used.add(name)
            if name not in have:
                missing.append(f"{where}: {name} is not exposed by the node")
    for m in missing:
        print(f"error: {m}", file=sys.stderr)
    if missing:
        sys.exit(1)
    print(f"  {len(used)} metric names in the rules and the dashboard, all exposed by the node")


if __name__ == "__main__":
    main()
