"""The code's shape, pinned (docs/architecture.md): no import cycle among the app's modules, none
over 500 lines, and the Meta layer (chatbot/whatsapp/) importing nothing else of ours."""

import ast
from pathlib import Path

APP = Path(__file__).resolve().parent.parent
MAX_LINES = 500


def modules():
    """{module name: path} of the app's code (tests and migrations aside)."""
    found = {}
    for path in APP.rglob("*.py"):
        if {"tests", "migrations"} & set(path.relative_to(APP).parts):
            continue
        parts = ["chatbot", *path.relative_to(APP).with_suffix("").parts]
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imported(name, path, known):
    """The app's modules that `name` imports at module level (not inside functions)."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    targets = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Import):
            candidates = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")
            if node.level:
                base = base[: len(base) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            candidates = [module] + [f"{module}.{alias.name}" for alias in node.names]
        else:
            continue
        targets |= {candidate for candidate in candidates if candidate in known and candidate != name}
    return targets


def graph():
    known = modules()
    return {name: imported(name, path, known) for name, path in known.items()}


def test_no_import_cycle():
    edges = graph()
    state, cycles = {}, []

    def visit(node, trail):
        state[node] = "open"
        for target in sorted(edges[node]):
            if state.get(target) == "open":
                cycles.append(trail[trail.index(target):] + [target])
            elif target not in state:
                visit(target, trail + [target])
        state[node] = "done"

    for node in sorted(edges):
        if node not in state:
            visit(node, [node])
    assert cycles == []


def test_no_module_over_500_lines():
    lines = {name: len(path.read_text().splitlines()) for name, path in modules().items()}
    assert {name: count for name, count in lines.items() if count > MAX_LINES} == {}


def test_the_meta_layer_imports_nothing_else_of_ours():
    for name, targets in graph().items():
        if name.startswith("chatbot.whatsapp"):
            assert {target for target in targets if not target.startswith("chatbot.whatsapp")} == set(), name
