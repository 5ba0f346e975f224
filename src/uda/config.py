"""params.yaml as frozen, typed config.

Loaded once per process, validated before any work: an unknown key or a bad value raises `ConfigError`
naming the key path (e.g. `experiments.mnist_usps.recipe.channels`) and what is allowed.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from uda.datasets import DOMAINS


class ConfigError(ValueError):
    pass


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Recipe(Frozen):
    """How both domains of an experiment are stored: size, optional resize-then-centre-crop, channels."""

    image_size: Annotated[int, Field(gt=0, le=1024)] = 32
    resize: Annotated[int, Field(gt=0, le=2048)] | None = Field(
        None, description="resize the shorter side to this, then centre-crop image_size (PACS: 256 → 224)"
    )
    channels: Literal[1, 3] = 3

    @model_validator(mode="after")
    def _crop_fits(self):
        if self.resize is not None and self.resize < self.image_size:
            raise ValueError(f"resize ({self.resize}) must be at least image_size ({self.image_size})")
        return self


class Experiment(Frozen):
    source: str
    target: str
    recipe: Recipe = Recipe()
    description: str = ""

    @field_validator("source", "target")
    @classmethod
    def _known_domain(cls, v: str) -> str:
        if v not in DOMAINS:
            raise ValueError(f"unknown domain {v!r}; known: {', '.join(sorted(DOMAINS))}")
        return v

    @property
    def domains(self) -> tuple[str, ...]:
        return (self.source, self.target)


class DataConfig(Frozen):
    root: str = "data"
    mirror: str | None = Field(None, description="folder laid out like shared/datasets; UDA_DATA_MIRROR wins")
    val_fraction: Annotated[float, Field(gt=0, lt=1)] = 0.1
    split_seed: int = 0
    max_per_split: Annotated[int, Field(gt=0)] | None = Field(
        None, description="keep a seeded random subset of at most this many samples per split (smoke runs)"
    )

    @property
    def raw_dir(self) -> Path:
        return Path(self.root) / "raw"

    @property
    def processed_dir(self) -> Path:
        return Path(self.root) / "processed"


class Params(Frozen):
    experiment: str
    data: DataConfig = DataConfig()
    experiments: dict[str, Experiment]

    @model_validator(mode="after")
    def _experiment_declared(self):
        if self.experiment not in self.experiments:
            raise ValueError(f"experiment {self.experiment!r} is not declared under experiments "
                             f"(declared: {', '.join(self.experiments)})")
        return self

    @property
    def exp(self) -> Experiment:
        return self.experiments[self.experiment]

    def digest(self) -> str:
        """Short hash of the resolved config: equal hashes mean equal settings."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True)
        return hashlib.sha256(canonical.encode()).hexdigest()[:12]


def _describe(e: ValidationError, source: str) -> str:
    lines = []
    for err in e.errors():
        key = ".".join(str(p) for p in err["loc"]) or "(top level)"
        msg = "unknown key (not allowed here)" if err["type"] == "extra_forbidden" else err["msg"]
        got = "" if err["type"] in ("missing", "extra_forbidden") else f" (got {err['input']!r})"
        lines.append(f"  {key}: {msg}{got}")
    return f"{source}: invalid config\n" + "\n".join(lines)


def parse_params(raw: dict, source: str = "params") -> Params:
    try:
        return Params.model_validate(raw)
    except ValidationError as e:
        raise ConfigError(_describe(e, source)) from None


def load_params(path: str | Path = "params.yaml") -> Params:
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: not found; run from the project root or pass --params") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML ({e})") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of keys at the top level")
    return parse_params(raw, str(path))
