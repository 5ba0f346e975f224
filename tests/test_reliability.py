"""Faults a scheduler, a careless user or a dying server inflict on real stages (issue: reliability).

A small real experiment (MNIST → USPS, 1,500 images per split, source only) runs through the stage
commands; then each stage is re-run, killed, terminated, starved of its servers or fed damaged files.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT, free_port, make_project, project_env, wait_http

pytestmark = pytest.mark.slow
STAGES = [["download"], ["preprocess"], ["train", "--method", "source_only"],
          ["evaluate", "--method", "source_only"], ["tsne"], ["report"]]


def stage(root: Path, env: dict, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", f"flows.{args[0]}", *args[1:]], cwd=root, env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def small(tmp_path_factory, prefect_api, mirror):
    root = make_project(tmp_path_factory.mktemp("small"), data={"max_per_split": 1500},
                        pipeline={"methods": ["source_only"]}, train={"steps": 60})
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["experiment"] = "mnist_usps"
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env = project_env(root, prefect_api, mirror)
    for args in STAGES:
        done = stage(root, env, *args)
        assert done.returncode == 0, done.stderr[-3000:]
    return root, env


def digests(root: Path, *folders: str) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for f in folders for p in sorted((root / f).rglob("*")) if p.is_file()}


OUTPUTS = ("data/raw", "data/processed", "models", "evaluation", "reports")


def long_params(root: Path, name: str, **train) -> str:
    """A params file whose source-only run is long (and keyed apart from the fixture's)."""
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["train"].update({"steps": 100_000, "seed": 7, "log_every": 10, **train})
    (root / name).write_text(yaml.safe_dump(params, sort_keys=False))
    return name


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state not in ("Z", "X")


def children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def start_training(root: Path, env: dict, params: str, log: Path) -> subprocess.Popen:
    """The train stage in the background, returned once it logs its first step."""
    proc = subprocess.Popen([sys.executable, "-m", "flows.train", "--method", "source_only", "--params", params],
                            cwd=root, env=env, stdout=open(log, "w"), stderr=subprocess.STDOUT)  # noqa: SIM115
    deadline = time.monotonic() + 300
    while "step " not in log.read_text():
        assert proc.poll() is None, log.read_text()[-3000:]
        assert time.monotonic() < deadline, "no training step within 300 s"
        time.sleep(0.2)
    return proc


def test_rerunning_a_finished_stage_gives_byte_identical_outputs(small):
    root, env = small
    before = digests(root, *OUTPUTS)
    for args in STAGES:
        done = stage(root, env, *args)
        assert done.returncode == 0, done.stderr[-3000:]
        changed = sorted(k for k, v in digests(root, *OUTPUTS).items() if before.get(k) != v)
        assert not changed, f"re-running {args[0]} changed {changed}"


def test_a_killed_stage_leaves_no_process_behind(small, tmp_path):
    root, env = small
    env = {k: v for k, v in env.items() if k != "PREFECT_API_URL"}  # the stage starts its own server
    proc = start_training(root, env, long_params(root, "params_sigkill.yaml"), tmp_path / "log")
    started = children(proc.pid)
    assert started, "the stage runs a temporary Prefect server as its child"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 5
    while any(alive(p) for p in started) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [p for p in started if alive(p)], "a process the killed stage started is still running"


def test_sigterm_stops_a_stage_within_10_s_with_one_line_and_its_outputs_whole(small, tmp_path):
    root, env = small
    before = digests(root, "models")
    env = {k: v for k, v in env.items() if k != "PREFECT_API_URL"}
    proc = start_training(root, env, long_params(root, "params_sigterm.yaml", seed=8), tmp_path / "log")
    started = children(proc.pid)
    sent = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    proc.wait(30)
    assert time.monotonic() - sent < 10
    assert proc.returncode == 128 + signal.SIGTERM
    last = (tmp_path / "log").read_text().strip().splitlines()[-1]
    assert last == "error: stopped by SIGTERM; this stage's previous outputs are as they were"
    assert digests(root, "models") == before
    assert not [p for p in started if alive(p)]


@pytest.mark.parametrize("variable, value", [("MLFLOW_TRACKING_URI", "http://127.0.0.1:{port}"),
                                             ("PREFECT_API_URL", "http://127.0.0.1:{port}/api")])
def test_an_unreachable_server_fails_the_stage_within_10_s_naming_it(variable, value):
    url = value.format(port=free_port())
    env = {**os.environ, variable: url}
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "flows.report", "--params", str(ROOT / "params.yaml")], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=60)
    assert time.monotonic() - started < 10
    assert done.returncode == 3
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {variable}={url} does not answer")
    assert f"or unset {variable}" in lines[0] and "uda services" in lines[0]


@pytest.mark.parametrize("path, stage_args, made_by", [
    ("data/processed/usps/train.pt", ["train", "--method", "source_only"], "dvc repro preprocess"),
    ("models/source_only/model.pt", ["evaluate", "--method", "source_only"], "dvc repro train@source_only"),
    ("models/source_only/snapshots/step_000060.pt", ["evaluate", "--method", "source_only"],
     "dvc repro train@source_only"),
])
def test_a_damaged_stage_file_names_the_file_and_the_stage_that_makes_it(small, path, stage_args, made_by):
    root, env = small
    target = root / path
    original = target.read_bytes()
    try:
        target.write_bytes(original[: len(original) // 2])
        done = stage(root, env, *stage_args)
    finally:
        target.write_bytes(original)
    assert done.returncode == 2
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: {path}: cannot be read") and made_by in last
    assert "weights_only" not in done.stderr


def test_a_missing_validation_split_names_the_file_and_its_stage(small):
    root, env = small
    split = root / "data/processed/mnist/val_split.json"
    moved = split.with_name("moved.json")
    split.rename(moved)
    try:
        done = stage(root, env, "train", "--method", "source_only")
    finally:
        moved.rename(split)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == (
        "error: data/processed/mnist/val_split.json: missing; the preprocess stage writes it (dvc repro preprocess)")


def test_a_second_run_of_a_stage_is_refused_while_one_runs(small, tmp_path):
    root, env = small
    before = digests(root, "reports")
    log = tmp_path / "first.log"
    first = subprocess.Popen([sys.executable, "-m", "dvc", "repro", "--single-item", "--force", "tsne"], cwd=root,
                             env=env, stdout=open(log, "w"), stderr=subprocess.STDOUT)  # noqa: SIM115
    deadline = time.monotonic() + 120
    while "Running stage 'tsne'" not in log.read_text():
        assert first.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
        time.sleep(0.2)
    second = subprocess.run([sys.executable, "-m", "dvc", "repro", "--single-item", "--force", "tsne"], cwd=root,
                            env=env, capture_output=True, text=True, timeout=120)
    assert first.wait(600) == 0, log.read_text()[-3000:]
    assert second.returncode != 0
    assert "reports/tsne' is busy, it is being blocked by" in second.stdout + second.stderr  # DVC's rwlock
    assert digests(root, "reports") == before  # t-SNE re-ran once, to the same bytes


def _mlflow_server(root: Path, port: int) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
           "--backend-store-uri", f"sqlite:///{root / 'server.db'}", "--artifacts-destination",
           (root / "server-artifacts").as_uri()]
    proc = subprocess.Popen(cmd, cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    wait_http(f"http://127.0.0.1:{port}/health", proc)
    return proc


def _prefect_server(home: Path, port: int) -> subprocess.Popen:
    env = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_SERVER_UI_ENABLED": "false"}
    env.pop("PREFECT_API_URL", None)
    proc = subprocess.Popen([sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port",
                             str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    wait_http(f"http://127.0.0.1:{port}/api/health", proc)
    return proc


def _stop(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


@pytest.mark.parametrize("server", ["mlflow", "prefect"])
def test_a_server_that_dies_mid_run_fails_the_stage_clearly_and_a_rerun_completes(small, tmp_path, server):
    root, env = small
    port = free_port()
    start = {"mlflow": lambda: _mlflow_server(tmp_path, port), "prefect": lambda: _prefect_server(tmp_path, port)}
    url = {"mlflow": ("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{port}"),
           "prefect": ("PREFECT_API_URL", f"http://127.0.0.1:{port}/api")}[server]
    env = {**env, url[0]: url[1]}
    params = long_params(root, f"params_{server}.yaml", steps=300, seed=9 + (server == "prefect"),
                         checkpoint_every=20)
    proc = start[server]()
    try:
        training = start_training(root, env, params, tmp_path / "log")
    finally:
        _stop(proc)
    training.wait(300)
    out = (tmp_path / "log").read_text()
    assert training.returncode == 3, out[-3000:]
    assert out.strip().splitlines()[-1].startswith("error: a server stopped answering mid-run")
    assert not list((root / "models").glob(".source_only*.tmp"))  # nothing half-written

    proc = start[server]()  # it comes back: the re-run resumes and completes
    try:
        done = subprocess.run([sys.executable, "-m", "flows.train", "--method", "source_only", "--params", params],
                              cwd=root, env=env, capture_output=True, text=True, timeout=600)
    finally:
        _stop(proc)
    assert done.returncode == 0, done.stderr[-3000:]
    shutil.rmtree(root / "models/source_only")  # the fixture's own run is restored for any later test
    assert stage(root, small[1], "train", "--method", "source_only").returncode == 0
