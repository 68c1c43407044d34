"""The test tree's layout and the files it carries: tests mirror the code, fixtures live in the repository.

``tests/unit/<layer>/`` (no services), ``tests/integration/`` (real PostgreSQL, Redis, Tryton, Chromium),
``tests/e2e/`` (the whole stack over HTTP), ``tests/support/`` (harness, stand-ins, fixtures' code),
``tests/data/`` (third-party fixtures, each set with its licence). Nothing the code or tests read or cite
may be a path outside the repository: on another machine it would be missing (and a parametrised test over
a missing folder collects nothing, silently).
"""

from __future__ import annotations

import re
from pathlib import Path

from tests.support.paths import DATA, ROOT

TESTS = ROOT / "tests"
KINDS = ("unit", "integration", "e2e")
#: Everything the top of ``tests/`` may hold.
TOP = {"__init__.py", "conftest.py", "support", "data", *KINDS}
#: Where the repository's own text lives (third-party fixtures under tests/data are data, not ours).
SCANNED = ("core", "tools", "nodes", "graphs", "server", "evals", "sandboxes", "prompts", "bench", "scripts", "tests")
#: Not ours to scan: third-party fixtures and run outputs (git-ignored).
IGNORED = {("tests", "data"), ("evals", "results"), ("bench", "results")}
SUFFIXES = {".py", ".md", ".toml", ".json", ".sh", ".txt", ".yml", ".yaml", ".cfg", ".ini"}
#: A path into someone's machine: home folders, work areas, mounts, or a climb out of the repository.
OUTSIDE = re.compile(
    r"(?<![\w.])(?:/(?:home|Users|work|root|mnt|srv|opt)/\w|[A-Z]:\\\\\w|(?:\.\./){1,}(?:shared|fixtures)\b)"
)


def outside_paths(root: Path) -> list[str]:
    """``path:line: text`` for every line of the repository's own text files that names a path outside it."""
    found = []
    files = [root / name for name in ("README.md", "pyproject.toml", "langgraph.json") if (root / name).is_file()]
    for top in SCANNED:
        files += [p for p in sorted((root / top).rglob("*")) if p.suffix in SUFFIXES and p.is_file()]
    for path in files:
        rel = path.relative_to(root)
        if rel.parts[:2] in IGNORED or "__pycache__" in rel.parts or path == Path(__file__).resolve():
            continue  # third-party data, run outputs; this module's own examples of what the scan finds
        for n, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            if OUTSIDE.search(line):
                found.append(f"{rel.as_posix()}:{n}: {line.strip()}")
    return found


def test_tests_are_sorted_by_kind() -> None:
    stray = sorted(p.name for p in TESTS.iterdir() if p.name not in TOP and p.name != "__pycache__")
    assert stray == [], f"put these under tests/unit, tests/integration, tests/e2e or tests/support: {stray}"


def test_every_test_folder_is_a_package() -> None:
    # Without __init__.py two test modules with the same name in different folders collide at import.
    folders = {p.parent for kind in (*KINDS, "support") for p in (TESTS / kind).rglob("*.py")}
    missing = sorted(str(f.relative_to(ROOT)) for f in folders if not (f / "__init__.py").is_file())
    assert missing == []


def test_unit_tests_mirror_the_code() -> None:
    # tests/unit/<layer>/<package>/... names a folder that exists in the code (tests/unit/tools/catalog -> tools/catalog).
    folders = {p.parent.relative_to(TESTS / "unit") for p in (TESTS / "unit").rglob("test_*.py")}
    unmatched = sorted(str(f) for f in folders if f.parts and not (ROOT / f).is_dir())
    assert unmatched == []


def test_third_party_fixtures_carry_their_licence() -> None:
    sources = [p for p in (DATA / "whatsapp").glob("*/*") if p.is_dir()]
    assert sources, "the provider fixture sets are in tests/data/whatsapp/<provider>/<source>/"
    assert [str(p.relative_to(DATA)) for p in sources if not (p / "LICENSE").is_file()] == []
    assert (DATA / "whatsapp" / "README.md").is_file()


def test_nothing_points_outside_the_repository() -> None:
    assert outside_paths(ROOT) == []


def test_the_scan_finds_outside_paths(tmp_path: Path) -> None:
    # The check must be able to fail: each kind of outside path is found, system paths and URLs are not.
    (tmp_path / "tests" / "unit").mkdir(parents=True)
    (tmp_path / "tools").mkdir()
    (tmp_path / "tests" / "unit" / "test_a.py").write_text(
        'FIXTURES = Path("/work/shared/fixtures/whatsapp")\nOTHER = "../shared/fixtures/x.json"\n'
    )
    (tmp_path / "tools" / "b.py").write_text(
        '"""Read from /home/someone/data.csv."""\nCHROME = "/usr/bin/chromium"\nURL = "https://example.org/work/x"\n'
    )
    (tmp_path / "tests" / "data").mkdir()
    (tmp_path / "tests" / "data" / "c.json").write_text('{"path": "/home/x/y"}')
    assert outside_paths(tmp_path) == [
        'tools/b.py:1: """Read from /home/someone/data.csv."""',
        'tests/unit/test_a.py:1: FIXTURES = Path("/work/shared/fixtures/whatsapp")',
        'tests/unit/test_a.py:2: OTHER = "../shared/fixtures/x.json"',
    ]
