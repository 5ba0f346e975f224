"""Sweeps fanned out over a work pool, with real servers on loopback: a Prefect server, and an MLflow server
whose backend store is a real PostgreSQL, as a multi-machine deployment would have. Two workers share a
2 × 2 sweep, the `gpu` limit keeps their training apart, a re-run retrains nothing, and a worker killed
with SIGKILL mid-point costs the sweep nothing but time."""

from __future__ import annotations

import contextlib
import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tasks import fanout
from tests.conftest import free_port, make_project, project_env, wait_http

FAST = ["--set", "train.threads=1"]  # two points share this machine's two cores


def _pg_bin(name: str) -> str | None:
    return shutil.which(name) or next(iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))), None)


@pytest.fixture(scope="module")
def postgres():
    """A throw-away PostgreSQL cluster on loopback (run as the `postgres` user when the tests run as root,
    which PostgreSQL refuses); yields its SQLAlchemy URL for a database `mlflow`."""
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    if not (initdb and pg_ctl):
        message = "no PostgreSQL: scripts/setup.sh installs Debian's package (apt-get install postgresql)"
        pytest.fail(message) if os.environ.get("CI") else pytest.skip(message)
    base = Path(tempfile.mkdtemp(prefix="uda-pg-"))  # not under pytest's 0700 tmp dirs: `postgres` must enter it
    as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if as_user:
        shutil.chown(base, "postgres")
    port, data = free_port(), base / "data"
    try:
        subprocess.run([*as_user, initdb, "-D", str(data), "-A", "trust", "-U", "mlflow", "--no-sync"], check=True,
                       capture_output=True)
        subprocess.run([*as_user, pg_ctl, "-D", str(data), "-l", str(base / "log"), "-w", "-t", "120", "-o",
                        f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off", "start"],
                       check=True, capture_output=True)
        subprocess.run(["psql", "-h", "127.0.0.1", "-p", str(port), "-U", "mlflow", "-d", "postgres", "-q", "-c",
                        "CREATE DATABASE mlflow"], check=True, capture_output=True)
        yield f"postgresql://mlflow@127.0.0.1:{port}/mlflow"
    finally:
        subprocess.run([*as_user, pg_ctl, "-D", str(data), "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, postgres, prefect_api, mirror):
    """A committed scratch project, the session's Prefect server and an MLflow server on PostgreSQL."""
    root = make_project(tmp_path_factory.mktemp("fanout") / "project", pipeline={"methods": ["source_only"]},
                        data={"max_per_split": 1000})
    port = free_port()
    artifacts = root.parent / "mlflow-artifacts"
    env = project_env(root, prefect_api, mirror) | {"MLFLOW_TRACKING_URI": f"http://127.0.0.1:{port}"}
    for cmd in (["git", "add", "-A"], ["git", "commit", "-qm", "scratch"]):
        subprocess.run(cmd, cwd=root, env=env, check=True)
    log = open(root.parent / "mlflow.log", "w")  # noqa: SIM115
    server = subprocess.Popen([sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
                               "--backend-store-uri", postgres, "--artifacts-destination", artifacts.as_uri(),
                               "--workers", "1"], env=env | {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
                              stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_http(f"http://127.0.0.1:{port}/health", server, timeout=180)
        yield root, env
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(30)
        log.close()


def run(root, env, *args, timeout=1200):
    done = subprocess.run([sys.executable, *args], cwd=root, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    return done.stdout


def api(env):
    import httpx

    return httpx.Client(base_url=env["PREFECT_API_URL"], timeout=30)


def point_runs(env, sweep: str) -> list[dict]:
    body = {"flow_runs": {"tags": {"all_": [f"sweep:{sweep}"]}}, "limit": 200}
    return api(env).post("/flow_runs/filter", json=body).json()


def train_tasks(env, since: datetime) -> list[dict]:
    """The training task runs (tag `gpu`) that started after `since` (the session's server serves other tests too)."""
    body = {"task_runs": {"name": {"like_": "train-"}, "tags": {"all_": ["gpu"]},
                          "start_time": {"after_": since.isoformat()}}, "limit": 200}
    return api(env).post("/task_runs/filter", json=body).json()


def interval(run: dict) -> tuple[datetime, datetime]:
    return datetime.fromisoformat(run["start_time"]), datetime.fromisoformat(run["end_time"])


def overlap(a: dict, b: dict) -> bool:
    (s1, e1), (s2, e2) = interval(a), interval(b)
    return s1 < e2 and s2 < e1


def mlflow_children(env, sweep: str, stage: str) -> list:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(env["MLFLOW_TRACKING_URI"])
    exp = client.get_experiment_by_name("mnist_mnistm")
    parents = client.search_runs([exp.experiment_id], f"tags.stage = 'sweep' and tags.sweep = '{sweep}'",
                                 order_by=["attributes.start_time DESC"])
    return client, parents, client.search_runs(
        [exp.experiment_id], f"tags.`mlflow.parentRunId` = '{parents[0].info.run_id}' and tags.stage = '{stage}'")


class _Run:  # the two fields of a flow run the sweep reads
    def __init__(self, kind: str, beat: str | None = None):
        self.state = type("S", (), {"type": type("T", (), {"value": kind})()})()
        self.labels = {} if beat is None else {fanout.HEARTBEAT: beat}


def test_a_point_is_stale_only_when_running_and_its_heartbeat_unchanged_past_the_threshold():
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    at = lambda s: t0 + timedelta(seconds=s)  # noqa: E731
    p = fanout.Point(0, {})

    def poll(run, s):  # what run_points does at each poll: watch, then judge
        fanout.watch(p, run, at(s))
        return fanout.stale(run.state.type.value, p.beat_changed, 90, at(s))

    assert not poll(_Run("SCHEDULED"), 0) and p.beat_changed is None  # waiting for a worker is not death
    assert not poll(_Run("RUNNING"), 10)  # first seen running: the clock starts now, not at the run's start
    assert not poll(_Run("RUNNING"), 100)  # at the threshold: not yet
    assert poll(_Run("RUNNING"), 101)  # running, never a heartbeat, past it
    assert not poll(_Run("RUNNING", "a"), 102)  # a new label value resets the clock ...
    assert not poll(_Run("RUNNING", "a"), 192)
    assert poll(_Run("RUNNING", "a"), 193)  # ... the same value does not
    # The label's value is never compared with the sweep's clock: a point's clock an hour off changes nothing.
    assert not poll(_Run("RUNNING", (t0 - timedelta(hours=1)).isoformat()), 194)
    assert not poll(_Run("COMPLETED", "a"), 1000)

    class Client:  # the one call submit makes
        def create_flow_run_from_deployment(self, *args, **kwargs):
            return type("R", (), {"id": "r2", "name": "s-0-attempt1"})()

    fanout.submit(Client(), "d", p, "s")  # a retry's clock starts when it is seen running, not at the last beat
    assert p.beat is None and p.beat_changed is None and p.attempts == ["r2"]


GRID = ["--grid", "train.optimizer.lr=0.02,0.05", "--grid", "train.optimizer.name=sgd,adam"]


@pytest.mark.slow
def test_two_workers_share_a_two_by_two_sweep_and_the_gpu_limit_keeps_training_apart(cluster):
    root, env = cluster
    before, t0 = (root / "params.yaml").read_bytes(), datetime.now(UTC)
    assert "'concurrency_limit': 1" in run(root, env, "-m", "flows.deploy", "setup", "--gpus", "1")
    run(root, env, "-m", "flows.sweep", "--name", "grid", *GRID, "--workers", "2", *FAST)
    assert (root / "params.yaml").read_bytes() == before  # the project's workspace is never edited
    points = point_runs(env, "grid")
    assert len(points) == 4 and {p["state_type"] for p in points} == {"COMPLETED"}
    assert all(fanout.HEARTBEAT in p["labels"] for p in points)  # each point beat through its flow run's label
    # Each worker runs one point at a time (--limit 1): points overlapping in time ran on different workers.
    assert any(overlap(a, b) for a in points for b in points if a["id"] < b["id"])
    logs = sorted((root / ".services/workers/grid").glob("worker-*.log"))
    assert len(logs) == 2 and all("grid-" in log.read_text() for log in logs), "a worker took no point"
    trains = [t for t in train_tasks(env, t0) if t["state_type"] == "COMPLETED"]
    assert len(trains) == 4
    assert not any(overlap(a, b) for a in trains for b in trains if a["id"] < b["id"]), "two trainings at once"
    client, _, children = mlflow_children(env, "grid", "sweep_point")
    assert len(children) == 4 and {c.data.tags["dvc_experiment"] for c in children} == {f"grid-{i}" for i in range(4)}
    _, _, stage_runs = mlflow_children(env, "grid", "train")
    assert len(stage_runs) == 4 and all("target/test_acc" in c.data.metrics for c in stage_runs)
    summary = json.loads((root / "reports/sweeps/grid/sweep.json").read_text())
    assert len(summary["summary"]["source_only"]["settings"]) == 4 and summary["failed"] == []
    assert (root / "reports/sweeps/grid/source_only_target_test_acc.png").stat().st_size > 5_000
    listed = run(root, env, "-m", "dvc", "exp", "list", "--name-only")
    assert {f"grid-{i}" for i in range(4)} <= set(listed.split())  # every point is a DVC experiment here
    assert not any((root / ".workspaces/grid").iterdir())  # finished points leave no workspace behind


@pytest.mark.slow
def test_running_the_same_sweep_again_retrains_nothing(cluster):
    root, env = cluster
    t0 = datetime.now(UTC)
    run(root, env, "-m", "flows.sweep", "--name", "grid", *GRID, "--workers", "2", *FAST)
    assert train_tasks(env, t0) == []  # DVC's shared run cache restored every point
    _, parents, children = mlflow_children(env, "grid", "sweep_point")
    assert len(parents) == 2 and len(children) == 4  # the new parent has all four points


def training_worker(workers: list, logs: Path):
    """The worker whose point is training and has checkpointed (step 20 logged; checkpoints every 10), or
    None. (Its log says so: the other point's training waits for the `gpu` slot meanwhile.)"""
    return next((w for i, w in enumerate(workers) if "step 20/600" in (logs / f"w{i}.log").read_text()), None)


def descendants(pid: int) -> list[int]:
    children = {}
    for line in subprocess.run(["ps", "-eo", "pid=,ppid="], capture_output=True, text=True).stdout.splitlines():
        child, parent = map(int, line.split())
        children.setdefault(parent, []).append(child)
    out, todo = [], [pid]
    while todo:
        out.append(todo.pop())
        todo += children.get(out[-1], [])
    return out


@pytest.mark.slow
def test_a_worker_killed_mid_point_costs_the_sweep_nothing_but_time(cluster):
    """SIGKILL to the worker that is training and everything under it (its machine dies) once the point has
    a checkpoint: the sweep marks the silent point crashed, the other worker runs it again from that
    checkpoint, and the table counts each point once."""
    root, env = cluster
    logs = root.parent / "fault-workers"
    logs.mkdir()
    workers = [subprocess.Popen([sys.executable, "-m", "prefect", "worker", "start", "--pool", "uda-process",
                                 "--work-queue", "points", "--limit", "1", "--name", f"w{i}"], cwd=root, env=env,
                                stdout=open(logs / f"w{i}.log", "w"), stderr=subprocess.STDOUT,
                                start_new_session=True) for i in range(2)]
    sweep = subprocess.Popen([sys.executable, "-m", "flows.sweep", "--name", "fault", "--grid",
                              "train.optimizer.lr=0.03,0.04", "--workers", "0", "--stale-after", "50", *FAST,
                              "--set", "train.steps=600", "--set", "train.checkpoint_every=10"],
                             cwd=root, env=env, stdout=open(logs / "sweep.log", "w"), stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 600
        while not (victim := training_worker(workers, logs)):
            assert time.monotonic() < deadline and sweep.poll() is None, (logs / "sweep.log").read_text()[-3000:]
            time.sleep(0.5)
        for pid in descendants(victim.pid):
            os.kill(pid, signal.SIGKILL)
        assert sweep.wait(900) == 0, (logs / "sweep.log").read_text()[-4000:]
    finally:
        for w in workers:
            for pid in descendants(w.pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        sweep.kill()
    survivor = next(w for w in workers if w is not victim)
    assert "resuming from" in (logs / f"w{workers.index(survivor)}.log").read_text()  # the machine's checkpoint
    attempts = point_runs(env, "fault")
    crashed = [p for p in attempts if p["state_type"] == "CRASHED"]
    assert len(crashed) == 1 and "no heartbeat" in crashed[0]["state"]["message"]
    assert len(attempts) == 3 and sum(p["state_type"] == "COMPLETED" for p in attempts) == 2
    summary = json.loads((root / "reports/sweeps/fault/sweep.json").read_text())
    assert len(summary["results"]) == 2 and summary["failed"] == []
    _, _, children = mlflow_children(env, "fault", "sweep_point")
    assert sorted(c.data.tags["sweep_index"] for c in children) == ["0", "1"]  # no partial point, none twice
