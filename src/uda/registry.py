"""One registry for the packages of plug-ins (methods, validators): each module that defines the named
attribute is registered under its own name, which the attribute must carry."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable


def collect(package: str, path: list[str], attr: str, name_of: Callable[[object], str],
            skip: tuple[str, ...] = ()) -> dict:
    found = {}
    for m in sorted(pkgutil.iter_modules(path), key=lambda m: m.name):
        if m.name in skip:
            continue
        obj = getattr(importlib.import_module(f"{package}.{m.name}"), attr, None)
        if obj is not None:
            if name_of(obj) != m.name:
                kind = package.rsplit(".", 1)[-1]
                raise ImportError(f"uda/{kind}/{m.name}.py defines {attr} named {name_of(obj)!r}: one file per "
                                  "entry, named after it")
            found[m.name] = obj
    return found
