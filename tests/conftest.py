"""Shared fixtures: the real data mirror, a real Prefect server for the session, a scratch project."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_MIRROR = ROOT.parent / "shared" / "datasets"

if os.environ.get("PYTEST_XDIST_WORKER"):  # one of two test processes sharing two cores: one thread each
    import torch

    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def mirror() -> Path:
    path = Path(os.environ.get("UDA_DATA_MIRROR") or DEFAULT_MIRROR)
    if not (path / "MANIFEST.md").is_file():
        message = f"no data mirror at {path}: set UDA_DATA_MIRROR to a folder laid out like shared/datasets"
        if os.environ.get("CI"):  # in CI the real-data tests must run: a missing mirror fails them
            pytest.fail(message)
        pytest.skip(message)
    return path.resolve()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before answering {url}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"{url} did not answer within {timeout}s")


@pytest.fixture(scope="session")
def prefect_api(tmp_path_factory) -> str:
    """One real Prefect server on loopback for the whole session (a temporary one costs ~10 s a process)."""
    port = free_port()
    home = tmp_path_factory.mktemp("prefect-home")
    env = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
           "PREFECT_TELEMETRY_ENABLE_RESOURCE_METRICS": "false", "PREFECT_SERVER_UI_ENABLED": "false"}
    env.pop("PREFECT_API_URL", None)
    log = open(home / "server.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
                             "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT)
    api = f"http://127.0.0.1:{port}/api"
    try:
        wait_http(f"{api}/health", proc)
        yield api
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


PROJECT_FILES = ("dvc.yaml", "params.yaml", "prefect.yaml", "flows", "tasks", "src", "pyproject.toml", ".dvcignore",
                 "data/.gitignore", ".gitignore")


# Small budgets for end-to-end runs: the real code paths, minutes not hours. One thread: the suite runs two
# test processes at once (pytest-xdist) on two cores, and two threads each would fight over them.
TEST_THREADS = 1
SMOKE_TRAIN = {"steps": 40, "log_every": 10, "eval_every": 20, "checkpoint_every": 20, "threads": TEST_THREADS,
               "device": "cpu"}


def cut_budget(raw: dict, **train) -> dict:
    """params.yaml's contents with every method on one small training budget (methods' own budgets dropped)."""
    raw["train"].update(train)
    for cfg in raw["methods"].values():
        if cfg:
            cfg.pop("train", None)
    return raw


def make_project(dest: Path, **sections) -> Path:
    """A scratch copy of the project (as in the working tree) in its own git + DVC repository, with
    params.yaml's training budget cut to SMOKE_TRAIN, smaller evaluation samples, and `sections` merged
    into params.yaml's top-level sections."""
    for name in PROJECT_FILES:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
    params = cut_budget(yaml.safe_load((dest / "params.yaml").read_text()), **SMOKE_TRAIN)
    # GTA's iteration (four networks, five passes of D) costs ~25× a DANN step: a smaller batch keeps its
    # 40 smoke iterations to seconds; what it learns is tests/test_training.py's concern.
    params["methods"]["gta"]["train"] = {"batch_size": 16}
    params["evaluate"]["features_per_domain"] = 500
    params["tsne"]["per_domain"] = 300
    for key, value in sections.items():
        params[key] = {**params[key], **value}
    (dest / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    for cmd in (["git", "init", "-q"], [sys.executable, "-m", "dvc", "init", "-q"]):
        subprocess.run(cmd, cwd=dest, check=True)
    return dest


def project_env(root: Path, prefect_api: str, mirror: Path) -> dict[str, str]:
    return {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
            "PREFECT_API_URL": prefect_api, "UDA_DATA_MIRROR": str(mirror), "DVC_NO_ANALYTICS": "1",
            "MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}", "PREFECT_HOME": str(root / ".prefect"),
            "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
            "GIT_COMMITTER_EMAIL": "t@t"}


def folder_tree(mirror: Path, dest: Path, style: str, classes: tuple[str, ...], per_class: int) -> Path:
    """A domain of one's own in the ImageFolder layout, made of the first real PACS `style` images of each class."""
    for cls in classes:
        (dest / cls).mkdir(parents=True)
        for src in sorted((mirror / "PACS" / style / cls).iterdir())[:per_class]:
            shutil.copy2(src, dest / cls / src.name)
    return dest


@pytest.fixture(scope="module")
def project(tmp_path_factory, prefect_api, mirror):
    """A scratch project committed in its own git repository, with the environment its stages run in; one per
    test file, so files that each build one can run side by side."""
    root = make_project(tmp_path_factory.mktemp("project"))
    env = project_env(root, prefect_api, mirror)
    subprocess.run(["git", "add", "-A"], cwd=root, check=True, env=env)
    subprocess.run(["git", "commit", "-qm", "scratch"], cwd=root, check=True, env=env)
    return root, env


def dvc(project, *args) -> str:
    """`dvc <args>` in a scratch project; its stdout, or a failure showing the end of its output."""
    root, env = project
    done = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=root, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


def pytest_collection_modifyitems(items) -> None:
    """Files with end-to-end tests first, each file's tests in their order: the two test processes take the
    longest files first and the short ones fill in at the end, so neither waits idle on the other."""
    slow_files = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow_files)
