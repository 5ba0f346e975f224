"""Each DVC stage's deps are exactly the code it runs, and its params exactly the keys it reads.

The import closure of a stage's command (`python -m flows.<stage>`) is computed from the source: every
project module it imports, at module level or inside functions, with the package __init__ files on the
way and every module of a registry package (one that imports its modules by scanning its folder). Each
module in it must lie under one of the stage's deps, except the few that cannot change outputs; and each
code dep must hold some module of the closure. A real DVC run then shows that changing a module or a
params key makes `dvc status` list exactly the stages that use it.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT
from uda import layout

# Code that cannot change a stage's outputs: argument parsing, server discovery, tracking, the version.
MAY_BE_UNDECLARED = {"flows/__init__.py", "flows/_cli.py", "tasks/__init__.py", "src/uda/__init__.py",
                     "src/uda/tracking.py", "src/uda/services.py"}
CODE_ROOTS = ("flows/", "tasks/", "src/")


def module_path(name: str) -> Path | None:
    """The project file a module name refers to, or None for third-party and standard-library modules."""
    parts = name.split(".")
    base = ROOT / "src" if parts[0] == "uda" else ROOT
    if parts[0] not in ("uda", "flows", "tasks"):
        return None
    for candidate in (base.joinpath(*parts).with_suffix(".py"), base.joinpath(*parts, "__init__.py")):
        if candidate.is_file():
            return candidate
    return None


def imported_modules(path: Path) -> set[str]:
    """Every module named by an import anywhere in the file (`from a import b` names a and a.b)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
    return names


def closure(module: str) -> set[Path]:
    todo, seen = [module], set()
    while todo:
        name = todo.pop()
        parts = name.split(".")
        for i in range(1, len(parts) + 1):  # importing a.b.c runs a/__init__ and a/b/__init__ first
            path = module_path(".".join(parts[:i]))
            if path is None or path in seen:
                continue
            seen.add(path)
            todo += sorted(imported_modules(path))
            if path.name == "__init__.py" and "iter_modules(__path__)" in path.read_text():  # a registry
                todo += [f"{'.'.join(parts[:i])}.{p.stem}" for p in path.parent.glob("*.py") if p.stem != "__init__"]
    return {p for p in seen}


def stages() -> dict[str, dict]:
    """dvc.yaml's stages (a foreach stage once, as its template)."""
    raw = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    return {name: stage.get("do", stage) for name, stage in raw.items()}


def command_module(cmd: str) -> str:
    words = cmd.split()
    assert words[:2] == ["python", "-m"], f"a stage runs one flow module: {cmd}"
    return words[2]


def rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def code_deps(stage: dict) -> list[str]:
    return [d for d in stage["deps"] if d.startswith(CODE_ROOTS)]


def covered(path: str, deps: list[str]) -> bool:
    return any(path == d or path.startswith(d.rstrip("/") + "/") for d in deps)


@pytest.mark.parametrize("name", list(stages()))
def test_every_module_a_stage_imports_is_a_declared_dep(name):
    stage = stages()[name]
    files = {rel(p) for p in closure(command_module(stage["cmd"]))}
    missing = sorted(f for f in files - MAY_BE_UNDECLARED if not covered(f, code_deps(stage)))
    assert not missing, f"{name} runs code its deps do not list: {missing}"


@pytest.mark.parametrize("name", list(stages()))
def test_every_code_dep_of_a_stage_is_code_it_runs(name):
    stage = stages()[name]
    files = [rel(p) for p in closure(command_module(stage["cmd"]))]
    unused = [d for d in code_deps(stage) if not any(covered(f, [d]) for f in files)]
    assert not unused, f"{name} declares code it never imports: {unused}"


def test_the_report_needs_no_torch():
    code = "import sys, runpy; sys.argv = ['x', '--help']\nimport flows.report  # noqa\nprint('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "False"


def test_stage_outputs_are_the_layout_paths():
    outs = {name: [next(iter(o)) if isinstance(o, dict) else o for key in ("outs", "metrics", "plots")
                   for o in stage.get(key, [])] for name, stage in stages().items()}
    assert f"{layout.model_dir('${item}').as_posix()}" in outs["train"]
    assert all(o.startswith(layout.evaluation_dir("${item}").as_posix() + "/") for o in outs["evaluate"])
    assert outs["tsne"] == [layout.TSNE.as_posix()]
    assert {Path(o).parent for o in outs["report"]} <= {layout.REPORTS}
    assert (layout.REPORTS / "curves").as_posix() in outs["report"]


def _placeholder_outputs(project: Path) -> None:
    """A stand-in file for every output of every stage, so that `dvc commit` can record a lock."""
    methods = yaml.safe_load((project / "params.yaml").read_text())["pipeline"]["methods"]
    raw = yaml.safe_load((project / "dvc.yaml").read_text())["stages"]
    for stage in raw.values():
        body = stage.get("do", stage)
        for key in ("outs", "metrics", "plots"):
            for out in body.get(key, []):
                out = next(iter(out)) if isinstance(out, dict) else out
                for item in methods if "foreach" in stage else [None]:
                    path = project / (out.replace("${item}", item) if item else out)
                    if path.suffix:
                        path.parent.mkdir(parents=True, exist_ok=True)
                        path.write_text("placeholder\n")
                    else:
                        path.mkdir(parents=True, exist_ok=True)
                        (path / "placeholder").write_text("placeholder\n")


@pytest.fixture(scope="module")
def locked_project(tmp_path_factory):
    """A scratch copy of the project whose dvc.lock records every stage as up to date."""
    from tests.conftest import make_project

    project = make_project(tmp_path_factory.mktemp("contract"))
    _placeholder_outputs(project)
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    subprocess.run([sys.executable, "-m", "dvc", "commit", "-f", "-q"], cwd=project, env=env, check=True)
    return project


def _stale(project: Path) -> set[str]:
    done = subprocess.run([sys.executable, "-m", "dvc", "status", "--json"], cwd=project, capture_output=True,
                          text=True, env={**os.environ, "DVC_NO_ANALYTICS": "1"}, check=True)
    return set(json.loads(done.stdout))


ALL = {"download", "preprocess", "train@source_only", "train@dann", "train@gta", "evaluate@source_only",
       "evaluate@dann", "evaluate@gta", "tsne", "report"}
PER_METHOD = {f"{s}@{m}" for s in ("train", "evaluate") for m in ("source_only", "dann", "gta")}


@pytest.mark.parametrize("module, expect", [
    ("src/uda/report.py", {"report"}),
    ("src/uda/tsne.py", {"tsne"}),
    ("src/uda/validators/snd.py", {"evaluate@source_only", "evaluate@dann", "evaluate@gta"}),
    ("src/uda/config.py", ALL),
    ("src/uda/viz.py", ALL - {"download"}),
    ("src/uda/methods/dann.py", {"download", "tsne"} | PER_METHOD),
])
def test_changing_a_module_makes_dvc_list_exactly_the_stages_that_import_it(locked_project, module, expect):
    path = locked_project / module
    original = path.read_text()
    assert _stale(locked_project) == set()
    try:
        path.write_text(original + "\n# changed\n")
        assert _stale(locked_project) == expect
    finally:
        path.write_text(original)


@pytest.mark.parametrize("edit, expect", [
    (lambda p: p["methods"]["dann"].update(gamma=5.0), {"train@dann", "evaluate@dann", "tsne"}),
    (lambda p: p["experiments"]["mnist_mnistm"].update(description="changed"), {"report"}),
    (lambda p: p["experiments"]["mnist_usps"]["train"].update(batch_size=8), set()),  # not the chosen one
    (lambda p: p["evaluate"].update(seed=1), {"evaluate@source_only", "evaluate@dann", "evaluate@gta"}),
    (lambda p: p["tsne"].update(perplexity=20.0), {"tsne"}),
    (lambda p: p["experiments"]["mnist_mnistm"]["train"].update(batch_size=8), PER_METHOD | {"tsne"}),
])
def test_changing_a_param_makes_dvc_list_exactly_the_stages_that_read_it(locked_project, edit, expect):
    path = locked_project / "params.yaml"
    original = path.read_text()
    try:
        raw = yaml.safe_load(original)
        edit(raw)
        path.write_text(yaml.safe_dump(raw, sort_keys=False))
        assert _stale(locked_project) == expect
    finally:
        path.write_text(original)
