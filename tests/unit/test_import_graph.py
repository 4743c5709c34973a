"""No import circles in the deployed code, counting the imports hidden inside functions.

A function-level import is how a circle usually hides ("X imports this module"), so every
import statement counts, wherever it is. Data flows one way: handler → task → service.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]


def _modules() -> dict[str, Path]:
    modules = {"app": ROOT / "app.py"}
    for path in (ROOT / "chalicelib").rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The project modules `name` imports, at any depth of its code."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, base] if base else parent)
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
        else:
            continue
        for target in targets:
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def _circles(graph: dict[str, set[str]]) -> list[frozenset[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    circles: list[frozenset[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in graph[node]:
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                circles.append(frozenset(component))

    for node in graph:
        if node not in index:
            visit(node)
    return circles


def test_the_finder_sees_a_circle_hidden_in_a_function(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("import b\n")
    (tmp_path / "b.py").write_text("def f():\n    from a import x\n")
    modules = {"a": tmp_path / "a.py", "b": tmp_path / "b.py"}
    graph = {name: _imports(name, path, modules) for name, path in modules.items()}
    assert _circles(graph) == [frozenset({"a", "b"})]


def test_no_import_circle() -> None:
    modules = _modules()
    graph = {name: _imports(name, path, modules) for name, path in modules.items()}
    assert "chalicelib.tasks.dispatch" in graph["chalicelib.tasks.decorator"]  # the graph is read
    assert _circles(graph) == []


# The layers of the deployed code, top to bottom: a module may import its own layer and the
# layers below it, never one above. The packages of chalicelib are the layers and domains.
LAYERS: dict[str, int] = {
    "app": 6,
    "api": 5,
    "dashboard": 5,
    "ops": 5,
    "app_tasks": 4,
    "domain": 3,
    "tasks": 2,
    "platform": 1,
}
PACKAGES: dict[str, str] = {
    "api": "api",
    "dashboard": "dashboard",
    "ops": "ops",
    "app_tasks": "app_tasks",
    "tables": "app_tasks",  # every table, for the tools that create them: above all the domains' models
    "books": "domain",
    "covers": "domain",
    "subscriptions": "domain",
    "mail": "domain",
    "imports": "domain",
    "tasks": "tasks",
    "platform": "platform",
}

# Which domain may use which: the fan-out mails subscribers about books; a book replaces its
# cover; and covers may use the books' models and schemas (the cover upload body), nothing else of books;
# a bulk import creates books (and keeps its items in the media bucket).
DOMAIN_USES = {
    ("mail", "books"),
    ("mail", "subscriptions"),
    ("books", "covers"),
    ("imports", "books"),
    ("imports", "covers"),
}
MODEL_USES = {("covers", "chalicelib.books.models"), ("covers", "chalicelib.books.schemas")}


def _place(module: str) -> tuple[str, str]:
    """(layer, domain) of a project module; a module outside the known packages fails the test."""
    if module == "app":
        return "app", ""
    if module == "chalicelib":
        return "platform", ""
    top = module.removeprefix("chalicelib.").split(".")[0]
    if top not in PACKAGES:
        raise AssertionError(f"{module} has no layer: add its package to PACKAGES in {Path(__file__).name}")
    layer = PACKAGES[top]
    return layer, top if layer == "domain" else ""


def _wrong_way(graph: dict[str, set[str]]) -> list[str]:
    found = []
    for module, targets in sorted(graph.items()):
        (layer, domain) = _place(module)
        for target in sorted(targets):
            (other, other_domain) = _place(target)
            if LAYERS[other] > LAYERS[layer]:
                found.append(f"{module} ({layer}) imports {target} ({other})")
            elif (
                layer == other == "domain"
                and domain != other_domain
                and (domain, other_domain) not in DOMAIN_USES
                and (domain, target) not in MODEL_USES
            ):
                found.append(f"{module} ({domain}) imports {target} ({other_domain})")
    return found


def test_the_layer_check_sees_an_import_going_up() -> None:
    graph = {
        "chalicelib.tasks.worker": {"chalicelib.covers.upload.tasks", "chalicelib.platform.config"},
        "chalicelib.covers.upload.tasks": {"chalicelib.tasks.decorator"},
        "chalicelib.subscriptions.consent": {"chalicelib.books.service"},
        "chalicelib.tasks.decorator": set(),
        "chalicelib.platform.config": set(),
        "chalicelib.books.service": set(),
    }
    assert _wrong_way(graph) == [
        "chalicelib.subscriptions.consent (subscriptions) imports chalicelib.books.service (books)",
        "chalicelib.tasks.worker (tasks) imports chalicelib.covers.upload.tasks (domain)",
    ]


def test_imports_flow_down_the_layers() -> None:
    modules = _modules()
    graph = {name: _imports(name, path, modules) for name, path in modules.items()}
    assert _wrong_way(graph) == []


# The packages around the deployed code (app.py, chalicelib): the infrastructure (resources, the
# build, stage settings) reads the app's functions, tasks and routes and never uses a tool; the
# tools may use the app and the infrastructure; the deployed code uses neither. Inside devtools
# each package is one tool, and only DEVTOOLS_USES may use another (the third-party emulators'
# launcher reuses the emulator's process helpers); the top-level modules (`make run`, ops,
# deploy, …) compose them.
PACKAGE_USES: dict[str, set[str]] = {
    "app": {"chalicelib"},
    "chalicelib": set(),
    "infra": {"chalicelib", "app"},
    "devtools": {"chalicelib", "infra", "app"},
}
DEVTOOLS_PACKAGES = {"emulator", "runtime", "gateway", "backends"}
DEVTOOLS_USES = {("backends", "emulator")}


def _every_module() -> dict[str, Path]:
    modules = _modules()
    for package in ("devtools", "infra"):
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def _tool(module: str) -> str:
    """The devtools package of a module ("" for the top-level tools)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 2 and parts[1] in DEVTOOLS_PACKAGES else ""


def _across_packages(graph: dict[str, set[str]]) -> list[str]:
    found = []
    for module, targets in sorted(graph.items()):
        top = module.split(".")[0]
        for target in sorted(targets):
            other = target.split(".")[0]
            if other != top and other not in PACKAGE_USES[top]:
                found.append(f"{module} ({top}) imports {target} ({other})")
            elif top == other == "devtools":
                tool, other_tool = _tool(module), _tool(target)
                if tool and other_tool != tool and (tool, other_tool) not in DEVTOOLS_USES:
                    found.append(f"{module} (devtools/{tool}) imports {target} ({other_tool or 'a top-level tool'})")
    return found


def test_the_package_check_sees_an_import_crossing_a_boundary() -> None:
    graph = {
        "infra.functions": {"devtools.gateway.server", "infra.stage"},
        "chalicelib.platform.config": {"infra.stage"},
        "devtools.runtime.runner": {"devtools.gateway.server", "chalicelib.platform.config"},
        "devtools.backends.localstack": {"devtools.emulator.process", "infra.pythons"},
        "devtools.local": {"devtools.runtime.runner", "infra.stage"},
    }
    assert _across_packages(graph) == [
        "chalicelib.platform.config (chalicelib) imports infra.stage (infra)",
        "devtools.runtime.runner (devtools/runtime) imports devtools.gateway.server (gateway)",
        "infra.functions (infra) imports devtools.gateway.server (devtools)",
    ]


def test_tools_infrastructure_and_app_keep_their_boundaries() -> None:
    modules = _every_module()
    graph = {name: _imports(name, path, modules) for name, path in modules.items()}
    assert "devtools.emulator.process" in graph["devtools.backends.localstack"]  # the tools are read
    assert _across_packages(graph) == []
    assert _circles(graph) == []
