"""Dataset registry: every module in this package that defines `DATASET` is registered.

Adding a dataset means adding one file here; its domains become usable in params.yaml.
"""

from __future__ import annotations

import importlib
import pkgutil

from uda.datasets.base import DatasetSpec, Decoded, RawFile

DATASETS: dict[str, DatasetSpec] = {}
for _m in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
    _spec = getattr(importlib.import_module(f"{__name__}.{_m.name}"), "DATASET", None)
    if _spec is not None:
        DATASETS[_spec.name] = _spec

DOMAINS: dict[str, DatasetSpec] = {d: ds for ds in DATASETS.values() for d in ds.domains}


def dataset_of(domain: str) -> DatasetSpec:
    try:
        return DOMAINS[domain]
    except KeyError:
        raise KeyError(f"unknown domain {domain!r}; known domains: {', '.join(sorted(DOMAINS))}") from None


__all__ = ["DATASETS", "DOMAINS", "DatasetSpec", "Decoded", "RawFile", "dataset_of"]
