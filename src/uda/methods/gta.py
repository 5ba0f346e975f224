"""Generate to Adapt (GTA): an AC-GAN whose generator is conditioned on the embedding learns a joint space.

Sankaranarayanan, Balaji, Castillo, Chellappa, "Generate To Adapt: Aligning Domains using Generative
Adversarial Networks", CVPR 2018, §3 and Algorithm 1. Each iteration updates, in order (eq. 1-4):

    D:  L_D = L_ac(D(x_s), y_s) + L_bce(D(x_s), real) + L_bce(D(G(f_s)), fake) + L_bce(D(G(f_t)), fake)
    G:  L_G = L_ac(D(G(f_s)), y_s) + L_bce(D(G(f_s)), real)
    C:  L_C = L_ce(C(f_s), y_s)
    F:  L_F = L_ce(C(f_s), y_s) + a·L_ac(D(G(f_s)), y_s) + a·α·L_bce(D(G(f_t)), real)

with a = 0.1, α = 0.3; G's input is a one-hot label with one extra "fake" slot (the class of every target
sample), the embedding and Gaussian noise (one draw shared by both domains, as in the authors' code); D sees
real images in [−1, 1]. Adam (lr 5e-4, β1 = 0.8); D, F and C decay as lr0/(1 + 1e-4·iteration).

As in the authors' code, F embeds and G generates once per iteration, and the G and F updates both see D
after its update. Their code then backpropagates F's loss through G's graph after G's weights changed in
place (current PyTorch rightly refuses); here G's gradient is taken first and its step applied after F's
gradient, so F's gradient flows through exactly the G that generated. C's term of L_F uses C after its update.

`discriminators: 2` is the variant of the MNIST→SVHN study: a source D whose one head has classes + 1
outputs (the last is "fake") and a target D that tells real target images from G(f_t), one loss each:

    D_s: L_ce(D_s(x_s), y_s) + L_ce(D_s(G(f_s)), fake)      D_t: L_bce(D_t(x_t), real) + L_bce(D_t(G(f_t)), fake)
    G:   L_ce(D_s(G(f_s)), y_s) + L_bce(D_t(G(f_t)), real)
    F:   L_ce(C(f_s), y_s) + a·L_ce(D_s(G(f_s)), y_s) + a·α·(−log(1 − p_fake(D_s(G(f_t)))))

The study does not say what F's target term is; here F pulls G(f_t) away from D_s's "fake" class, the
analogue of the paper's real-loss term.
"""

from __future__ import annotations

from typing import Annotated, Literal

import torch
import torch.nn.functional as F_
from pydantic import Field
from torch import nn

from uda.config import Count, MethodConfig, TrainConfig
from uda.methods.base import Batch, Method, TrainingDiverged
from uda.models import gta as nets_gta
from uda.schedules import inverse_decay_factor


class GtaConfig(MethodConfig):
    """The authors' settings. GTA owns its four Adam optimisers, so train.optimizer and train.schedule do not
    apply to it."""

    lr: Annotated[float, Field(gt=0)] = 5e-4
    beta1: Annotated[float, Field(ge=0, lt=1)] = 0.8
    lr_decay: Annotated[float, Field(ge=0)] = 1e-4  # lr0 / (1 + lr_decay·iteration) for D, F and C
    adv_weight: Annotated[float, Field(ge=0)] = 0.1  # a: F's weight of D's class loss on generated source
    alpha: Annotated[float, Field(ge=0)] = 0.3  # F: a·α weighs D's real loss on generated target
    embedder: Literal["dig1", "dig2"] = "dig1"  # F/C: the authors' DigF1/DigC1, or the stand-in DigF2/DigC2
    # 1: the paper's AC-GAN D; 2: a source D (classes + "fake", one loss) and a target D (real/fake)
    discriminators: Literal[1, 2] = 1
    nz: Count = 512
    ndf: Count = 64
    ngf: Count = 64
    # Collapse guard: stop when D's loss stays below collapse_d_loss while G's exceeds collapse_g_loss
    # for collapse_steps consecutive iterations.
    collapse_steps: Count = 500
    collapse_d_loss: Annotated[float, Field(gt=0)] = 0.01
    collapse_g_loss: Annotated[float, Field(gt=0)] = 10.0


def real(logit: torch.Tensor) -> torch.Tensor:
    """BCE of D's real/fake logits against "real"."""
    return F_.binary_cross_entropy_with_logits(logit.float(), torch.ones_like(logit, dtype=torch.float32))


def fake(logit: torch.Tensor) -> torch.Tensor:
    return F_.binary_cross_entropy_with_logits(logit.float(), torch.zeros_like(logit, dtype=torch.float32))


def ce(logits: torch.Tensor, y: torch.Tensor | int) -> torch.Tensor:
    if isinstance(y, int):
        y = torch.full((len(logits),), y, device=logits.device)
    return F_.cross_entropy(logits.float(), y)


def not_fake(logits: torch.Tensor) -> torch.Tensor:
    """−log(1 − p_fake) for a head whose last output is "fake": log Σ_all − log Σ_classes, stable."""
    logits = logits.float()
    return (logits.logsumexp(1) - logits[:, :-1].logsumexp(1)).mean()


def to_pixels(x: torch.Tensor, mean: torch.Tensor | None, std: torch.Tensor | None) -> torch.Tensor:
    """Normalised images back to [−1, 1], the range of G's tanh output."""
    return (x * std + mean) * 2 - 1 if mean is not None else x


class GenerateToAdapt(Method):
    name = "gta"
    Config = GtaConfig
    image_sizes = (32,)  # the paper's digit networks

    @classmethod
    def build_nets(cls, cfg: GtaConfig, train: TrainConfig, num_classes: int, channels: int,
                   image_size: int) -> dict[str, nn.Module]:
        if image_size not in cls.image_sizes:
            raise ValueError(f"gta's digit networks need 32×32 input (the experiment's recipe has {image_size})")
        make_f, make_c, width = nets_gta.EMBEDDERS[cfg.embedder]
        nets = {"F": make_f(channels, cfg.ndf), "C": make_c(num_classes, width(cfg.ndf)),
                "G": nets_gta.Generator(num_classes, channels, width(cfg.ndf), cfg.nz, cfg.ngf)}
        if cfg.discriminators == 1:
            nets["D"] = nets_gta.Discriminator(num_classes, channels, cfg.ndf)
        else:
            nets["D"] = nets_gta.Discriminator(num_classes + 1, channels, cfg.ndf, real_fake=False)
            nets["D_t"] = nets_gta.Discriminator(0, channels, cfg.ndf)
        for net in nets.values():
            nets_gta.init_weights(net)
        return nets

    def __init__(self, nets: dict[str, nn.Module], cfg: GtaConfig, train: TrainConfig, total_steps: int):
        super().__init__(nets, train)
        self.cfg = cfg
        self.num_classes = nets["C"][-1].out_features
        for k in nets:
            self.optimizers[k] = torch.optim.Adam(nets[k].parameters(), lr=cfg.lr, betas=(cfg.beta1, 0.999))
            if k != "G":
                self.schedulers[k] = torch.optim.lr_scheduler.LambdaLR(
                    self.optimizers[k], lambda step: inverse_decay_factor(step, cfg.lr_decay))
        # The variant's two pieces: D's update, and the losses G and F take from the updated D.
        self.update_discriminators, self.adversarial_losses = {
            1: (self._update_acgan_d, self._acgan_losses), 2: (self._update_two_ds, self._two_d_losses)
        }[cfg.discriminators]
        self.collapse_run = 0  # consecutive iterations that look like a collapse

    def _labels(self, y_s: torch.Tensor, n_t: int) -> tuple[torch.Tensor, torch.Tensor]:
        k = self.num_classes
        onehot_s = F_.one_hot(y_s, k + 1).float()
        onehot_t = F_.one_hot(torch.full((n_t,), k, device=y_s.device), k + 1).float()  # the "fake" class
        return onehot_s, onehot_t

    def grads(self, name: str, loss: torch.Tensor) -> list[torch.Tensor]:
        """d loss / d (net `name`'s parameters) only: autograd skips every path no such parameter needs."""
        return list(torch.autograd.grad(loss, list(self.nets[name].parameters()), retain_graph=True))

    def apply(self, name: str, grads: list[torch.Tensor]) -> None:
        for p, g in zip(self.nets[name].parameters(), grads, strict=True):
            p.grad = g
        self.optimizers[name].step()
        if name in self.schedulers:
            self.schedulers[name].step()

    def step(self, batch: Batch, progress: float) -> dict[str, torch.Tensor]:
        x_s, y_s, x_t = batch.x_s, batch.y_s, batch.x_t
        onehot_s, onehot_t = self._labels(y_s, len(x_t))
        z = torch.randn(len(x_s), self.cfg.nz, device=x_s.device)
        with self.autocast():
            f_s, f_t = self.nets["F"](torch.cat([x_s, x_t])).split([len(x_s), len(x_t)])  # F has no batch norm
            g_s, g_t = self.nets["G"](onehot_s, f_s, z), self.nets["G"](onehot_t, f_t, z[:len(x_t)])
        out = self.update_discriminators(batch, g_s.detach(), g_t.detach())  # eq. 1 on G's samples, fixed

        with self.autocast():  # one forward of the updated D serves both G's and F's losses
            loss_g, loss_adv_s, loss_adv_t = self.adversarial_losses(g_s, g_t, y_s)
        grads_g = self.grads("G", loss_g)  # eq. 2, taken before F moves G's input

        with self.autocast():
            logits_s = self.nets["C"](f_s.detach())
            loss_c = ce(logits_s, y_s)  # eq. 3
        self.update("C", loss_c)

        with self.autocast():  # eq. 4, with C after its update
            loss_cls = ce(self.nets["C"](f_s), y_s)
            cfg = self.cfg
            loss_f = loss_cls + cfg.adv_weight * loss_adv_s + cfg.adv_weight * cfg.alpha * loss_adv_t
        self.apply("F", self.grads("F", loss_f))
        self.apply("G", grads_g)

        self._guard_collapse(sum(out.values()), loss_g)
        return out | {"loss/class": loss_cls.detach(), "loss/total": loss_f.detach(), "loss/G": loss_g.detach(),
                      "loss/C": loss_c.detach(), "train/source_acc": (logits_s.argmax(1) == y_s).float().mean(),
                      "schedule/lr": torch.tensor(self.lr("F"))}

    # -- discriminators: 1, the paper's AC-GAN D --------------------------------------------------------
    def _update_acgan_d(self, batch: Batch, g_s: torch.Tensor, g_t: torch.Tensor) -> dict[str, torch.Tensor]:
        """L_D = L_ac(D(x_s), y_s) + L_bce(D(x_s), real) + L_bce(D(G(f_s)), fake) + L_bce(D(G(f_t)), fake)."""
        D = self.nets["D"]
        with self.autocast():
            d_rf_x_s, d_cls_x_s = D(to_pixels(batch.x_s, batch.mean_s, batch.std_s))
            loss_d = ce(d_cls_x_s, batch.y_s) + real(d_rf_x_s) + fake(D(g_s)[0]) + fake(D(g_t)[0])
        self.update("D", loss_d)
        return {"loss/D": loss_d.detach()}

    def _acgan_losses(self, g_s: torch.Tensor, g_t: torch.Tensor, y_s: torch.Tensor):
        """G: L_ac(D(G(f_s)), y_s) + L_bce(D(G(f_s)), real); F's terms: L_ac(D(G(f_s)), y_s) and
        L_bce(D(G(f_t)), real)."""
        d_rf_g_s, d_cls_g_s = self.nets["D"](g_s)
        d_rf_g_t = self.nets["D"](g_t)[0]
        loss_adv_s = ce(d_cls_g_s, y_s)
        return loss_adv_s + real(d_rf_g_s), loss_adv_s, real(d_rf_g_t)

    # -- discriminators: 2, the MNIST→SVHN study's source D (classes + fake) and target D --------------
    def _update_two_ds(self, batch: Batch, g_s: torch.Tensor, g_t: torch.Tensor) -> dict[str, torch.Tensor]:
        """D_s: L_ce(D_s(x_s), y_s) + L_ce(D_s(G(f_s)), fake);
        D_t: L_bce(D_t(x_t), real) + L_bce(D_t(G(f_t)), fake)."""
        D_s, D_t, fake_class = self.nets["D"], self.nets["D_t"], self.num_classes
        with self.autocast():
            x_s_real = to_pixels(batch.x_s, batch.mean_s, batch.std_s)
            loss_d_s = ce(D_s(x_s_real)[1], batch.y_s) + ce(D_s(g_s)[1], fake_class)
            loss_d_t = real(D_t(to_pixels(batch.x_t, batch.mean_t, batch.std_t))[0]) + fake(D_t(g_t)[0])
        self.update("D", loss_d_s)
        self.update("D_t", loss_d_t)
        return {"loss/D": loss_d_s.detach(), "loss/D_t": loss_d_t.detach()}

    def _two_d_losses(self, g_s: torch.Tensor, g_t: torch.Tensor, y_s: torch.Tensor):
        """G: L_ce(D_s(G(f_s)), y_s) + L_bce(D_t(G(f_t)), real); F's terms: L_ce(D_s(G(f_s)), y_s) and
        −log(1 − p_fake(D_s(G(f_t))))."""
        D_s, D_t = self.nets["D"], self.nets["D_t"]
        loss_adv_s = ce(D_s(g_s)[1], y_s)
        return loss_adv_s + real(D_t(g_t)[0]), loss_adv_s, not_fake(D_s(g_t)[1])

    def _guard_collapse(self, loss_d: torch.Tensor, loss_g: torch.Tensor) -> None:
        """D winning outright while G's loss explodes, for many iterations in a row, is a collapse."""
        cfg = self.cfg
        collapsed = loss_d.item() < cfg.collapse_d_loss and loss_g.item() > cfg.collapse_g_loss
        self.collapse_run = self.collapse_run + 1 if collapsed else 0
        if self.collapse_run >= cfg.collapse_steps:
            raise TrainingDiverged(
                f"GAN collapse: D's loss stayed below {cfg.collapse_d_loss} while G's exceeded {cfg.collapse_g_loss} "
                f"for {self.collapse_run} iterations (now D {loss_d.item():.3g}, G {loss_g.item():.3g}); training "
                "stopped, the last good checkpoint is kept")

    def extra_state(self) -> dict:
        return {"collapse_run": self.collapse_run}

    def load_extra_state(self, state: dict) -> None:
        self.collapse_run = state.get("collapse_run", 0)

    @torch.no_grad()
    def images(self, batch: Batch) -> dict[str, torch.Tensor]:
        """G's samples conditioned on source embeddings (with their labels) and on target embeddings."""
        n = min(64, len(batch.x_s), len(batch.x_t))
        onehot_s, onehot_t = self._labels(batch.y_s[:n], n)
        z = torch.randn(n, self.cfg.nz, generator=torch.Generator().manual_seed(0)).to(batch.x_s.device)
        to_uint8 = lambda x: ((x.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).cpu()  # noqa: E731
        return {"generated_source": to_uint8(self.nets["G"](onehot_s, self.nets["F"](batch.x_s[:n]), z)),
                "generated_target": to_uint8(self.nets["G"](onehot_t, self.nets["F"](batch.x_t[:n]), z))}


METHOD = GenerateToAdapt
