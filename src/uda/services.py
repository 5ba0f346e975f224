"""`uda services`: the local Prefect server and MLflow tracking server, on loopback, for people who want the UIs.

Both run as child processes with their state inside the project (git-ignored): Prefect in `.prefect/`,
MLflow in `.mlflow/mlflow.db` with artifacts in `.mlflow/artifacts` (served by the MLflow server, background
job execution off). While they run, `.services.json` holds their URLs and the pipeline uses them (see
`discover`); when they are not running, the stages fall back to a temporary Prefect server and the sqlite
store. This module drives the two servers through their command lines only.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

STATE_FILE = ".services.json"
OFFLINE = {"PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_TELEMETRY_ENABLE_RESOURCE_METRICS": "false",
           "MLFLOW_DISABLE_TELEMETRY": "true", "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", "DVC_NO_ANALYTICS": "1"}


def _healthy(url: str, timeout: float = 0.5) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status == 200
    except OSError:
        return False


def commands(root: Path, prefect_port: int, mlflow_port: int) -> dict[str, list[str]]:
    store = (root / ".mlflow").resolve()
    return {
        "prefect": [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
                    "--port", str(prefect_port)],
        "mlflow": [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(mlflow_port),
                   "--backend-store-uri", f"sqlite:///{store / 'mlflow.db'}",
                   "--artifacts-destination", (store / "artifacts").as_uri(), "--workers", "1"],
    }


def urls(prefect_port: int, mlflow_port: int) -> dict[str, str]:
    return {"prefect_ui": f"http://127.0.0.1:{prefect_port}", "prefect_api": f"http://127.0.0.1:{prefect_port}/api",
            "mlflow": f"http://127.0.0.1:{mlflow_port}"}


def start(root: Path, prefect_port: int = 4200, mlflow_port: int = 5000, timeout: float = 120) -> dict:
    """Start both servers, wait until they answer, record them in .services.json; returns that record."""
    root = Path(root).resolve()
    (root / ".mlflow").mkdir(exist_ok=True)
    env = {**os.environ, **OFFLINE, "PREFECT_HOME": str(root / ".prefect")}
    logs = root / ".services"
    logs.mkdir(exist_ok=True)
    procs = {name: subprocess.Popen(cmd, cwd=root, env=env, stdout=open(logs / f"{name}.log", "w"),  # noqa: SIM115
                                    stderr=subprocess.STDOUT, start_new_session=True)
             for name, cmd in commands(root, prefect_port, mlflow_port).items()}
    u = urls(prefect_port, mlflow_port)
    checks = {"prefect": f"{u['prefect_api']}/health", "mlflow": f"{u['mlflow']}/health"}
    deadline = time.monotonic() + timeout
    while not all(_healthy(c) for c in checks.values()):
        for name, p in procs.items():
            if p.poll() is not None:
                stop_processes(procs)
                raise RuntimeError(f"the {name} server exited with {p.returncode}; see {logs / (name + '.log')}")
        if time.monotonic() > deadline:
            stop_processes(procs)
            raise RuntimeError(f"servers not answering after {timeout:.0f} s; see the logs in {logs}")
        time.sleep(0.5)
    record = {**u, "pids": {n: p.pid for n, p in procs.items()}}
    (root / STATE_FILE).write_text(json.dumps(record, indent=2) + "\n")
    return record


def stop_processes(procs: dict) -> None:
    for p in procs.values():
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGTERM)
    for p in procs.values():
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)


def stop(root: Path) -> None:
    state = Path(root) / STATE_FILE
    if not state.exists():
        return
    for pid in json.loads(state.read_text())["pids"].values():
        try:
            os.killpg(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    state.unlink()


def discover(root: Path) -> dict[str, str]:
    """Environment settings that point at running services (none when they are not running, or when the
    environment already names a Prefect API or an MLflow tracking URI)."""
    state = Path(root) / STATE_FILE
    if not state.is_file() or "PREFECT_API_URL" in os.environ or "MLFLOW_TRACKING_URI" in os.environ:
        return {}
    try:
        record = json.loads(state.read_text())
    except ValueError:
        return {}
    if not (_healthy(f"{record['prefect_api']}/health") and _healthy(f"{record['mlflow']}/health")):
        return {}
    return {"PREFECT_API_URL": record["prefect_api"], "MLFLOW_TRACKING_URI": record["mlflow"]}
