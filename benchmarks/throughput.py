"""Training throughput: the real loop against the bare compute limit, same network, batch and threads.

    python benchmarks/throughput.py [--image-size 32] [--steps 300] [--repeats 3]

`bare`: forward + backward + optimiser step of the method's own update on batches already normalised in
memory (cycled) - the compute limit. `loop`: uda's training loop end to end (sampler, uint8 gather,
on-device normalisation, method.step, loss bookkeeping, NaN guard), timed by the loop itself without its
evaluations and checkpoints. Both alternate `repeats` times in one process; medians are reported.
The default experiment's domains are preprocessed at the chosen size into a temporary folder (raw files
from data/raw, else the mirror). `--image-size 28` is the setting of wogong/pytorch-dann, the reference.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch
from _common import prepare, scratch_params

from uda.batches import EndlessSampler, load_domain
from uda.methods import Batch
from uda.runtime import build_method
from uda.training import train


def bare(params, method_name: str, steps: int, n_batches: int = 16) -> float:
    spec = params.run(method_name)
    cfg, exp = spec.train, spec.exp
    dev = torch.device("cpu")
    src = load_domain(spec.data.processed_dir, exp.source, "train", dev, cfg.normalize)
    tgt = load_domain(spec.data.processed_dir, exp.target, "train", dev, cfg.normalize)
    s, t = EndlessSampler(len(src), cfg.batch_size, 0), EndlessSampler(len(tgt), cfg.batch_size, 1)
    batches = [Batch(*src.batch(s.next()), tgt.batch(t.next())[0]) for _ in range(n_batches)]
    method = build_method(spec, 3, steps, dev)
    for b in batches[:5]:
        method.step(b, 0.5)
    start = time.perf_counter()
    for i in range(steps):
        method.step(batches[i % n_batches], i / steps)
    per_step = batches[0].x_s.shape[0] + (batches[0].x_t.shape[0] if method.uses_target else 0)
    return steps * per_step / (time.perf_counter() - start)


def loop(params, method_name: str) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        _, result = train(params.run(method_name), f"{tmp}/out", f"{tmp}/ckpt")
    return result.images_per_s


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--image-size", type=int, default=32)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--methods", nargs="+", default=["dann", "source_only"])
    args = ap.parse_args()
    tmp = tempfile.TemporaryDirectory()
    params = scratch_params(tmp.name, "mnist_mnistm", args.image_size, steps=args.steps, threads=args.threads,
                            device="cpu", log_every=100, eval_every=10**9, checkpoint_every=10**9,
                            monitor_target=False)
    prepare(params.params)
    torch.set_num_threads(args.threads)
    dann = params.run("dann")
    print(f"{dann.exp.source}→{dann.exp.target} {args.image_size}×{args.image_size}, "
          f"{dann.train.network.name}, batch {dann.train.batch_size} per domain, "
          f"{args.threads} threads, torch {torch.__version__}\n")
    print("| method | bare (img/s) | loop (img/s) | loop / bare |")
    print("| --- | --- | --- | --- |")
    for name in args.methods:
        b, lp = [], []
        for _ in range(args.repeats):
            b.append(bare(params, name, args.steps))
            lp.append(loop(params, name))
        mb, ml = statistics.median(b), statistics.median(lp)
        print(f"| {name} | {mb:,.0f} | {ml:,.0f} | {ml / mb:.2f} |", flush=True)


if __name__ == "__main__":
    main()
