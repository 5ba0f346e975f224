"""`uda`: what people do by hand. The pipeline itself runs through `dvc repro` (flows/)."""

from __future__ import annotations

import argparse
import json
import sys

from uda.config import ConfigError, load_params
from uda.io import DataError


def _domains(args) -> None:
    from uda.datasets import DOMAINS

    print(f"{'domain':<20}{'dataset':<10}{'ch':>3}  {'classes':<8}splits (official counts)")
    for domain, ds in sorted(DOMAINS.items()):
        counts = ", ".join(f"{s} {n:,}" for s, n in ds.official_counts.get(domain, {}).items())
        print(f"{domain:<20}{ds.name:<10}{ds.channels:>3}  {len(ds.classes):<8}{counts}")


def _download(args) -> None:
    from uda.download import fetch_domain, resolve_mirror

    params = load_params(args.params)
    for f in fetch_domain(args.domain, params.data.raw_dir, resolve_mirror(params.data.mirror),
                          ds=params.dataset(args.domain)):
        print(f"{f.path}  [{f.origin}]  {f.digest or 'no published checksum'}")


def _preprocess(args) -> None:
    from uda.preprocess import preprocess_domain

    params = load_params(args.params)
    name = args.experiment or params.experiment
    if name not in params.experiments:
        raise ConfigError(f"--experiment {name!r}: not declared under experiments ({', '.join(params.experiments)})")
    stats = preprocess_domain(args.domain, params.experiments[name].recipe, params.data, params.dataset(args.domain))
    for split, s in stats["splits"].items():
        print(f"{args.domain}/{split}: n={s['n']:,} shape={s['shape']} mean={s['mean']} std={s['std']}")


def _config(args) -> None:
    from uda import runs

    resolved = runs.load(args.params)
    params = resolved.params
    out = params.model_dump(mode="json")
    out["resolved_experiment"] = params.exp.model_dump(mode="json")
    out["runs"] = {name: {"key": spec.key, "train": spec.train.model_dump(mode="json"),
                          "method": spec.config.model_dump(mode="json")} for name, spec in resolved.runs.items()}
    out["params_hash"] = params.digest()
    print(json.dumps(out, indent=2, ensure_ascii=False))


def _services(args) -> None:
    import signal
    import time
    from pathlib import Path

    from uda import services

    record = services.start(Path("."), args.prefect_port, args.mlflow_port)
    print(f"Prefect UI   {record['prefect_ui']}\nMLflow UI    {record['mlflow']}  (MLflow 3 opens on its GenAI views: "
          "click 'Model training' once, at the top left, and experiments open on their runs)\n"
          f"The pipeline uses them while they run; in another shell you can also\n"
          f"  export PREFECT_API_URL={record['prefect_api']} MLFLOW_TRACKING_URI={record['mlflow']}\n"
          "Ctrl-C stops both.", flush=True)
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        services.stop(Path("."))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="uda", description=__doc__)
    parser.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("domains", help="list the known domains").set_defaults(func=_domains)
    p = sub.add_parser("download", help="download and verify one domain's raw files (mirror first)")
    p.add_argument("domain")
    p.set_defaults(func=_download)
    p = sub.add_parser("preprocess", help="decode one domain at an experiment's recipe")
    p.add_argument("domain")
    p.add_argument("--experiment", help="whose recipe to use (default: params.yaml's experiment)")
    p.set_defaults(func=_preprocess)
    sub.add_parser("config", help="show the resolved config and each method's run spec").set_defaults(func=_config)
    p = sub.add_parser("services", help="run a Prefect server and an MLflow server on 127.0.0.1 (Ctrl-C stops)")
    p.add_argument("--prefect-port", type=int, default=4200)
    p.add_argument("--mlflow-port", type=int, default=5000)
    p.set_defaults(func=_services)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except (ConfigError, DataError, KeyError) as e:
        print(f"error: {e.args[0] if isinstance(e, KeyError) else e}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
