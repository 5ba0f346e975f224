"""Method registry: every module here that defines `METHOD` is registered under `METHOD.name`, which must
be the module's name. `METHOD.Config` is the schema of its `methods.<name>` block in params.yaml."""

from __future__ import annotations

from uda.methods.base import Batch, Method
from uda.registry import collect

METHODS: dict[str, type[Method]] = collect(__name__, __path__, "METHOD", lambda cls: cls.name)

__all__ = ["METHODS", "Batch", "Method"]
