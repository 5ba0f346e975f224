"""A sweep's points as flow runs on the work pool: submit them, watch them, retry the dead, collect the finished.

Any worker of the pool takes a point as it has capacity (`prefect worker start --limit 1` per GPU). A worker
that dies leaves its flow run in Running for ever (nothing reports the crash), so each point rewrites a label
of its flow run, `uda.heartbeat`, every BEAT seconds, and the sweep watches it: a running point whose label
has not changed for `stale_after` seconds of the sweep's own clock is marked Crashed and submitted again, as
is one that failed; after `retries` more attempts it is reported failed by name.

Why a label and not an event: a label is written to the server's database by the request that sets it, so
the sweep reads it as fresh as the flow run itself. Events pass through the server's event pipeline; on a
loaded machine a live point was once judged silent that way and run twice. Why the sweep's
clock: comparing the label's value with the sweep's time would count the machines' clock skew as silence.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from uda import tracking

DEPLOYMENT = "point/uda-point"
HEARTBEAT = "uda.heartbeat"  # the flow-run label a point rewrites to say it is alive
BEAT = 15  # seconds between a point's heartbeats


@dataclass
class Point:
    index: int
    parameters: dict
    attempts: list[str] = field(default_factory=list)  # flow run ids, the last one current
    state: str = "SCHEDULED"
    reason: str = ""
    beat: str | None = None  # the current attempt's heartbeat label as last read
    beat_changed: datetime | None = None  # when (sweep's clock) it was first seen running or its label changed


def _now() -> datetime:
    return datetime.now(UTC)


def submit(client, deployment_id, p: Point, sweep: str) -> None:
    run = client.create_flow_run_from_deployment(
        deployment_id, parameters=p.parameters, name=f"{sweep}-{p.index}-attempt{len(p.attempts) + 1}",
        tags=[f"sweep:{sweep}"])
    p.attempts.append(str(run.id))
    p.beat = p.beat_changed = None
    print(f"point {p.index}: submitted as flow run {run.name} ({run.id})", flush=True)


def state_of(run) -> str:
    """A flow run's state type ("SCHEDULED" before it has one)."""
    return run.state.type.value if run.state else "SCHEDULED"


def watch(p: Point, run, now: datetime) -> None:
    """Note when the running attempt's heartbeat label last changed, as the sweep sees it."""
    if state_of(run) != "RUNNING":
        return
    beat = (run.labels or {}).get(HEARTBEAT)
    if p.beat_changed is None or beat != p.beat:
        p.beat, p.beat_changed = beat, now


def stale(state: str, beat_changed: datetime | None, stale_after: float, now: datetime) -> bool:
    """A running point whose heartbeat has not changed for more than `stale_after` seconds (sweep's clock)."""
    return state == "RUNNING" and beat_changed is not None and (now - beat_changed).total_seconds() > stale_after


def run_points(sweep: str, parameters: list[dict], retries: int = 1, stale_after: float = 90.0,
               poll: float = 3.0) -> list[Point]:
    """Submit one flow run per point and wait until each has completed or exhausted its retries."""
    from prefect.client.orchestration import get_client
    from prefect.states import Crashed

    points = [Point(i, params) for i, params in enumerate(parameters)]
    with get_client(sync_client=True) as client:
        deployment = client.read_deployment_by_name(DEPLOYMENT)
        for p in points:
            submit(client, deployment.id, p, sweep)
        while pending := [p for p in points if p.state not in ("COMPLETED", "FAILED")]:
            time.sleep(poll)
            runs = {p.index: client.read_flow_run(p.attempts[-1]) for p in pending}
            for p in pending:
                run, now = runs[p.index], _now()
                watch(p, run, now)
                if stale(state_of(run), p.beat_changed, stale_after, now):
                    why = f"no heartbeat for over {stale_after:.0f} s: its worker died"
                    client.set_flow_run_state(run.id, Crashed(message=why), force=True)
                    run = client.read_flow_run(run.id)
                    p.reason = why
                state = state_of(run)
                if state == "COMPLETED":
                    p.state = state
                elif run.state is not None and run.state.is_final():
                    p.reason = p.reason or f"{state}: {run.state.message or ''}".strip()
                    if len(p.attempts) <= retries:
                        print(f"point {p.index}: attempt {len(p.attempts)} ended {p.reason}; retrying", flush=True)
                        submit(client, deployment.id, p, sweep)
                        p.reason = ""
                    else:
                        p.state = "FAILED"
                else:
                    p.state = state
    return points


def collect(tracking_uri: str, parent_run_id: str) -> dict[int, dict]:
    """Each finished point's result (point.json of its `sweep_point` child run), by index: a point appears
    only once it completed, so a partial one is never counted."""
    out: dict[int, dict] = {}
    for tags, result in tracking.finished_children(parent_run_id, "sweep_point", "point.json", tracking_uri):
        out.setdefault(int(tags["sweep_index"]), result)  # a point run twice (a worker thought dead came back)
    return out


@contextlib.contextmanager
def heartbeats(run_id: str | None, every: float = BEAT) -> Iterator[None]:
    """Within the block, this flow run tells the sweep it is alive every `every` seconds (from a thread:
    the flow's own thread waits on its stages)."""
    import contextvars
    import threading

    from prefect.client.orchestration import get_client

    if run_id is None:  # not a flow run of a deployment: nobody watches
        yield
        return
    stop = threading.Event()

    def beat() -> None:
        with get_client(sync_client=True) as client:
            while not stop.is_set():
                with contextlib.suppress(Exception):  # a missed beat is what the sweep measures, not an error here
                    client.update_flow_run_labels(run_id, {HEARTBEAT: _now().isoformat()})
                stop.wait(every)

    thread = threading.Thread(target=contextvars.copy_context().run, args=(beat,), daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()


@contextlib.contextmanager
def local_workers(n: int, pool: str, queue: str, env: dict[str, str], log_dir: Path) -> Iterator[list]:
    """`n` process workers on this machine for the duration of a sweep, one point at a time each."""
    log_dir.mkdir(parents=True, exist_ok=True)
    procs = []
    try:
        for i in range(n):
            log = open(log_dir / f"worker-{i}.log", "w")  # noqa: SIM115  (closed with the process)
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "prefect", "worker", "start", "--pool", pool, "--work-queue", queue,
                 "--limit", "1", "--name", f"local-{os.getpid()}-{i}"],
                # Polling every 2 s rather than 10: a point waits less for a free worker to notice it.
                env={**os.environ, "PREFECT_WORKER_QUERY_SECONDS": "2", **env}, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True))
        yield procs
    finally:
        for proc in procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGINT)
        for proc in procs:
            try:  # idle by now (every point has ended): a worker slow to leave between polls is killed
                proc.wait(5)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
