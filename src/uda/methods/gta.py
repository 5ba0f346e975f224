"""Generate to Adapt (GTA): an AC-GAN whose generator is conditioned on the embedding learns a joint space.

Sankaranarayanan, Balaji, Castillo, Chellappa, "Generate To Adapt: Aligning Domains using Generative
Adversarial Networks", CVPR 2018, §3 and Algorithm 1. Each iteration updates, in order (eq. 1-4):

    D:  L_D = L_ac(D(x_s), y_s) + L_bce(D(x_s), real) + L_bce(D(G(f_s)), fake) + L_bce(D(G(f_t)), fake)
    G:  L_G = L_ac(D(G(f_s)), y_s) + L_bce(D(G(f_s)), real)
    C:  L_C = L_ce(C(f_s), y_s)
    F:  L_F = L_ce(C(f_s), y_s) + a·L_ac(D(G(f_s)), y_s) + a·α·L_bce(D(G(f_t)), real)

with a = 0.1, α = 0.3; G's input is a one-hot label with one extra "fake" slot (the class of every target
sample), the embedding and Gaussian noise; D sees real images in [−1, 1]. Adam (lr 5e-4, β1 = 0.8);
D, F and C decay as lr0/(1 + 1e-4·iteration). One deviation from the authors' code: each update recomputes
its forward pass with the networks as they are after the previous update (their code reuses graphs whose
weights were since changed in place, which current PyTorch rejects).
"""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F_
from torch import nn

from uda.config import GtaConfig, TrainConfig
from uda.methods.base import Batch, Method, TrainingDiverged
from uda.models import gta as nets_gta
from uda.schedules import inverse_decay_factor


def real(logit: torch.Tensor) -> torch.Tensor:
    """BCE of D's real/fake logits against "real"."""
    return F_.binary_cross_entropy_with_logits(logit.float(), torch.ones_like(logit, dtype=torch.float32))


def fake(logit: torch.Tensor) -> torch.Tensor:
    return F_.binary_cross_entropy_with_logits(logit.float(), torch.zeros_like(logit, dtype=torch.float32))


def ce(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return F_.cross_entropy(logits.float(), y)


@contextlib.contextmanager
def frozen(*modules: nn.Module):
    """No parameter gradients for these modules (gradients still flow through them to their inputs)."""
    params = [p for m in modules for p in m.parameters() if p.requires_grad]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(True)


class GenerateToAdapt(Method):
    name = "gta"

    @classmethod
    def build_nets(cls, cfg: GtaConfig, train: TrainConfig, num_classes: int, channels: int,
                   image_size: int) -> dict[str, nn.Module]:
        if image_size != 32:
            raise ValueError(f"gta's digit networks need 32×32 input (the experiment's recipe has {image_size})")
        nets = {"F": nets_gta.embedder(channels, cfg.ndf), "C": nets_gta.classifier(num_classes, cfg.ndf),
                "G": nets_gta.Generator(num_classes, channels, 2 * cfg.ndf, cfg.nz, cfg.ngf),
                "D": nets_gta.Discriminator(num_classes, channels, cfg.ndf)}
        for net in nets.values():
            nets_gta.init_weights(net)
        return nets

    def __init__(self, nets: dict[str, nn.Module], cfg: GtaConfig, train: TrainConfig, total_steps: int):
        super().__init__(nets, train)
        self.cfg = cfg
        self.num_classes = nets["C"][-1].out_features
        for k in ("D", "G", "F", "C"):
            self.optimizers[k] = torch.optim.Adam(nets[k].parameters(), lr=cfg.lr, betas=(cfg.beta1, 0.999))
            if k != "G":
                self.schedulers[k] = torch.optim.lr_scheduler.LambdaLR(
                    self.optimizers[k], lambda step: inverse_decay_factor(step, cfg.lr_decay))
        self.collapse_run = 0  # consecutive iterations that look like a collapse

    def _labels(self, y_s: torch.Tensor, n_t: int) -> tuple[torch.Tensor, torch.Tensor]:
        k = self.num_classes
        onehot_s = F_.one_hot(y_s, k + 1).float()
        onehot_t = F_.one_hot(torch.full((n_t,), k, device=y_s.device), k + 1).float()  # the "fake" class
        return onehot_s, onehot_t

    def step(self, batch: Batch, progress: float) -> dict[str, torch.Tensor]:
        Fn, Cn, G, D = (self.nets[k] for k in "FCGD")
        x_s, y_s, x_t = batch.x_s, batch.y_s, batch.x_t
        x_real = (x_s * batch.std_s + batch.mean_s) * 2 - 1 if batch.mean_s is not None else x_s
        onehot_s, onehot_t = self._labels(y_s, len(x_t))
        z_s = torch.randn(len(x_s), self.cfg.nz, device=x_s.device)
        z_t = torch.randn(len(x_t), self.cfg.nz, device=x_s.device)

        with self.autocast():
            with torch.no_grad():
                f_s, f_t = Fn(x_s), Fn(x_t)
                g_s, g_t = G(onehot_s, f_s, z_s), G(onehot_t, f_t, z_t)
            (rs, rc), (fs, _), (ft, _) = D(x_real), D(g_s), D(g_t)
            loss_d = ce(rc, y_s) + real(rs) + fake(fs) + fake(ft)
        self.update("D", loss_d)

        with self.autocast(), frozen(D):
            fs, fc = D(G(onehot_s, f_s, z_s))
            loss_g = ce(fc, y_s) + real(fs)
        self.update("G", loss_g)

        with self.autocast():
            logits = Cn(f_s)
            loss_c = ce(logits, y_s)
        self.update("C", loss_c)

        with self.autocast(), frozen(Cn, G, D):
            f_s, f_t = Fn(x_s), Fn(x_t)
            _, fc = D(G(onehot_s, f_s, z_s))
            ft, _ = D(G(onehot_t, f_t, z_t))
            loss_cls = ce(Cn(f_s), y_s)
            loss_f = loss_cls + self.cfg.adv_weight * ce(fc, y_s) + self.cfg.adv_weight * self.cfg.alpha * real(ft)
        self.update("F", loss_f)

        self._guard_collapse(loss_d, loss_g)
        return {"loss/class": loss_cls.detach(), "loss/total": loss_f.detach(), "loss/D": loss_d.detach(),
                "loss/G": loss_g.detach(), "loss/C": loss_c.detach(),
                "train/source_acc": (logits.argmax(1) == y_s).float().mean(), "schedule/lr": torch.tensor(self.lr("F"))}

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
