#!/usr/bin/env python3
"""Prints the crate's module dependency graph (top-level modules under src/, from `use crate::`
and `crate::` paths) and fails when it has a cycle. Usage: python3 .ci/module_graph.py [src]"""
import pathlib
import re
import sys

src = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "src")
edges: dict[str, set[str]] = {}
for path in src.rglob("*.rs"):
    rel = path.relative_to(src)
    if rel.name in ("lib.rs", "main.rs"):
        continue
    module = rel.parts[0].removesuffix(".rs")
    text = path.read_text()
    # Test modules may reach anywhere; only the shipped code counts.
    text = re.split(r"#\[cfg\(test\)\]\s*mod tests", text)[0]
    if "tests" in rel.parts[1:] or rel.name == "tests.rs":  # `#[cfg(test)] mod tests;` files
        continue
    deps = set(re.findall(r"\bcrate::([a-z_]+)", text))
    for group in re.findall(r"\bcrate::\{([^}]*)\}", text):
        deps |= {name.strip().split("::")[0] for name in group.split(",") if name.strip()}
    deps.discard(module)
    edges.setdefault(module, set()).update(deps)

for module in sorted(edges):
    print(f"{module} -> {', '.join(sorted(edges[module])) or '(nothing)'}")

cycles = []
def visit(node, stack, seen):
    for dep in sorted(edges.get(node, ())):
        if dep in stack:
            cycle = stack[stack.index(dep):] + [dep]
            if sorted(cycle[:-1]) not in [sorted(c[:-1]) for c in cycles]:
                cycles.append(cycle)
        elif dep not in seen:
            seen.add(dep)
            visit(dep, stack + [dep], seen)

for start in sorted(edges):
    visit(start, [start], {start})
if cycles:
    print("\ncycles:")
    for c in cycles:
        print("  " + " -> ".join(c))
    sys.exit(1)
print("\nno cycles")
