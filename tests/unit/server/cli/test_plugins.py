"""``procure`` plug-in commands: ``procure eval`` comes from the ``procure.commands`` entry point, not an import."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import typer
from typer.testing import CliRunner

from server.cli.root import PLUGIN_GROUP, add_plugins

ROOT = Path(__file__).resolve().parents[4]


def test_eval_is_declared_as_a_plugin() -> None:
    assert {(e.name, e.value) for e in entry_points(group=PLUGIN_GROUP)} >= {("eval", "evals.cli:main")}


def test_procure_eval_passes_its_arguments_to_the_runner() -> None:
    # --help reaches the evaluation runner's own parser (argparse), so its options are listed and it exits 0.
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out = subprocess.run(
        [sys.executable, "-m", "server.cli", "eval", "--help"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert "usage: procure eval" in out.stdout
    assert "--check-baseline" in out.stdout


def test_a_plugin_gets_the_remaining_arguments_and_sets_the_exit_code(monkeypatch) -> None:
    calls: list[list[str]] = []

    class Entry:
        name, value = "hello", "somewhere:main"

        def load(self):
            def main(argv: list[str]) -> int:
                calls.append(argv)
                return 3

            return main

    monkeypatch.setattr("server.cli.root.entry_points", lambda group: [Entry()] if group == "g" else [])
    app = typer.Typer()
    app.command()(lambda: None)  # a second command, so typer keeps sub-command names
    assert add_plugins(app, "g") == ["hello"]
    result = CliRunner().invoke(app, ["hello", "--dataset", "x", "--help"])
    assert result.exit_code == 3
    assert calls == [["--dataset", "x", "--help"]]
