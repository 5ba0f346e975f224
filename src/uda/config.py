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


class OptimizerConfig(Frozen):
    name: Literal["sgd", "adam", "rmsprop"] = "sgd"
    lr: Annotated[float, Field(gt=0)] = 0.01
    momentum: Annotated[float, Field(ge=0, lt=1)] = 0.9  # SGD and RMSprop
    betas: tuple[Annotated[float, Field(ge=0, lt=1)], Annotated[float, Field(ge=0, lt=1)]] = (0.9, 0.999)
    weight_decay: Annotated[float, Field(ge=0)] = 0.0


class ScheduleConfig(Frozen):
    """dann: µ0/(1+α·p)^β; step: ×γ every step_size steps (StepLR); constant."""

    name: Literal["dann", "step", "constant"] = "dann"
    alpha: Annotated[float, Field(ge=0)] = 10.0
    beta: Annotated[float, Field(ge=0)] = 0.75
    step_size: Annotated[int, Field(gt=0)] = 1000
    gamma: Annotated[float, Field(gt=0)] = 0.1


class NetworkConfig(Frozen):
    name: Literal["lenet", "dann_mnist", "dann_svhn", "alexnet", "resnet18", "resnet50"] = "lenet"
    init: Literal["default", "xavier"] = "default"
    pretrained: str = Field("none", description="'none', 'imagenet' (torchvision weights) or a state_dict path")
    domain_head_from_classifier: bool = Field(True, description="alexnet: D starts from the classifier's FC6/FC7")


class TrainConfig(Frozen):
    seed: int = 0
    steps: Annotated[int, Field(gt=0)] | None = 2000
    epochs: Annotated[float, Field(gt=0)] | None = Field(
        None, description="instead of steps: passes over the source train split (steps = epochs·n_s/batch)")
    batch_size: Annotated[int, Field(gt=0)] = 64  # per domain: a DANN step sees batch_size + batch_size
    device: Literal["auto", "cpu", "cuda", "mps"] = "auto"
    threads: Annotated[int, Field(gt=0)] | None = None
    amp: bool = True  # automatic mixed precision, on CUDA only
    normalize: Literal["per_domain", "imagenet", "half"] = "per_domain"
    network: NetworkConfig = NetworkConfig()
    optimizer: OptimizerConfig = OptimizerConfig()
    schedule: ScheduleConfig = ScheduleConfig()
    select: Literal["last", "best_source_val"] = "last"  # never chosen with target labels
    log_every: Annotated[int, Field(gt=0)] = 50
    eval_every: Annotated[int, Field(gt=0)] = 500
    checkpoint_every: Annotated[int, Field(gt=0)] = 500
    eval_batch_size: Annotated[int, Field(gt=0)] = 1000
    monitor_target: bool = True  # log target accuracy, under monitor/ only
    snapshots: bool = True  # keep F and C at every evaluation, for the unsupervised validator to choose among

    @model_validator(mode="after")
    def _one_budget(self):
        if (self.steps is None) == (self.epochs is None):
            raise ValueError("set exactly one of steps and epochs (the other null)")
        return self


class MethodConfig(Frozen):
    train: dict = Field(default_factory=dict, description="this method's overrides of the train section (e.g. "
                        "a GAN's own step budget); an experiment's train block still wins")


class SourceOnlyConfig(MethodConfig):
    pass


class DannConfig(MethodConfig):
    """Ganin & Lempitsky (2015): L = L_y + w·L_d with a gradient reversal of strength λ_p before D."""

    domain_weight: Annotated[float, Field(ge=0)] = 1.0
    gamma: Annotated[float, Field(ge=0)] = 10.0  # λ_p = 2/(1+exp(−γp)) − 1
    bn: Literal["shared", "per_domain"] = Field(
        "per_domain", description="shared: one forward of [x_s; x_t]; per_domain: separate forwards")


class GtaConfig(MethodConfig):
    """Generate to Adapt (Sankaranarayanan et al., CVPR 2018) with the authors' settings. It owns its four
    Adam optimisers, so train.optimizer and train.schedule do not apply to it."""

    lr: Annotated[float, Field(gt=0)] = 5e-4
    beta1: Annotated[float, Field(ge=0, lt=1)] = 0.8
    lr_decay: Annotated[float, Field(ge=0)] = 1e-4  # lr0 / (1 + lr_decay·iteration) for D, F and C
    adv_weight: Annotated[float, Field(ge=0)] = 0.1  # F: weight of D's class loss on generated source
    alpha: Annotated[float, Field(ge=0)] = 0.3  # F: adv_weight·alpha weighs D's real loss on generated target
    embedder: Literal["dig1", "dig2"] = "dig1"  # F/C: the authors' DigF1/DigC1, or the stand-in DigF2/DigC2
    # 1: the paper's AC-GAN D; 2: a source D (classes + "fake", one loss) and a target D (real/fake)
    discriminators: Literal[1, 2] = 1
    nz: Annotated[int, Field(gt=0)] = 512
    ndf: Annotated[int, Field(gt=0)] = 64
    ngf: Annotated[int, Field(gt=0)] = 64
    # Collapse guard: stop when D's loss stays below collapse_d_loss while G's exceeds collapse_g_loss
    # for collapse_steps consecutive iterations.
    collapse_steps: Annotated[int, Field(gt=0)] = 500
    collapse_d_loss: Annotated[float, Field(gt=0)] = 0.01
    collapse_g_loss: Annotated[float, Field(gt=0)] = 10.0


class MethodsConfig(Frozen):
    source_only: SourceOnlyConfig = SourceOnlyConfig()
    dann: DannConfig = DannConfig()
    gta: GtaConfig = GtaConfig()


METHOD_NAMES = ("source_only", "dann", "gta")


class PipelineConfig(Frozen):
    methods: Annotated[list[Literal[METHOD_NAMES]], Field(min_length=1)] = list(METHOD_NAMES)

    @model_validator(mode="after")
    def _unique(self):
        if len(set(self.methods)) != len(self.methods):
            raise ValueError(f"methods must not repeat (got {self.methods})")
        return self


class EvaluateConfig(Frozen):
    """Domain-gap measures and the unsupervised validator work on seeded samples of features."""

    features_per_domain: Annotated[int, Field(gt=10)] = 2000
    seed: int = 0
    svm_c: tuple[Annotated[float, Field(gt=0)], ...] = (0.001, 0.01, 0.1, 1.0)  # PAD's linear SVM: C by 3-fold CV


class TsneConfig(Frozen):
    per_domain: Annotated[int, Field(gt=10)] = 1000  # source and target test images embedded per method
    perplexity: Annotated[float, Field(gt=1)] = 30.0
    seed: int = 0


class Experiment(Frozen):
    source: str
    target: str
    recipe: Recipe = Recipe()
    description: str = ""
    train: dict = Field(default_factory=dict, description="overrides of the top-level train section")

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


def _merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


class Params(Frozen):
    experiment: str
    data: DataConfig = DataConfig()
    train: dict = Field(default_factory=dict)
    methods: MethodsConfig = MethodsConfig()
    pipeline: PipelineConfig = PipelineConfig()
    evaluate: EvaluateConfig = EvaluateConfig()
    tsne: TsneConfig = TsneConfig()
    experiments: dict[str, Experiment]

    @model_validator(mode="after")
    def _experiment_declared(self):
        if self.experiment not in self.experiments:
            raise ValueError(f"experiment {self.experiment!r} is not declared under experiments "
                             f"(declared: {', '.join(self.experiments)})")
        # Every experiment's merged train settings are checked now, before any work.
        checks = {"train": self.train} | {f"experiments.{n}.train": _merge(self.train, e.train)
                                          for n, e in self.experiments.items()}
        checks |= {f"methods.{m}.train": _merge(self.train, getattr(self.methods, m).train)
                   for m in type(self.methods).model_fields}
        for prefix, raw in checks.items():
            try:
                TrainConfig.model_validate(raw)
            except ValidationError as e:
                raise _NestedError(_describe(e, "", prefix)) from None
        return self

    @property
    def exp(self) -> Experiment:
        return self.experiments[self.experiment]

    @property
    def train_config(self) -> TrainConfig:
        """The top-level train section with the chosen experiment's overrides merged in."""
        return TrainConfig.model_validate(_merge(self.train, self.exp.train))

    def train_for(self, method: str) -> TrainConfig:
        """What `method` trains with: train, then methods.<method>.train, then the experiment's train block."""
        return TrainConfig.model_validate(_merge(_merge(self.train, getattr(self.methods, method).train),
                                                 self.exp.train))

    def digest(self) -> str:
        """Short hash of the resolved config: equal hashes mean equal settings."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True)
        return hashlib.sha256(canonical.encode()).hexdigest()[:12]


class _NestedError(Exception):
    """Raised inside validators; not a ValueError, so pydantic passes it through unchanged."""


def _describe(e: ValidationError, source: str, prefix: str = "") -> str:
    lines = []
    for err in e.errors():
        key = ".".join([prefix] * bool(prefix) + [str(p) for p in err["loc"]]) or "(top level)"
        msg = "unknown key (not allowed here)" if err["type"] == "extra_forbidden" else err["msg"]
        got = "" if err["type"] in ("missing", "extra_forbidden") else f" (got {err['input']!r})"
        lines.append(f"  {key}: {msg}{got}")
    return f"{source}: invalid config\n" * bool(source) + "\n".join(lines)


def parse_params(raw: dict, source: str = "params") -> Params:
    try:
        return Params.model_validate(raw)
    except ValidationError as e:
        raise ConfigError(_describe(e, source)) from None
    except _NestedError as e:
        raise ConfigError(f"{source}: invalid config\n{e}") from None


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
