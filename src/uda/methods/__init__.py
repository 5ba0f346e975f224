"""Method registry: every module here that defines `METHOD` is registered under `METHOD.name`, which must
be the module's name. `METHOD.Config` is the schema of its `methods.<name>` block in params.yaml."""

from __future__ import annotations

import importlib
import pkgutil

from uda.methods.base import Batch, Method

METHODS: dict[str, type[Method]] = {}
for _m in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
    _cls = getattr(importlib.import_module(f"{__name__}.{_m.name}"), "METHOD", None)
    if _cls is not None:
        if _cls.name != _m.name:
            raise ImportError(f"uda/methods/{_m.name}.py defines METHOD named {_cls.name!r}: one file per method, "
                              "named after it")
        METHODS[_cls.name] = _cls

__all__ = ["METHODS", "Batch", "Method"]
