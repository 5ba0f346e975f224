"""Prefect flow `pipeline`: reproduce an experiment through DVC (what is stale reruns, the rest is reused).

    python -m flows.pipeline [--experiment mnist_usps] [--set train.seed=1 ...]

With no experiment and no overrides it is `dvc repro`; otherwise `dvc exp run -S …`, which records a DVC
experiment. Deployed nightly by prefect.yaml / `python -m flows.deploy`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import yaml
from prefect import flow

from tasks import ROOT
from tasks.dvc import dvc, read_headlines, set_params
from uda.config import load_params


@flow(name="pipeline", validate_parameters=False)
def pipeline(experiment: str | None = None, overrides: dict[str, object] | None = None,
             project_dir: str | None = None) -> dict[str, float]:
    root = Path(project_dir or ROOT)
    overrides = dict(overrides or {}) | ({"experiment": experiment} if experiment else {})
    dvc(["exp", "run", *set_params(overrides)] if overrides else ["repro"], root)
    params = load_params(root / "params.yaml")
    details = read_headlines(root, params.pipeline.all_methods)
    return {m: d["target"]["test_acc"] for m, d in details.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--experiment")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a params.yaml override")
    args = ap.parse_args()
    overrides = {k: yaml.safe_load(v) for k, v in (s.split("=", 1) for s in args.set)}
    print(pipeline(args.experiment, overrides))


if __name__ == "__main__":
    main()
