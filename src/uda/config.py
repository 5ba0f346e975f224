"""params.yaml as frozen, typed config.

Loaded once per process, validated before any work: an unknown key or a bad value raises `ConfigError`
naming the key path (e.g. `experiments.mnist_usps.recipe.channels`) and what is allowed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, Strict, ValidationError, model_validator

from uda.datasets import DOMAINS, DatasetSpec, dataset_of
from uda.datasets.folder import FolderDomain, folder_dataset

Int = Annotated[int, Strict()]  # a bool or a numeric string is refused, not coerced
Count = Annotated[int, Strict(), Field(gt=0)]
Flag = Annotated[bool, Strict()]


class ConfigError(ValueError):
    pass


class Frozen(BaseModel):
    """Frozen, no unknown keys. Counts and switches are strict (`Strict()`): `steps: true` or `steps: "60"`
    is an error, not 1 or 60; floats stay lax, as YAML 1.1 reads `1e-3` as a string."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class Recipe(Frozen):
    """How both domains of an experiment are stored: size, optional resize-then-centre-crop, channels."""

    image_size: Annotated[int, Strict(), Field(gt=0, le=1024)] = 32
    resize: Annotated[int, Strict(), Field(gt=0, le=2048)] | None = Field(
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
    nesterov: Flag = False  # SGD (tllib's recipes use it)


class ScheduleConfig(Frozen):
    """dann: µ0/(1+α·p)^β; step: ×γ every step_size steps (StepLR); constant."""

    name: Literal["dann", "step", "constant"] = "dann"
    alpha: Annotated[float, Field(ge=0)] = 10.0
    beta: Annotated[float, Field(ge=0)] = 0.75
    step_size: Count = 1000
    gamma: Annotated[float, Field(gt=0)] = 0.1


class NetworkConfig(Frozen):
    name: Literal["lenet", "lenet_tllib", "dtn", "dann_mnist", "dann_svhn", "dirtt_small", "dirtt_large", "alexnet",
                  "resnet18", "resnet50"] = "lenet"
    instance_norm: Flag = Field(False, description="normalise each input image per channel first (DIRT-T's "
                                "--inorm, which its VAT radius of 3.5 assumes)")
    init: Literal["default", "xavier"] = "default"
    pretrained: str = Field("none", description="'none', 'imagenet' (torchvision weights) or a state_dict path")
    domain_head_from_classifier: Flag = Field(True, description="alexnet: D starts from the classifier's FC6/FC7")
    bottleneck: Annotated[int, Field(ge=0)] = Field(
        0, description="width of a Linear → BN → ReLU after F, with C one linear layer on it (tllib's "
        "ImageClassifier, 256 in its recipes); 0: none. Needs discriminator: tllib")
    discriminator: Literal["network", "tllib"] = Field(
        "network", description="D: the network's own domain head, or tllib's (two hidden layers of 1024 with "
        "batch norm) on F's features")

    @model_validator(mode="after")
    def _bottleneck_needs_its_discriminator(self):
        if self.bottleneck and self.discriminator != "tllib":
            raise ValueError("bottleneck > 0 needs discriminator: tllib (the network's own D takes F's features "
                             "before the bottleneck)")
        return self


class AugmentConfig(Frozen):
    """Random per-image augmentation on the device, in pixel units (intensities in [0, 1], before the
    normalisation): French et al., ICLR 2018, §4 and their code's defaults for digits are translate 2,
    affine_std 0.1, noise_std 0.1; MNIST↔SVHN adds intensity flip, scale [0.25, 1.5], offset [−0.5, 0.5].
    All zero (off) by default, so that methods that do not ask for it train as before."""

    translate: Annotated[float, Field(ge=0)] = 0.0  # pixels: a shift uniform in [−t, t] along each axis
    affine_std: Annotated[float, Field(ge=0)] = 0.0  # N(0, σ) added to each entry of the 2×2 linear part
    noise_std: Annotated[float, Field(ge=0)] = 0.0  # additive Gaussian noise
    intensity_flip: Flag = False  # x → 1 − x for half of the images
    intensity_scale: tuple[float, float] | None = None  # x ← 0.5 + (x − 0.5)·U(lo, hi)
    intensity_offset: tuple[float, float] | None = None  # x ← x + U(lo, hi)

    @property
    def enabled(self) -> bool:
        return bool(self.translate or self.affine_std or self.noise_std or self.intensity_flip
                    or self.intensity_scale or self.intensity_offset)


class TrainConfig(Frozen):
    seed: Int = 0
    steps: Count | None = 2000
    epochs: Annotated[float, Field(gt=0)] | None = Field(
        None, description="instead of steps: passes over the source train split (steps = epochs·n_s/batch)")
    batch_size: Count = 64  # per domain: a DANN step sees batch_size + batch_size
    device: Literal["auto", "cpu", "cuda", "mps"] = "auto"
    threads: Count | None = None
    amp: Flag = True  # automatic mixed precision, on CUDA only
    normalize: Literal["per_domain", "imagenet", "half"] = "per_domain"
    network: NetworkConfig = NetworkConfig()
    optimizer: OptimizerConfig = OptimizerConfig()
    schedule: ScheduleConfig = ScheduleConfig()
    select: Literal["last", "best_source_val"] = "last"  # never chosen with target labels
    log_every: Count = 50
    eval_every: Count = 500
    checkpoint_every: Count = 500
    eval_batch_size: Count = 1000
    monitor_target: Flag = True  # log target accuracy, under monitor/ only
    snapshots: Flag = True  # keep F and C at every evaluation, for the unsupervised validator to choose among
    augment: AugmentConfig = AugmentConfig()  # of x_s and x_t before each step (self-ensembling: its two views)
    ema: Annotated[float, Field(ge=0, lt=1)] | None = Field(
        None, description="decay of an exponential moving average of F and C that evaluation, snapshots and "
        "the exported model use; null: the method's own choice (VADA, DIRT-T: 0.998, as the authors' code; "
        "the others: off); 0: off")

    @model_validator(mode="after")
    def _one_budget(self):
        if (self.steps is None) == (self.epochs is None):
            raise ValueError("set exactly one of steps and epochs (the other null)")
        return self


class MethodConfig(Frozen):
    """The base of every method's settings (`methods.<name>`); each method file defines its subclass."""

    train: dict = Field(default_factory=dict, description="this method's overrides of the train section (e.g. "
                        "a GAN's own step budget); an experiment's train block still wins")


class PipelineConfig(Frozen):
    methods: Annotated[list[str], Field(min_length=1)]  # registered names, checked by uda.runs
    refine: dict[str, str] = Field(default_factory=dict, description="start → method that starts from the "
                                   "start's trained model (e.g. vada: dirt_t); DVC orders the two stages")

    @model_validator(mode="after")
    def _unique(self):
        if len(set(self.methods)) != len(self.methods):
            raise ValueError(f"methods must not repeat (got {self.methods})")
        for start, method in self.refine.items():
            if start not in self.methods:
                raise ValueError(f"refine.{start}: {method} starts from {start}'s model, so {start} must be in "
                                 f"methods (got {self.methods})")
            if method in self.methods:
                raise ValueError(f"refine.{start}: {method} is trained by its refine stage; remove it from methods")
        return self

    @property
    def all_methods(self) -> list[str]:
        """Every method evaluated and reported: those trained from scratch, then the refined ones."""
        return [*self.methods, *self.refine.values()]


class EvaluateConfig(Frozen):
    """Domain-gap measures and the unsupervised validator work on seeded samples of features."""

    features_per_domain: Annotated[int, Strict(), Field(gt=10)] = 2000
    seed: Int = 0
    svm_c: tuple[Annotated[float, Field(gt=0)], ...] = (0.001, 0.01, 0.1, 1.0)  # PAD's linear SVM: C by 3-fold CV
    validator: str = Field("bnm", description="the label-free validator (uda.validators) whose pick among the "
                           "snapshots is the model evaluated and reported; 'last': the last snapshot")


class TsneConfig(Frozen):
    per_domain: Annotated[int, Strict(), Field(gt=10)] = 1000  # source and target test images embedded per method
    perplexity: Annotated[float, Field(gt=1)] = 30.0
    seed: Int = 0


class Experiment(Frozen):
    source: str
    target: str
    recipe: Recipe
    description: str = Field(description="one line the report opens with (required: the report stage's DVC "
                             "params name it)")
    train: dict = Field(description="overrides of the top-level train section ({} for none)")

    @property
    def domains(self) -> tuple[str, ...]:
        return (self.source, self.target)


class DataConfig(Frozen):
    root: str = "data"
    mirror: str | None = Field(None, description="folder laid out like shared/datasets; UDA_DATA_MIRROR wins")
    val_fraction: Annotated[float, Field(gt=0, lt=1)] = 0.1
    split_seed: Int = 0
    max_per_split: Count | None = Field(
        None, description="keep a seeded random subset of at most this many samples per split (smoke runs)"
    )

    @property
    def raw_dir(self) -> Path:
        return Path(self.root) / "raw"

    @property
    def processed_dir(self) -> Path:
        return Path(self.root) / "processed"


def merge(base: dict, over: dict) -> dict:
    """`over` on top of `base`, recursively for nested mappings."""
    out = dict(base)
    for k, v in over.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def method_train(block: dict | None) -> dict:
    """A raw `methods.<name>` block's own train overrides."""
    train = (block or {}).get("train", {})
    return train if isinstance(train, dict) else {}  # a non-mapping is reported by the method's own schema


def train_layers(params: Params, method: str, experiment: str) -> dict[str, dict]:
    """The three layers a run's train settings merge from, lowest first, by their key path."""
    return {"train": params.train, f"methods.{method}.train": method_train(params.methods.get(method)),
            f"experiments.{experiment}.train": params.experiments[experiment].train}


def resolve_train(params: Params, method: str, experiment: str | None = None) -> TrainConfig:
    """train, then methods.<method>.train, then the experiment's train block: validated as merged, and an
    error names the layer that set the offending key."""
    layers = train_layers(params, method, experiment or params.experiment)
    merged: dict = {}
    for layer in layers.values():
        merged = merge(merged, layer)
    try:
        return TrainConfig.model_validate(merged)
    except ValidationError as e:
        raise _NestedError(_describe(e, "", lambda loc: _layer_of(layers, loc))) from None


def _layer_of(layers: dict[str, dict], loc: tuple) -> str:
    """The highest layer that spells out the key at `loc` (the first layer when none does)."""
    if not loc:  # a check of the merged whole (e.g. exactly one of steps and epochs): name every layer
        return " + ".join(layers)
    for prefix, layer in reversed(layers.items()):
        node = layer
        for part in loc:
            if not isinstance(node, dict) or part not in node:
                break
            node = node[part]
        else:
            return prefix
    return next(iter(layers))


class Params(Frozen):
    """Every block of params.yaml is required: a missing one is an error, not silently defaulted."""

    experiment: str
    data: DataConfig
    train: dict
    methods: dict[str, dict | None] = Field(description="each method's settings, typed by uda.runs")
    pipeline: PipelineConfig
    evaluate: EvaluateConfig
    tsne: TsneConfig
    experiments: dict[str, Experiment]
    domains: dict[Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]*$")], FolderDomain] = Field(
        default_factory=dict, description="domains of one's own, in class folders (uda.datasets.folder)")

    @model_validator(mode="after")
    def _experiment_declared(self):
        for name in self.domains:
            if name in DOMAINS:
                raise _NestedError(f"  domains.{name}: a built-in domain has this name; choose another")
        for name, exp in self.experiments.items():
            for role in ("source", "target"):
                if getattr(exp, role) not in DOMAINS and getattr(exp, role) not in self.domains:
                    raise _NestedError(f"  experiments.{name}.{role}: unknown domain {getattr(exp, role)!r}; known: "
                                       f"{', '.join(sorted(DOMAINS))}, or one declared under domains:")
        if self.experiment not in self.experiments:
            raise ValueError(f"experiment {self.experiment!r} is not declared under experiments "
                             f"(declared: {', '.join(self.experiments)})")
        # Every experiment × method merge of train settings is checked now, before any work.
        for name in self.experiments:
            for method in sorted(set(self.methods) | set(self.pipeline.all_methods)):
                resolve_train(self, method, name)
        return self

    @property
    def exp(self) -> Experiment:
        return self.experiments[self.experiment]

    def dataset(self, domain: str) -> DatasetSpec:
        """A built-in domain's dataset, or a declared folder domain's (whose classes are read from its folder)."""
        return folder_dataset(domain, self.domains[domain]) if domain in self.domains else dataset_of(domain)

    def digest(self) -> str:
        """Short hash of the resolved config: equal hashes mean equal settings."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True)
        return hashlib.sha256(canonical.encode()).hexdigest()[:12]


class _NestedError(Exception):
    """Raised inside validators; not a ValueError, so pydantic passes it through unchanged."""


def _describe(e: ValidationError, source: str, prefix: str | Callable[[tuple], str] = "") -> str:
    """One line per error: the full key path, what is wrong, what was given. `prefix` is the path of the
    validated block (or a function of the error's location that returns it)."""
    lines = []
    for err in e.errors():
        head = prefix(err["loc"]) if callable(prefix) else prefix
        key = ".".join([head] * bool(head) + [str(p) for p in err["loc"]]) or "(top level)"
        msg = "unknown key (not allowed here)" if err["type"] == "extra_forbidden" else err["msg"]
        whole = not err["loc"]  # the input is the whole block: too long to repeat
        got = "" if whole or err["type"] in ("missing", "extra_forbidden") else f" (got {err['input']!r})"
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
