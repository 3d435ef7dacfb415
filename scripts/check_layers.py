#!/usr/bin/env python3
"""The layering of app/src, checked from the paths its files name (`crate::…`, `super::…`).

Rules (the README's "Where things go"):
1. No import circle between files.
2. No feature imports another feature's view: pages/ compose features' views.
3. Each layer uses only the layers below it (base < claude < features in rank order < pages).
4. claude/ is a leaf: it names only base modules.

Usage: check_layers.py [SRC_DIR]   (default app/src). `--report` prints the counts only.
Exits non-zero on any violation.
"""
import os
import re
import sys

# Lower rank = lower layer. Base modules and claude (rank 0) name no feature; a feature
# names only lower-ranked features; pages and the crate root name anything.
RANKS = {
    "error": 0, "time": 0, "format": 0, "forecast": 0, "ui": 0, "limits": 0, "load": 0, "db": 0, "passwords": 0, "metrics": 0, "settings": 0, "state": 0, "markdown": 0,
    # The Claude client: a leaf beside the base modules (it names only them).
    "claude": 0,
    "auth": 2,
    "audit": 3,
    "prices": 4,
    "usage": 5,
    "alerts": 6,
    "budget": 7,
    "deals": 8, "users": 8,
    "gateway": 9,
    "chat": 10, "comps": 10,
    "reports": 11,
    "pages": 12,
}
TOP = 13  # lib.rs
EXEMPT = {"fuzz"}  # test-only module: may name anything, named by nothing

PATH_RE = re.compile(r"\b(crate|super)((?:::\w+)+)(?:::\{([^}]*)\})?")


def module_of(rel):
    parts = rel[:-3].split(os.sep)
    if parts[-1] == "mod":
        parts = parts[:-1]
    if parts == ["lib"]:
        return ()
    return tuple(parts)


def strip_comments_and_tests(text):
    """The code a module builds into the app: comments and its `#[cfg(test)]` tail
    (test modules come last; inside them `super` is the file itself) removed."""
    text = re.sub(r"//[^\n]*", "", text)
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    at = re.search(r"#\[cfg\((all\()?test", text)
    return text[: at.start()] if at else text


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    report_only = "--report" in sys.argv
    src = args[0] if args else "app/src"
    files = {}
    for root, _, names in os.walk(src):
        for name in names:
            if name.endswith(".rs"):
                rel = os.path.relpath(os.path.join(root, name), src)
                files[module_of(rel)] = rel
    modules = set(files)

    def resolve(segments):
        """The file a module path names: the longest prefix that is a module."""
        for end in range(len(segments), -1, -1):
            if tuple(segments[:end]) in modules:
                return tuple(segments[:end])
        return None

    edges = {m: set() for m in modules}
    for module, rel in files.items():
        text = strip_comments_and_tests(open(os.path.join(src, rel), encoding="utf-8").read())
        for root, rest, group in PATH_RE.findall(text):
            segments = [s for s in rest.split("::") if s]
            if root == "crate":
                base = []
            else:
                # `super` is the parent of the file's module (for chat/view.rs, chat; for
                # chat/mod.rs, the crate root).
                base = list(module[:-1])
                while segments and segments[0] == "super":
                    segments.pop(0)
                    base = base[:-1]
            targets = [base + segments]
            if group:
                targets = [base + segments + [g.strip().split("::")[0].split(" ")[0]] for g in group.split(",") if g.strip()]
            for target in targets:
                found = resolve(target)
                if found is not None and found != module:
                    edges[module].add(found)

    problems = []

    # 1. Circles (strongly connected components of more than one file).
    index, low, on_stack, stack, sccs, counter = {}, {}, set(), [], [], [0]

    def connect(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in edges[v]:
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                sccs.append(component)

    sys.setrecursionlimit(10000)
    for v in sorted(modules):
        if v not in index:
            connect(v)
    for component in sccs:
        problems.append("import circle: " + " <-> ".join(sorted(files[m] for m in component)))

    def top(m):
        return m[0] if m else ""

    def rank(m):
        if not m:
            return TOP
        return RANKS.get(m[0], -1)

    views = 0
    upward = 0
    for module, targets in sorted(edges.items()):
        if top(module) in EXEMPT:
            continue
        for target in sorted(targets):
            if top(target) in EXEMPT:
                continue
            # 2. A feature naming another feature's view.
            if target[-1:] == ("view",) and top(target) != top(module) and rank(module) < RANKS["pages"]:
                problems.append(f"{files[module]} uses another feature's view {files[target]}")
                views += 1
            # 3. Upward: a layer naming a higher one (or a module of unknown layer).
            if rank(module) == -1 or rank(target) == -1:
                problems.append(f"{files[module]} -> {files[target]}: module has no layer in scripts/check_layers.py")
            elif top(module) != top(target) and rank(target) > rank(module):
                problems.append(f"{files[module]} reaches up to {files[target]}")
                upward += 1
            elif top(module) != top(target) and rank(target) == rank(module) and rank(module) != 0:
                problems.append(f"{files[module]} uses {files[target]} of the same layer")
                upward += 1
            # 4. claude/ is a leaf.
            if top(module) == "claude" and top(target) != "claude" and top(target) not in ("error",):
                problems.append(f"claude is a leaf, but {files[module]} names {files[target]}")

    print(f"check-layers: {len(files)} files, {len(sccs)} import circles, {upward} upward or sideways imports, {views} feature-view imports")
    if report_only:
        return 0
    for problem in problems:
        print("  " + problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
