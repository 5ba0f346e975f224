"""The shared entry point of every stage: load params once, check the services, fail cleanly.

A stage fails with one line naming the cause: bad params or input (exit 2), a server that does not answer
(exit 3), SIGTERM or Ctrl-C (exit 128 + the signal). Its outputs are replaced whole or not at all, so after
any of these the previous ones are still there. Without PREFECT_API_URL a stage runs its own temporary
Prefect server as a child that dies with it, even when the stage is killed with SIGKILL.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
from collections.abc import Callable, Iterator

from uda import services
from uda.config import ConfigError, load_params
from uda.io import DataError


class Interrupted(BaseException):  # noqa: N818  (a BaseException, like KeyboardInterrupt: nothing may swallow it)
    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _raise_interrupted(signum, frame) -> None:
    raise Interrupted(signum)


@contextlib.contextmanager
def prefect_api() -> Iterator[None]:
    """The configured Prefect API, or a temporary server of this stage's own."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    if PREFECT_API_URL.value():
        yield
        return
    with services.temporary_prefect_server() as api, temporary_settings(updates={PREFECT_API_URL: api}):
        finished = False
        try:
            yield
            finished = True
        finally:
            # Briefly when stopping on a signal or an error: a stage told to stop must stop within seconds.
            _drain_prefect(timeout=5.0 if finished else 1.0)


def _drain_prefect(timeout: float = 5.0) -> None:
    """Send Prefect's queued logs and events while the temporary server still answers (they would otherwise
    go at exit, to a server already stopped)."""
    with contextlib.suppress(Exception):
        from prefect.events.worker import EventsWorker
        from prefect.logging.handlers import APILogWorker

        for worker in (APILogWorker, EventsWorker):
            worker.drain_all(timeout=timeout)


def _api_configured() -> bool:
    from prefect.settings import PREFECT_API_URL

    return bool(PREFECT_API_URL.value())


def _server_failure(e: BaseException) -> BaseException | None:
    """The connection failure behind `e`, if a server stopped answering mid-run."""
    while e is not None:
        names = {c.__name__ for c in type(e).__mro__}
        if names & {"ConnectionError", "ConnectError", "MaxRetryError", "RemoteDisconnected", "ReadTimeout"}:
            return e
        if "MlflowException" in names and "Max retries exceeded" in str(e):
            return e
        e = e.__cause__ or e.__context__
    return None


def run_stage(flow: Callable[..., object], description: str, argv: list[str] | None = None,
              add_arguments: Callable[[argparse.ArgumentParser], None] | None = None,
              load: Callable[[str], object] = load_params) -> None:
    """Parse `--params` (and the stage's own arguments), then run `flow(load(params), **arguments)`.

    `load` is uda.config.load_params, or uda.runs.load for the stages that need run specs (and for the
    first stage, download, which so validates every block before any work)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
    if add_arguments is not None:
        add_arguments(parser)
    args = vars(parser.parse_args(argv))
    try:
        loaded = load(args.pop("params"))  # before any work, and before a Prefect server starts
        services.check()
    except (ConfigError, DataError) as e:
        _fail(2, e)
    except services.ServiceError as e:
        _fail(3, e)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _raise_interrupted)
    try:
        with prefect_api():
            flow(loaded, **args)
    except (ConfigError, DataError) as e:
        _fail(2, e, ran=True)
    except services.ServiceError as e:
        _fail(3, e, ran=True)
    except Interrupted as e:
        _fail(128 + e.signum, f"stopped by {e}; this stage's previous outputs are as they were", ran=True)
    except Exception as e:
        cause = _server_failure(e)
        if cause is None:
            raise
        _fail(3, f"a server stopped answering mid-run ({type(cause).__name__}: {str(cause).splitlines()[0][:300]}); "
                 "this stage's previous outputs are as they were. Start it again (or unset its URL) and re-run",
              ran=True)


def _fail(code: int, message: object, ran: bool = False) -> None:
    """One line on stderr, last. After a flow ran, Prefect's queued logs are sent first (briefly: its server
    may be the thing that died) and the process ends without its exit hooks, which would retry them."""
    if ran and _api_configured():  # a temporary server's queue was drained before it stopped
        _drain_prefect(timeout=3.0)  # its complaints, if any, end without a newline: ours starts a line
    print(f"{chr(10) * ran}error: {message}", file=sys.stderr, flush=True)
    if ran:
        sys.stdout.flush()
        os._exit(code)
    sys.exit(code)
