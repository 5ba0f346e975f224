"""What every method shares: it owns its sub-networks, optimisers and schedulers, and `step` does one
training iteration (however many updates that takes) and returns a dict of detached scalar losses, so one
generic loop (uda.trainer) trains every method without knowing which it is.

A method is one file in this package defining `METHOD` (the class, whose `name` is the file's name) and
its settings as `METHOD.Config`, a subclass of `MethodConfig`: the schema of `methods.<name>` in
params.yaml. Nothing else needs an edit to add one."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, replace
from typing import ClassVar

import torch
from torch import nn

from uda.augment import Augment
from uda.config import MethodConfig, OptimizerConfig, ScheduleConfig, TrainConfig
from uda.ema import WeightEMA
from uda.models import InstanceNorm, build, domain_discriminator, feature_size, with_bottleneck, xavier_init
from uda.optim import make_optimizer, make_scheduler


class TrainingDiverged(RuntimeError):
    """A non-finite loss or a collapse: training stops, the last good checkpoint stays."""


@dataclass
class Batch:
    """One iteration's data, normalised on the device. No target labels: adaptation is unsupervised."""

    x_s: torch.Tensor
    y_s: torch.Tensor
    x_t: torch.Tensor
    # Each domain's normalisation (1×C×1×1), for methods that need pixels back (a GAN's real images).
    mean_s: torch.Tensor | None = None
    std_s: torch.Tensor | None = None
    mean_t: torch.Tensor | None = None
    std_t: torch.Tensor | None = None


class Method:
    name: ClassVar[str]
    Config: ClassVar[type[MethodConfig]] = MethodConfig  # the schema of its methods.<name> block
    uses_target: ClassVar[bool] = True  # whether step() reads batch.x_t
    eval_nets: ClassVar[tuple[str, ...]] = ("F", "C")  # all that predict() and features() use
    ema_default: ClassVar[float] = 0.0  # train.ema when params leave it null (uda.runs resolves it)
    ema_own_buffers: ClassVar[bool] = False  # True: the average runs its own forwards (a mean teacher)
    starts_from: ClassVar[str | None] = None  # a method whose trained model this one starts from
    image_sizes: ClassVar[tuple[int, ...] | None] = None  # the input sizes its own networks take (None: any)

    @classmethod
    def build_nets(cls, cfg, train: TrainConfig, num_classes: int, channels: int,
                   image_size: int) -> dict[str, nn.Module]:
        """The sub-networks this method takes (`cfg` is its methods.<name> section): by default F, C and D
        of `train.network`, with its bottleneck and discriminator."""
        net = train.network
        nets = build(net.name, num_classes, channels, image_size, pretrained=net.pretrained,
                     domain_head_from_classifier=net.domain_head_from_classifier)
        if net.bottleneck:
            nets = with_bottleneck(nets, net.bottleneck, num_classes, channels, image_size)
        elif net.discriminator == "tllib":
            nets.domain_head = domain_discriminator(feature_size(nets.feature_extractor, channels, image_size))
        out = {"F": nets.feature_extractor, "C": nets.classifier, "D": nets.domain_head}
        if net.init == "xavier":
            for m in out.values():
                xavier_init(m)
        if net.instance_norm:
            out["F"] = nn.Sequential(InstanceNorm(), out["F"])
        return out

    def __init__(self, nets: dict[str, nn.Module], train: TrainConfig):
        self.nets = nets
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.schedulers: dict[str, torch.optim.lr_scheduler.LRScheduler] = {}
        self.amp = train.amp
        self.augment = Augment(train.augment, train.seed + 2)  # the samplers use seed and seed + 1
        # The averaged F and C: evaluation, snapshots and the export use them (see `train`).
        self.ema = (WeightEMA({k: nets[k] for k in self.eval_nets}, train.ema, self.ema_own_buffers)
                    if train.ema else None)
        self._live: dict | None = None  # the trained weights while the average stands in for them

    def add_optimizer(self, name: str, nets: list[str], optimizer: OptimizerConfig, schedule: ScheduleConfig,
                      total_steps: int) -> None:
        """One optimiser (and its schedule) over the parameters of the named sub-networks."""
        params = [p for k in nets for p in self.nets[k].parameters()]
        self.optimizers[name] = make_optimizer(params, optimizer)
        self.schedulers[name] = make_scheduler(self.optimizers[name], schedule, total_steps)

    # -- what the loop and the evaluation call ---------------------------------------------------------
    def train_step(self, batch: Batch, progress: float) -> dict[str, torch.Tensor]:
        """What the loop calls: `step` on the augmented batch, then the weight average's update."""
        losses = self.step(self.augmented(batch), progress)
        if self.ema is not None:
            self.ema.update(self.nets)
        return losses

    def augmented(self, batch: Batch) -> Batch:
        """x_s and x_t augmented once each (`train.augment`); a method that draws its own views overrides it."""
        if not self.augment.enabled:
            return batch
        x_t = self.augment(batch.x_t, batch.mean_t, batch.std_t) if len(batch.x_t) else batch.x_t
        return replace(batch, x_s=self.augment(batch.x_s, batch.mean_s, batch.std_s), x_t=x_t)

    def step(self, batch: Batch, progress: float) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.nets["F"](x)

    def classify(self, f: torch.Tensor) -> torch.Tensor:
        """Class logits from features."""
        return self.nets["C"](f)

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits, as used for evaluation."""
        return self.classify(self.features(x))

    def images(self, batch: Batch) -> dict[str, torch.Tensor]:
        """Pictures worth logging at evaluation time (uint8 N×C×H×W), e.g. a GAN's samples; none by default."""
        return {}

    def classifier(self) -> nn.Module:
        """F followed by C as one module (for export)."""
        return nn.Sequential(self.nets["F"], self.nets["C"])

    def train(self, mode: bool = True) -> None:
        """Training or evaluation mode. With a weight average, evaluation mode puts the averaged weights in
        F and C (so every predict() and features() uses them) and training mode puts the live ones back."""
        for net in self.nets.values():
            net.train(mode)
        if self.ema is None:
            return
        if not mode and self._live is None:
            self._live = {k: {p: t.clone() for p, t in self.nets[k].state_dict().items()} for k in self.eval_nets}
            self._load(self.nets, self.ema.state_dict())
        elif mode and self._live is not None:
            self._load(self.nets, self._live)
            self._live = None

    def _load(self, nets: dict[str, nn.Module], state: dict) -> None:
        for k in self.eval_nets:
            nets[k].load_state_dict(state[k])

    def state_dict(self) -> dict:
        if self._live is not None:
            raise RuntimeError("state_dict() in evaluation mode would save the averaged weights as the live ones")
        return {"nets": {k: n.state_dict() for k, n in self.nets.items()},
                "optimizers": {k: o.state_dict() for k, o in self.optimizers.items()},
                "schedulers": {k: s.state_dict() for k, s in self.schedulers.items()},
                "extra": self.extra_state(), "augment": self.augment.state_dict(),
                "ema": self.ema.state_dict() if self.ema else {}}

    def load_state_dict(self, state: dict) -> None:
        for group in ("nets", "optimizers", "schedulers"):
            for k, obj in getattr(self, group).items():
                obj.load_state_dict(state[group][k])
        self.load_extra_state(state.get("extra", {}))
        if "augment" in state:
            self.augment.load_state_dict(state["augment"])
        if self.ema is not None:
            self.ema.load_state_dict(state["ema"])

    def eval_state(self) -> dict:
        """The weights evaluation needs (a snapshot for the validator): F and C (averaged, with a weight
        average), not D or G."""
        source = self.ema.nets if self.ema is not None else self.nets
        return {k: source[k].state_dict() for k in self.eval_nets}

    def load_eval_state(self, state: dict) -> None:
        self._load(self.nets, state)
        if self.ema is not None:  # whichever mode, the loaded weights are the ones evaluated
            self._load(self.ema.nets, state)

    def export_state(self) -> dict:
        """Every sub-network's weights as the trained model holds them: F and C as evaluated."""
        return {k: n.state_dict() for k, n in self.nets.items()} | self.eval_state()

    def load_export_state(self, state: dict) -> None:
        for k, net in self.nets.items():
            net.load_state_dict(state[k])
        self.load_eval_state({k: state[k] for k in self.eval_nets})

    def start_from(self, nets: dict, source) -> None:
        """Begin from another method's trained model (its `export_state`), read from `source`."""
        self.load_export_state(nets)

    def extra_state(self) -> dict:
        """Whatever else a method carries across steps (checkpointed, so resuming stays exact)."""
        return {}

    def load_extra_state(self, state: dict) -> None:
        pass

    @property
    def device(self) -> torch.device:
        return next(self.nets["F"].parameters()).device

    # -- helpers for subclasses -----------------------------------------------------------------------
    def autocast(self):
        if self.amp and self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def update(self, name: str, loss: torch.Tensor) -> None:
        """Backward `loss` into optimiser `name`'s parameters, step it and its schedule."""
        opt = self.optimizers[name]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if name in self.schedulers:
            self.schedulers[name].step()

    def lr(self, name: str) -> float:
        return self.optimizers[name].param_groups[0]["lr"]
