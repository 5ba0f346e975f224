"""Imports go one way (flows → tasks → uda); `uda` knows nothing of Prefect or DVC; one module talks to MLflow."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def imported_roots(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_import_direction():
    for path in (ROOT / "src/uda").rglob("*.py"):
        roots = imported_roots(path)
        assert not roots & {"prefect", "dvc", "flows", "tasks"}, path
        if path.name != "tracking.py":
            assert "mlflow" not in roots, f"{path}: only uda/tracking.py talks to MLflow"
    for path in (ROOT / "tasks").rglob("*.py"):
        assert "flows" not in imported_roots(path), path


def test_ruff_is_clean():
    done = subprocess.run([sys.executable, "-m", "ruff", "check", "--output-format", "concise", str(ROOT)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout
