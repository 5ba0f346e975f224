"""Method registry: every module here that defines `METHOD` is registered under `METHOD.name`."""

from __future__ import annotations

import importlib
import pkgutil

from uda.methods.base import Batch, Method

METHODS: dict[str, type[Method]] = {}
for _m in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
    _cls = getattr(importlib.import_module(f"{__name__}.{_m.name}"), "METHOD", None)
    if _cls is not None:
        METHODS[_cls.name] = _cls

__all__ = ["METHODS", "Batch", "Method"]
