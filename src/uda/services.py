"""`uda services`: the local Prefect server and MLflow tracking server, on loopback, for people who want the UIs.

Both run as child processes with their state inside the project (git-ignored): Prefect in `.prefect/`,
MLflow in `.mlflow/mlflow.db` with artifacts in `.mlflow/artifacts` (served by the MLflow server, background
job execution off). While they run, `.services.json` holds their URLs and the pipeline uses them (see
`discover`); when they are not running, the stages fall back to a temporary Prefect server and the sqlite
store. This module drives the two servers through their command lines only.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
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


class ServiceError(RuntimeError):
    """A configured server does not answer: names the URL, and how to start it or stop using it."""


def _reason(url: str, timeout: float) -> str | None:
    """Why `url` does not answer with 200 (None when it does)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return None if r.status == 200 else f"HTTP {r.status}"
    except urllib.error.HTTPError as e:
        return f"HTTP {e.code}"
    except (OSError, ValueError) as e:
        return str(getattr(e, "reason", e))


def check(env: Mapping[str, str] = os.environ, timeout: float = 5.0) -> None:
    """Fail fast, before any work, when MLFLOW_TRACKING_URI (an http server) or PREFECT_API_URL is set but
    does not answer; each probe waits at most `timeout` seconds."""
    mlflow = env.get("MLFLOW_TRACKING_URI", "")
    if mlflow.startswith(("http://", "https://")) and (why := _reason(f"{mlflow.rstrip('/')}/health", timeout)):
        raise ServiceError(f"MLFLOW_TRACKING_URI={mlflow} does not answer ({why}). Start that server (`uda services` "
                           "runs one for this project) or unset MLFLOW_TRACKING_URI to use the project's own "
                           "store in .mlflow/")
    prefect = env.get("PREFECT_API_URL", "")
    if prefect and (why := _reason(f"{prefect.rstrip('/')}/health", timeout)):
        raise ServiceError(f"PREFECT_API_URL={prefect} does not answer ({why}). Start that server (`uda services` "
                           "runs one for this project) or unset PREFECT_API_URL, and each stage starts a "
                           "temporary one of its own")


def _die_with_parent() -> None:
    """In the child, before exec: the kernel sends it SIGKILL when its parent dies, even by SIGKILL (Linux's
    PR_SET_PDEATHSIG; elsewhere nothing). Its own session keeps a signal to the stage's process group away
    from it, so the stage can still report to it while stopping."""
    os.setsid()
    if sys.platform.startswith("linux"):
        import ctypes

        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def temporary_prefect_server(timeout: float = 180) -> Iterator[str]:
    """A Prefect API server for one stage (what Prefect's own temporary server does, as a child that cannot
    outlive the stage); yields its API URL and stops it when the block ends."""
    prefect_dir = Path(importlib.util.find_spec("prefect").origin).parent
    port = _free_port()
    cmd = [sys.executable, "-m", "uvicorn", "--app-dir", str(prefect_dir.parent), "--factory",
           "prefect.server.api.server:create_app", "--host", "127.0.0.1", "--port", str(port),
           "--log-level", "error", "--lifespan", "on"]
    env = {**os.environ, "PREFECT_UI_ENABLED": "0", "PREFECT__SERVER_EPHEMERAL": "1", "PREFECT__SERVER_FINAL": "1"}
    env.pop("PREFECT_API_URL", None)
    proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent)  # noqa: PLW1509
    api = f"http://127.0.0.1:{port}/api"
    try:
        deadline = time.monotonic() + timeout
        while not _healthy(f"{api}/health"):
            if proc.poll() is not None:
                raise ServiceError(f"the temporary Prefect server exited with code {proc.returncode} before answering")
            if time.monotonic() > deadline:
                raise ServiceError(f"the temporary Prefect server did not answer at {api} within {timeout:.0f} s")
            time.sleep(0.2)
        yield api
    finally:
        proc.terminate()
        try:
            proc.wait(3)  # it may wait on open connections: a stage that was told to stop does not
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


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
