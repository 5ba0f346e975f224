"""The shared entry point of every stage: load params once, fail cleanly on bad input."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from uda.config import ConfigError, load_params
from uda.io import DataError


def run_stage(flow: Callable[..., object], description: str, argv: list[str] | None = None,
              add_arguments: Callable[[argparse.ArgumentParser], None] | None = None) -> None:
    """Parse `--params` (and the stage's own arguments), then run `flow(params, **arguments)`."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
    if add_arguments is not None:
        add_arguments(parser)
    args = vars(parser.parse_args(argv))
    try:
        params = load_params(args.pop("params"))  # before any work, and before Prefect starts a server
        flow(params, **args)
    except (ConfigError, DataError) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
