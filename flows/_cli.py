"""The shared entry point of every stage: load params once, fail cleanly on bad input."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from uda.config import ConfigError, load_params
from uda.io import DataError


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
        loaded = load(args.pop("params"))  # before any work, and before Prefect starts a server
        flow(loaded, **args)
    except (ConfigError, DataError) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
