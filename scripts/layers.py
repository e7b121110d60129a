#!/usr/bin/env python3
"""Checks that the engine's imports run one way.

Reads the layers from the numbered list in `crates/sessio/src/lib.rs`'s docs (each item
names its modules in backticks), then every `crate::…` and `super::…` path in each module
file (comments and `#[cfg(test)] mod tests` left out). Fails if a file imports from a
layer above its own, or if top-level modules import each other in a circle. Prints every
import edge between top-level modules with -v.

usage: scripts/layers.py [-v] [CRATE_SRC]   (default crates/sessio/src)"""
import os
import re
import sys

args = [a for a in sys.argv[1:] if a != "-v"]
verbose = "-v" in sys.argv[1:]
src = args[0] if args else os.path.join(os.path.dirname(__file__), "..", "crates", "sessio", "src")


def strip(text):
    text = re.sub(r"//[^\n]*", "", text)
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return re.sub(r"#\[cfg\(test\)\]\s*mod\s+tests\s*\{.*", "", text, flags=re.S)


# The layers, from lib.rs: "//! 1. **leaves**, ...: `error`, `id`, ..." up to the next item.
docs = "\n".join(l[3:].strip() for l in open(os.path.join(src, "lib.rs")) if l.startswith("//!"))
layer_of = {}
for number, body in re.findall(r"^(\d+)\. (.*?)(?=^\d+\. |\Z)", docs, flags=re.S | re.M):
    for name in re.findall(r"`(\w+)`", body):
        layer_of.setdefault(name, int(number))
if not layer_of:
    sys.exit("no layer list found in lib.rs")

# Every module file, named by its top-level module ("session/lock.rs" -> "session").
files = {}
for root, _, names in os.walk(src):
    for n in names:
        if n.endswith(".rs"):
            rel = os.path.relpath(os.path.join(root, n), src)[:-3].split(os.sep)
            files[os.path.join(root, n)] = rel
tops = {rel[0] for rel in files.values() if rel[0] != "lib"}
missing = sorted(tops - set(layer_of))
if missing:
    sys.exit("lib.rs's layer list does not place: " + ", ".join(missing))
layer_of["lib"] = max(layer_of.values())

edges = {}
for path, rel in files.items():
    top = rel[0]
    text = strip(open(path, encoding="utf-8").read())
    used = set(re.findall(r"\bcrate::(\w+)", text))
    # `use crate::{a, b::c}`: the names inside the braces.
    for group in re.findall(r"\buse\s+crate::\{(.*?)\};", text, flags=re.S):
        used |= set(re.findall(r"(?:^|,|\{)\s*(\w+)", group))
    if len(rel) == 1 or (len(rel) == 2 and rel[1] == "mod"):
        # `super::x` from a top-level file (or a mod.rs) is the crate root's x.
        used |= set(re.findall(r"\bsuper::(\w+)", text))
    # `crate::Error` and the like name the crate root's re-exports: the top layer.
    for name in sorted(n for n in used if n[:1].isupper() and top != "lib"):
        edges.setdefault(top, set()).add(("lib", os.path.relpath(path, src)))
    for name in used:
        if name in tops and name != top:
            edges.setdefault(top, set()).add((name, os.path.relpath(path, src)))

errors = []
for top, targets in sorted(edges.items()):
    for target, where in sorted(targets):
        if layer_of[target] > layer_of[top]:
            errors.append(f"{where} (layer {layer_of[top]}) imports `{target}` (layer {layer_of[target]})")
        if verbose:
            print(f"{top} -> {target}   ({where})")

# Circles among top-level modules (Tarjan).
graph = {t: {name for name, _ in edges.get(t, ())} for t in tops | {"lib"}}
index, low, stack, on, count = {}, {}, [], set(), [0]


def visit(v):
    index[v] = low[v] = count[0]
    count[0] += 1
    stack.append(v)
    on.add(v)
    for w in graph[v]:
        if w not in index:
            visit(w)
            low[v] = min(low[v], low[w])
        elif w in on:
            low[v] = min(low[v], index[w])
    if low[v] == index[v]:
        comp = []
        while True:
            w = stack.pop()
            on.discard(w)
            comp.append(w)
            if w == v:
                break
        if len(comp) > 1:
            errors.append("import circle: " + ", ".join(sorted(comp)))


for v in sorted(graph):
    if v not in index:
        visit(v)

n_edges = sum(len(v) for v in graph.values())
if errors:
    print("\n".join(errors))
    sys.exit(f"{len(errors)} import(s) against the layers of lib.rs")
print(f"{len(tops)} modules in {max(layer_of.values())} layers, {n_edges} imports between them, all running down, no circle")
