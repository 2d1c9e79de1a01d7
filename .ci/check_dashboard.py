#!/usr/bin/env python3
"""Checks the Grafana dashboard (infra/grafana/jwk-rotator.json): every panel and query reads
the ${DS_PROMETHEUS} data source variable, and every query is valid PromQL, by handing them to
`promtool check rules` as recording rules. (That each metric name is one the worker exports is
checked by the Rust test worker::tests::dashboard.) Usage: python3 .ci/check_dashboard.py"""
import json
import pathlib
import subprocess
import sys
import tempfile

path = pathlib.Path(__file__).resolve().parent.parent / "infra/grafana/jwk-rotator.json"
dashboard = json.loads(path.read_text())
problems = []
exprs = []
variables = [v["name"] for v in dashboard["templating"]["list"] if v["type"] == "datasource"]
if variables != ["DS_PROMETHEUS"]:
    problems.append(f"the data source variables are {variables}, not exactly DS_PROMETHEUS")
for panel in dashboard["panels"]:
    if panel["type"] == "row":
        continue
    where = f"panel {panel['id']} ({panel['title']})"
    for thing in [panel] + panel.get("targets", []):
        if thing.get("datasource") != {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}:
            problems.append(f"{where}: data source {thing.get('datasource')} is not ${{DS_PROMETHEUS}}")
    if not panel.get("targets"):
        problems.append(f"{where}: no query")
    exprs += [(where, t["expr"]) for t in panel.get("targets", [])]

rules = "groups:\n  - name: dashboard\n    rules:\n"
for i, (_, expr) in enumerate(exprs):
    rules += f"      - record: dashboard:query_{i}\n        expr: {json.dumps(expr)}\n"
with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
    f.write(rules)
checked = subprocess.run(["promtool", "check", "rules", f.name], capture_output=True, text=True)
pathlib.Path(f.name).unlink()
if checked.returncode != 0:
    problems.append("promtool check rules refused a query:\n" + checked.stdout + checked.stderr)
if problems:
    print("\n".join(problems), file=sys.stderr)
    sys.exit(1)
print(f"{path.name}: {len(exprs)} queries, all valid PromQL on ${{DS_PROMETHEUS}}")
