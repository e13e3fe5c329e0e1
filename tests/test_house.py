"""The house rules that keep the code easy to carry on: imports flow one way (no cycles, lazy
imports inside functions included), no module grows past 600 lines, and nothing outside
backends/ asks which backend runs."""
import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "darknet_py"


def module_name(path):
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path, modules):
    """The darknet_py modules ``path`` imports, anywhere in it: ``from pkg import name`` counts
    as importing pkg.name where that is a module, else pkg."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]
        else:
            continue
        found.update(target for target in targets if target in modules and target != name)
    return found


def find_cycle(graph):
    """One cycle of ``graph`` as a list of nodes, or None (depth-first, colouring nodes)."""
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                cycle = visit(nxt)
                if cycle:
                    return cycle
        state[node] = "done"
        stack.pop()
        return None
    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def test_no_import_cycles():
    paths = sorted(PACKAGE.rglob("*.py"))
    modules = {module_name(path) for path in paths}
    graph = {module_name(path): imports_of(path, modules) for path in paths}
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph))


def test_find_cycle_finds_one():
    """The cycle finder itself: a lazy import back up the chain is a cycle."""
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_modules_stay_small():
    big = {module_name(p): n for p in PACKAGE.rglob("*.py") if (n := len(p.read_text().splitlines())) > 600}
    assert not big, f"split these into files named for what they hold: {big}"


def test_only_backends_know_the_backend():
    """Nothing outside backends/ tests a backend's name or device: it asks the contract
    (backends/base.py)."""
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        if "backends" in path.parts:
            continue
        text = path.read_text()
        for needle in ("backend.name ==", "backend.name !=", ".device.type", "isinstance(backend"):
            if needle in text:
                offenders.append(f"{path.relative_to(PACKAGE)}: {needle}")
    assert not offenders, offenders
