"""DVC from Prefect: DVC decides what is stale and reruns only that; Prefect adds no result caching."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.settings import get_current_settings

from uda.io import DataError


def set_params(overrides: dict[str, object]) -> list[str]:
    """{'train.seed': 1} → ['-S', 'train.seed=1'] (values as YAML, so lists and numbers keep their type)."""
    out = []
    for key, value in overrides.items():
        out += ["-S", f"{key}={json.dumps(value) if not isinstance(value, str) else value}"]
    return out


@task(name="dvc", cache_policy=NO_CACHE, persist_result=False)
def dvc(args: list[str], project_dir: Path, env: dict[str, str] | None = None) -> str:
    """Run `dvc <args>` in the project; its stages are Prefect flows of their own, on the same server."""
    cmd = [sys.executable, "-m", "dvc", *args]
    print("$ " + " ".join(cmd[2:]), flush=True)
    api = api_url()  # the stages join this flow's server rather than each starting a temporary one
    env = {**os.environ, **({"PREFECT_API_URL": api} if api else {}), **(env or {})}
    lines: list[str] = []
    with subprocess.Popen(cmd, cwd=project_dir, env=env, text=True, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT) as proc:
        for line in proc.stdout:  # streamed: a full run takes long, and people watch it
            print(line, end="", flush=True)
            lines.append(line)
    out = "".join(lines)
    if proc.returncode != 0:
        raise RuntimeError(f"`dvc {' '.join(args)}` failed with exit code {proc.returncode}:\n{out[-4000:]}")
    return out


def api_url() -> str | None:
    """The Prefect API this process talks to: the configured one, or the temporary server it started."""
    if get_current_settings().api.url:
        return get_current_settings().api.url
    try:
        from prefect.server.api.server import SubprocessASGIServer

        return next((s.api_url for s in SubprocessASGIServer._instances.values() if s.running), None)
    except (ImportError, AttributeError):  # a Prefect without that (private) class: stages start their own
        return None


def read_headlines(project_dir: Path, methods: list[str]) -> dict[str, dict]:
    """Each method's evaluation details (evaluation/<method>/details.json) after a run."""
    out = {}
    for m in methods:
        path = Path(project_dir) / "evaluation" / m / "details.json"
        if not path.is_file():
            raise DataError(f"{path}: missing after the run; did `evaluate@{m}` run?")
        out[m] = json.loads(path.read_text())
    return out
