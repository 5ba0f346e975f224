"""The run spec: everything one training run needs, resolved once when params are loaded.

`load(path)` validates params.yaml (uda.config), types each `methods.<name>` block with the `Config` class
its method file declares (the schema of `methods:` is the method registry's, so adding a method needs no
edit here), merges train settings three ways (train → methods.<name>.train → the experiment's train block)
and returns one frozen `RunSpec` per registered method. Training, evaluation and t-SNE receive a spec and
never re-derive its settings.
"""

from __future__ import annotations

import hashlib
import json
import pkgutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from pydantic import ValidationError

from uda.config import (
    ConfigError,
    DataConfig,
    Experiment,
    MethodConfig,
    Params,
    TrainConfig,
    _describe,
    _NestedError,
    load_params,
    parse_params,
    resolve_train,
)
from uda.datasets import DatasetSpec
from uda.methods import METHODS

PACKAGE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class RunSpec:
    """One method's run of the chosen experiment: its merged train settings, its own settings, its key."""

    experiment: str
    exp: Experiment
    data: DataConfig
    method: str
    train: TrainConfig
    config: MethodConfig  # the method's `methods.<name>` block, as its own Config class
    key: str  # experiment/method-seed-digest: same key, same run, so resuming its checkpoint is sound
    params_hash: str  # of the whole params file, as tracking tags record it
    datasets: Mapping[str, DatasetSpec]  # of the experiment's source and target domains (Params.dataset)

    def digest(self) -> str:
        return self.params_hash

    @property
    def classes(self) -> tuple[str, ...]:
        return tuple(self.datasets[self.exp.source].classes)

    def logged_params(self) -> dict:
        """What a tracking run records about this run."""
        return {"experiment": self.experiment, "method": self.method,
                **self.exp.model_dump(exclude={"train", "description"}), "train": self.train.model_dump(),
                self.method: self.config.model_dump()}


@dataclass(frozen=True)
class Resolved:
    """Loaded params and the run spec of every registered method for the chosen experiment."""

    params: Params
    runs: Mapping[str, RunSpec]

    def run(self, method: str) -> RunSpec:
        if method not in self.runs:
            raise ConfigError(f"unknown method {method!r}; registered: {', '.join(sorted(self.runs))}")
        return self.runs[method]


def code_digest() -> str:
    """Hash of the uda package's source: a checkpoint made by other code is not resumed (DVC re-runs a
    finished stage when its code changed, and that must retrain, not return the old result)."""
    h = hashlib.sha256()
    for path in sorted(PACKAGE.rglob("*.py")):
        h.update(path.relative_to(PACKAGE).as_posix().encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def run_key(experiment: str, exp: Experiment, data: DataConfig, method: str, train: TrainConfig,
            config: MethodConfig, code: str) -> str:
    relevant = {"exp": exp.model_dump(mode="json", exclude={"description"}),
                "data": data.model_dump(mode="json", exclude={"mirror"}), "train": train.model_dump(mode="json"),
                "method": config.model_dump(mode="json"), "name": method, "code": code}
    digest = hashlib.sha256(json.dumps(relevant, sort_keys=True).encode()).hexdigest()[:10]
    return f"{experiment}/{method}-seed{train.seed}-{digest}"


def method_config(params: Params, name: str) -> MethodConfig:
    """`methods.<name>` as the method's Config (its defaults where the block is absent or empty)."""
    try:
        return METHODS[name].Config.model_validate(params.methods.get(name) or {})
    except ValidationError as e:
        raise _NestedError(_describe(e, "", f"methods.{name}")) from None


def validator_names() -> set[str]:
    """The registered validators' names, read from uda/validators' files without importing them: a stage
    that only checks the name (every stage validates all params) must not depend on the validators' code."""
    return {m.name for m in pkgutil.iter_modules([str(PACKAGE / "validators")]) if m.name != "base"}


def _check_names(params: Params) -> None:
    known = ", ".join(sorted(METHODS))
    for i, name in enumerate(params.pipeline.methods):
        if name not in METHODS:
            raise _NestedError(f"  pipeline.methods.{i}: unknown method {name!r} (registered: {known})")
    for name in params.methods:
        if name not in METHODS:
            raise _NestedError(f"  methods.{name}: unknown method (registered: {known})")
    validators = validator_names()
    if params.evaluate.validator not in (*validators, "last"):
        raise _NestedError(f"  evaluate.validator: unknown validator {params.evaluate.validator!r} (registered: "
                           f"{', '.join(sorted(validators))}, or last)")
    for start, name in params.pipeline.refine.items():
        if name not in METHODS:
            raise _NestedError(f"  pipeline.refine.{start}: unknown method {name!r} (registered: {known})")
        if METHODS[name].starts_from != start:
            raise _NestedError(f"  pipeline.refine.{start}: {name} starts from "
                               f"{METHODS[name].starts_from or 'nothing (it trains from scratch)'}, not {start}")
    size = params.exp.recipe.image_size
    for name in params.pipeline.all_methods:  # before any work, not after the other methods have trained
        sizes = METHODS[name].image_sizes
        if sizes is not None and size not in sizes:
            rest = ",".join(m for m in params.pipeline.methods if m != name)
            raise _NestedError(f"  pipeline.methods: {name}'s networks take {' or '.join(f'{s}×{s}' for s in sizes)} "
                               f"input, and experiment {params.experiment} stores {size}×{size} images; leave it out "
                               f"(e.g. -S 'pipeline.methods=[{rest}]')")
    for i, name in enumerate(params.pipeline.methods):
        if METHODS[name].starts_from is not None:
            raise _NestedError(f"  pipeline.methods.{i}: {name} starts from {METHODS[name].starts_from}'s model; "
                               f"list it under pipeline.refine ({{{METHODS[name].starts_from}: {name}}})")


def check_same_classes(experiment: str, source: DatasetSpec, target: DatasetSpec) -> None:
    """A classifier trained on the source's classes is evaluated on the target's: they must be the same list."""
    if source.classes == target.classes:
        return
    only_s = sorted(set(source.classes) - set(target.classes))
    only_t = sorted(set(target.classes) - set(source.classes))
    detail = (f"only in {source.name}: {only_s or 'none'}; only in {target.name}: {only_t or 'none'}"
              if only_s or only_t else f"same names in another order: {list(source.classes)} vs {list(target.classes)}")
    raise ConfigError(f"experiments.{experiment}: source and target classes differ ({detail})")


def resolve(params: Params, source: str = "params") -> Resolved:
    """Every registered method's spec for the chosen experiment; every experiment's merges are checked too."""
    try:
        _check_names(params)
        configs = {name: method_config(params, name) for name in METHODS}
        for experiment in params.experiments:  # a bad per-method override fails now, whichever experiment
            for name in METHODS:
                resolve_train(params, name, experiment)
    except _NestedError as e:
        raise ConfigError(f"{source}: invalid config\n{e}") from None
    datasets = MappingProxyType({d: params.dataset(d) for d in params.exp.domains})
    check_same_classes(params.experiment, *(datasets[d] for d in params.exp.domains))
    code = code_digest()
    runs = {}
    for name, config in configs.items():
        train = resolve_train(params, name)
        if train.ema is None:  # the method's own choice, made explicit so that it is logged and keyed
            train = train.model_copy(update={"ema": METHODS[name].ema_default})
        key = run_key(params.experiment, params.exp, params.data, name, train, config, code)
        runs[name] = RunSpec(params.experiment, params.exp, params.data, name, train, config, key, params.digest(),
                             datasets)
    return Resolved(params, MappingProxyType(runs))


def load(path: str | Path = "params.yaml") -> Resolved:
    return resolve(load_params(path), str(path))


def parse(raw: dict, source: str = "params") -> Resolved:
    return resolve(parse_params(raw, source), source)
