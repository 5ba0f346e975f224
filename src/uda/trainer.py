"""The one generic training loop: it calls `method.train_step` and knows nothing of which method it runs.

Checkpoints (method state, sampler and RNG states, step, selection state) are written atomically every
`checkpoint_every` steps and at the end; a re-run resumes from the last one and ends with exactly the
metrics of an uninterrupted run. A non-finite loss stops training, naming the step and the loss, and
leaves the last good checkpoint in place.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from uda.config import TrainConfig
from uda.io import atomic_write, load_tensors
from uda.methods import Batch, Method
from uda.methods.base import TrainingDiverged

__all__ = ["FitResult", "TrainingDiverged", "fit"]


@dataclass
class FitResult:
    steps: int
    selected_step: int
    final: dict[str, float]  # evaluation at the last step
    selected: dict[str, float]  # evaluation of the selected checkpoint
    resumed_from: int = 0
    images_per_s: float = float("nan")


def save_checkpoint(path: Path, state: dict) -> None:
    with atomic_write(path) as f:
        torch.save(state, f)


def load_checkpoint(path: Path) -> dict:
    """A checkpoint holds tensors and plain containers only, read with weights_only=True: a crafted file
    cannot run code. One that cannot be read stops the run, naming it; nothing is deleted for the user."""
    return load_tensors(path, "the training loop; deleting it restarts this run from scratch")


def _rng_state() -> dict:
    state = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["cpu"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class _Progress:
    """A live bar on a terminal; plain log lines (every log_every steps) elsewhere."""

    def __init__(self, total: int, start: int):
        self.bar = None
        if sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=start, unit="step", dynamic_ncols=True)

    def update(self, step: int, total: int, metrics: dict[str, float], n: int) -> None:
        shown = {k.split("/")[-1]: f"{v:.3g}" for k, v in metrics.items() if k.startswith(("loss/", "train/"))}
        if self.bar is not None:
            self.bar.update(n)
            self.bar.set_postfix(shown, refresh=False)
        else:
            print(f"step {step}/{total} " + " ".join(f"{k}={v}" for k, v in shown.items()), flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def fit(method: Method, draw: Callable[[], Batch], samplers: dict, cfg: TrainConfig, total_steps: int,
        checkpoint_dir: Path, evaluate: Callable[[Method], dict[str, float]],
        log: Callable[[dict[str, float], int], None] = lambda m, s: None,
        log_images: Callable[[dict[str, torch.Tensor], int], None] = lambda i, s: None) -> FitResult:
    checkpoint_dir = Path(checkpoint_dir)
    last, best = checkpoint_dir / "last.pt", checkpoint_dir / "best.pt"
    step, sel = 0, {"step": 0, "score": -math.inf, "metrics": {}}
    # The open window of loss sums travels with the checkpoint, so that the first average logged after a
    # resume covers the same steps as in an uninterrupted run (checkpoint_every need not divide log_every).
    # Each key is averaged over the steps that returned it (a method in two phases returns different keys).
    open_window: dict = {"window": 0, "sums": {}, "counts": {}}
    # Images and seconds of training before this process, so that the run's throughput covers all of it
    # (and a re-run of a finished stage reports the same figure rather than nothing).
    before = {"images": 0, "seconds": 0.0}
    if last.exists():
        state = load_checkpoint(last)
        method.load_state_dict(state["method"])
        for k, s in samplers.items():
            s.load_state_dict(state["samplers"][k])
        _set_rng_state(state["rng"])
        step, sel = state["step"], state["selection"]
        open_window = state.get("log_window", open_window)
        before = state.get("throughput", before)
        print(f"resuming from {last} at step {step}/{total_steps}", flush=True)
    resumed_from = step
    check_every = 1 if method.device.type == "cpu" else cfg.log_every  # a host sync per step is free only on CPU
    window = open_window["window"]
    sums: dict[str, torch.Tensor] = {k: v.to(method.device) for k, v in open_window["sums"].items()}
    counts: dict[str, int] = open_window.get("counts") or dict.fromkeys(sums, window)
    train_time, images = 0.0, 0
    final: dict[str, float] = {}
    progress = _Progress(total_steps, step)

    def throughput() -> dict:
        return {"images": before["images"] + images, "seconds": before["seconds"] + train_time}

    method.train(True)
    try:
        while step < total_steps:
            t0 = time.perf_counter()
            batch = draw()
            losses = method.train_step(batch, step / total_steps)
            train_time += time.perf_counter() - t0  # evaluation and checkpoints are not training time
            step += 1
            window += 1
            images += len(batch.x_s) + (len(batch.x_t) if method.uses_target else 0)
            for k, v in losses.items():
                sums[k] = sums[k] + v if k in sums else v.float()
                counts[k] = counts.get(k, 0) + 1
            at_eval = step % cfg.eval_every == 0 or step == total_steps
            at_ckpt = step % cfg.checkpoint_every == 0 or step == total_steps
            if step % cfg.log_every == 0 or at_eval or at_ckpt or step % check_every == 0:
                bad = [k for k, v in (losses if check_every == 1 else sums).items() if not torch.isfinite(v).all()]
                if bad:
                    where = f"step {step}" if check_every == 1 else f"steps {step - window + 1}–{step}"
                    raise TrainingDiverged(
                        f"{where}: loss {bad[0]} is not finite ({float(losses[bad[0]])}); training stopped. "
                        f"The last good checkpoint is kept: {last if last.exists() else 'none written yet'}")
            if step % cfg.log_every == 0 or step == total_steps:
                metrics = {k: float(v) / counts[k] for k, v in sums.items()}
                metrics["perf/images_per_s"] = images / max(train_time, 1e-9)
                log(metrics, step)
                progress.update(step, total_steps, metrics, window)
                sums, counts, window = {}, {}, 0
            if at_eval:
                method.train(False)
                final = evaluate(method)
                log_images(method.images(batch), step)
                method.train(True)
                log(final, step)
                if cfg.snapshots:  # candidates for the label-free validators (uda.validators)
                    save_checkpoint(checkpoint_dir / "snapshots" / f"step_{step:06d}.pt",
                                    {"nets": method.eval_state(), "step": step})
                score = final.get("source/val_acc", -math.inf)
                if cfg.select == "best_source_val" and score > sel["score"]:
                    sel = {"step": step, "score": score, "metrics": final}
                    save_checkpoint(best, {"nets": method.export_state(), "step": step})
            if at_ckpt:
                save_checkpoint(last, {"step": step, "method": method.state_dict(), "rng": _rng_state(),
                                       "samplers": {k: s.state_dict() for k, s in samplers.items()},
                                       "selection": sel, "final": final, "throughput": throughput(),
                                       "log_window": {"window": window, "counts": counts,
                                                      "sums": {k: v.cpu() for k, v in sums.items()}}})
    finally:
        progress.close()
    if not final:  # resumed from a finished checkpoint
        final = load_checkpoint(last)["final"]
    done = throughput()
    images_per_s = done["images"] / max(done["seconds"], 1e-9)
    if cfg.select == "best_source_val" and sel["step"]:
        method.load_export_state(load_checkpoint(best)["nets"])
        return FitResult(step, sel["step"], final, sel["metrics"], resumed_from, images_per_s)
    return FitResult(step, step, final, final, resumed_from, images_per_s)
