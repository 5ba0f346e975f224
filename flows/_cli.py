"""The shared entry point of every stage: load params once, fail cleanly on bad input."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from uda.config import ConfigError, Params, load_params
from uda.io import DataError


def run_stage(flow: Callable[[Params], object], description: str, argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
    args = parser.parse_args(argv)
    try:
        params = load_params(args.params)  # before any work, and before Prefect starts a server
        flow(params)
    except (ConfigError, DataError) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
