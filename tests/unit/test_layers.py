"""The layer rule, read from the source: ``server -> graphs -> nodes -> tools -> core`` with imports pointing down.

``prompts`` is data every layer may read (it imports only ``core``). ``evals`` may import ``graphs`` and below,
never ``server``; ``server`` imports nothing from ``evals``. ``sandboxes`` (reference third-party systems for
demos and tests) may import ``core`` and ``tools``, and ``server`` only inside functions; of the production
packages only ``server`` may import ``sandboxes``, and only inside functions (the demo and the reference-system
commands, optional at run time). Every import counts, including those inside functions; imports under
``if TYPE_CHECKING:`` count too, except the ones listed in :data:`TYPE_ONLY`.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("core", "prompts", "tools", "nodes", "graphs", "server", "evals", "sandboxes")

#: What each package may import (besides itself).
ALLOWED: dict[str, set[str]] = {
    "core": set(),
    "prompts": {"core"},
    "tools": {"core", "prompts"},
    "nodes": {"core", "prompts", "tools"},
    "graphs": {"core", "prompts", "tools", "nodes"},
    "server": {"core", "prompts", "tools", "nodes", "graphs"},
    "evals": {"core", "prompts", "tools", "nodes", "graphs"},
    "sandboxes": {"core", "tools"},
}

#: Imports allowed only inside a function body (never at module level, never type-only): ``(package, target)``.
FUNCTION_ONLY = {("sandboxes", "server"), ("server", "sandboxes")}

#: Type-only imports that point up (no run-time dependency): node functions annotate ``state: State`` and
#: ``runtime: Runtime[Context]``, and both are defined with the graphs (``graphs/state.py``, ``graphs/context.py``).
TYPE_ONLY = {("nodes", "graphs.context"), ("nodes", "graphs.state")}

#: Known violations, each to be removed by the change that fixes it (none left: ``procure eval`` is a plug-in
#: command the evaluation runner registers through an entry point, see server/cli/root.py). The test below fails
#: when an entry no longer occurs, so the list only shrinks.
KNOWN: set[tuple[str, str]] = set()


def _imports(path: Path) -> list[tuple[str, bool, bool]]:
    """``(module, type_only, in_function)`` for every absolute import in a file."""
    tree = ast.parse(path.read_text(), filename=str(path))
    type_only: set[int] = set()
    in_function: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            type_only.update(id(n) for stmt in node.body for n in ast.walk(stmt))
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            in_function.update(id(n) for stmt in node.body for n in ast.walk(stmt))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, id(node) in type_only, id(node) in in_function) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.module, id(node) in type_only, id(node) in in_function))
    return found


def violations(root: Path = ROOT) -> list[str]:
    out = []
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            rel = path.relative_to(root).as_posix()
            for module, type_only, in_function in _imports(path):
                target = module.split(".")[0]
                if target not in PACKAGES or target == package or target in ALLOWED[package]:
                    continue
                if in_function and not type_only and (package, target) in FUNCTION_ONLY:
                    continue
                if type_only and any(package == p and module.startswith(m) for p, m in TYPE_ONLY):
                    continue
                if (rel, module) in KNOWN:
                    continue
                out.append(f"{rel} imports {module}{' (type only)' if type_only else ''}")
    return out


def test_imports_point_down_the_layers() -> None:
    assert violations() == []


def test_known_violations_still_exist() -> None:
    # A fixed violation must leave the allow-list, or it could come back unnoticed.
    found = {
        (p.relative_to(ROOT).as_posix(), m)
        for pkg in PACKAGES
        for p in (ROOT / pkg).rglob("*.py")
        for m, _, _ in _imports(p)
    }
    assert KNOWN <= found, KNOWN - found


def test_the_checker_finds_upward_imports(tmp_path: Path) -> None:
    # The rule must be able to fail: upward imports at module level, inside a function and type-only are found.
    files = {
        "tools/a.py": "import nodes.intake\n",
        "tools/b.py": "def f():\n    from graphs import procurement\n",
        "nodes/c.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from graphs.context import Context\n",
        "nodes/d.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from graphs.procurement import builder\n",
        "server/e.py": "from evals import runner\n",
        "evals/f.py": "import graphs.procurement\nimport server.app\n",
        "core/g.py": "import core.db\nimport httpx\n",
        "sandboxes/h.py": "import core.db\nfrom tools.erp import tryton\nimport server.cli\n",
        "sandboxes/i.py": "def serve():\n    from server.app import create_app\n",
        "server/j.py": "import sandboxes.tryton\n\ndef demo():\n    from sandboxes.whatsapp import meta_graph_api\n",
        "tools/k.py": "def f():\n    import sandboxes.supplier_shop\n",
        "nodes/l.py": "import sandboxes\n",
    }
    for rel, source in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(source)
    assert violations(tmp_path) == [
        "tools/a.py imports nodes.intake",
        "tools/b.py imports graphs",
        "tools/k.py imports sandboxes.supplier_shop",
        "nodes/d.py imports graphs.procurement (type only)",
        "nodes/l.py imports sandboxes",
        "server/e.py imports evals",
        "server/j.py imports sandboxes.tryton",
        "evals/f.py imports server.app",
        "sandboxes/h.py imports server.cli",
    ]
