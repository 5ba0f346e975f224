"""Generate-to-Adapt iteration speed: a straightforward port against uda's `gta`, measured in one run.

    python benchmarks/gta_speed.py [--batch 128] [--iters 5] [--repeats 3] [--threads 2]

`naive`: the authors' update order written the obvious way - each of the D, G, C and F updates runs its own
forward passes from scratch (F twice, G five times, D six times per iteration), every backward fills every
parameter's gradient, NCHW tensors. `uda`: `GenerateToAdapt.step` - one F forward for both domains, one G
forward per domain shared by the D, G and F updates, one D forward serving both G's and F's losses,
gradients only for the network being updated, channels_last. Same networks, same batch, same threads;
the two alternate `repeats` times and medians are reported. Random tensors stand in for images: the
arithmetic does not depend on pixel values.

It also counts each implementation's convolution and matmul FLOPs per iteration (torch's FlopCounterMode)
and times the network's best-shaped layer alone (D's 64 → 128 3×3 convolution at 16×16, forward and both
backward products): that layer's rate bounds what any schedule of the same arithmetic can reach here.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F_
from torch.utils.flop_counter import FlopCounterMode

from uda.config import TrainConfig
from uda.methods import Batch
from uda.methods.gta import GenerateToAdapt, GtaConfig, ce, fake, real


def naive_step(m: GenerateToAdapt, b: Batch) -> None:
    Fn, Cn, G, D = (m.nets[k] for k in "FCGD")
    onehot_s, onehot_t = m._labels(b.y_s, len(b.x_t))
    z = torch.randn(len(b.x_s), m.cfg.nz)
    x_real = b.x_s * 2 - 1

    def gen(f_s, f_t):
        return G(onehot_s, f_s, z), G(onehot_t, f_t, z)

    def update(name, loss):
        for net in m.nets.values():
            net.zero_grad()
        loss.backward()
        m.optimizers[name].step()

    g_s, g_t = gen(Fn(b.x_s), Fn(b.x_t))
    (rs, rc), (fs, _), (ft, _) = D(x_real), D(g_s.detach()), D(g_t.detach())
    update("D", ce(rc, b.y_s) + real(rs) + fake(fs) + fake(ft))
    fs, fc = D(G(onehot_s, Fn(b.x_s).detach(), z))
    update("G", ce(fc, b.y_s) + real(fs))
    update("C", F_.cross_entropy(Cn(Fn(b.x_s).detach()), b.y_s))
    f_s, f_t = Fn(b.x_s), Fn(b.x_t)
    g_s, g_t = gen(f_s, f_t)
    loss_f = ce(Cn(f_s), b.y_s) + 0.1 * ce(D(g_s)[1], b.y_s) + 0.03 * real(D(g_t)[0])
    update("F", loss_f)


def setup(batch: int, channels_last: bool) -> tuple[GenerateToAdapt, Batch]:
    torch.manual_seed(0)
    cfg, train = GtaConfig(), TrainConfig.model_validate({"steps": 1})
    nets = GenerateToAdapt.build_nets(cfg, train, 10, 3, 32)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    for net in nets.values():
        net.to(memory_format=fmt)
    x = lambda: torch.rand(batch, 3, 32, 32).contiguous(memory_format=fmt)  # noqa: E731
    ones = torch.ones(1, 3, 1, 1)
    return GenerateToAdapt(nets, cfg, train, 1000), Batch(x(), torch.randint(0, 10, (batch,)), x(), 0 * ones, ones)


def time_it(step, method, b, iters: int) -> float:
    step(method, b)  # warm-up
    start = time.perf_counter()
    for _ in range(iters):
        step(method, b)
    return (time.perf_counter() - start) / iters


def flops(step, method, b) -> float:
    """Convolution + matmul FLOPs of one iteration (elementwise work is not counted)."""
    with FlopCounterMode(display=False) as counter:
        step(method, b)
    return counter.get_total_flops()


def best_layer_rate(batch: int, iters: int = 10) -> float:
    """FLOP/s of D's 64 → 128 3×3 convolution on 16×16 maps, forward + grad-input + grad-weight, channels_last."""
    conv = torch.nn.Conv2d(64, 128, 3, 1, 1).to(memory_format=torch.channels_last)
    x = torch.randn(batch, 64, 16, 16).contiguous(memory_format=torch.channels_last).requires_grad_()
    once = lambda: conv(x).sum().backward()  # noqa: E731
    once()
    start = time.perf_counter()
    for _ in range(iters):
        once()
    per_pass = 2 * batch * 16 * 16 * 128 * 64 * 9  # multiply-adds × 2 of one forward
    return 3 * per_pass * iters / (time.perf_counter() - start)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=128, help="images per domain")
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    runs = {"naive": (naive_step, False), "uda": (lambda m, b: m.step(b, 0.0), True)}
    times: dict[str, list[float]] = {k: [] for k in runs}
    for _ in range(args.repeats):
        for name, (step, cl) in runs.items():
            times[name].append(time_it(step, *setup(args.batch, cl), args.iters))
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"GTA iteration, {args.batch}+{args.batch} images of 3×32×32, {args.threads} threads, "
          f"torch {torch.__version__}\n")
    print("| implementation | s / iteration | iterations / s | speed-up |")
    print("| --- | --- | --- | --- |")
    for name, t in med.items():
        print(f"| {name} | {t:.2f} | {1 / t:.2f} | {med['naive'] / t:.2f}× |")
    work = {name: flops(step, *setup(args.batch, cl)) for name, (step, cl) in runs.items()}
    rate = best_layer_rate(args.batch)
    print("\n| implementation | conv + matmul GFLOP / iteration | attained GFLOP/s |\n| --- | --- | --- |")
    for name, w in work.items():
        print(f"| {name} | {w / 1e9:.1f} | {w / med[name] / 1e9:.0f} |")
    floor = work["uda"] / rate
    print(f"\nBest-shaped layer alone: {rate / 1e9:.0f} GFLOP/s. At that rate for all of uda's arithmetic and no "
          f"time for anything else, an iteration takes ≥ {floor:.2f} s, at most {med['naive'] / floor:.2f}× the "
          f"naive port; 3× needs {med['naive'] / 3:.2f} s.")


if __name__ == "__main__":
    main()
