"""The generic loop with a stub method and synthetic data (no mirror): logging windows, evaluation and
snapshots, selection, checkpoint/resume exactness, the NaN guard."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from uda.batches import EndlessSampler
from uda.config import TrainConfig
from uda.io import DataError
from uda.methods import Batch, Method
from uda.trainer import TrainingDiverged, fit

X = torch.randn(64, 4, generator=torch.Generator().manual_seed(0))
Y = (X[:, 0] > 0).long()


class Stub(Method):
    """A linear classifier on source batches; it also reports its call count, to check the averages."""

    name = "stub"
    uses_target = False

    def __init__(self, train: TrainConfig, total_steps: int, nan_at: int | None = None):
        torch.manual_seed(0)
        super().__init__({"F": nn.Linear(4, 4), "C": nn.Linear(4, 2)}, train)
        self.add_optimizer("main", ["F", "C"], train.optimizer, train.schedule, total_steps)
        self.calls, self.nan_at = 0, nan_at

    def step(self, batch: Batch, progress: float) -> dict[str, torch.Tensor]:
        self.calls += 1
        loss = nn.functional.cross_entropy(self.predict(batch.x_s), batch.y_s)
        self.update("main", loss)
        bad = float("nan") if self.calls == self.nan_at else 0.0
        return {"loss/class": loss.detach() + bad, "loss/call": torch.tensor(float(self.calls))}

    def extra_state(self) -> dict:
        return {"calls": self.calls}

    def load_extra_state(self, state: dict) -> None:
        self.calls = state["calls"]


def config(**over) -> TrainConfig:
    return TrainConfig.model_validate({"steps": 30, "batch_size": 8, "log_every": 4, "eval_every": 10,
                                       "checkpoint_every": 7, "optimizer": {"lr": 0.1}, **over})


def run(tmp_path, cfg: TrainConfig, log=None, nan_at=None):
    method = Stub(cfg, cfg.steps, nan_at)
    samplers = {"source": EndlessSampler(len(X), cfg.batch_size, 0)}
    history = []

    def draw() -> Batch:
        idx = samplers["source"].next()
        return Batch(X[idx], Y[idx], torch.empty(0))

    def evaluate(m: Method) -> dict[str, float]:
        with torch.no_grad():  # the step number stands in for a validation score that peaks at step 20
            return {"source/val_acc": (m.predict(X).argmax(1) == Y).float().mean().item() - abs(m.calls - 20) / 100}

    def record(metrics, step):
        history.append((step, dict(metrics)))
        if log:
            log(metrics, step)

    result = fit(method, draw, samplers, cfg, cfg.steps, tmp_path / "ckpt", evaluate, record)
    return method, result, history


def test_losses_are_averaged_over_each_logging_window(tmp_path):
    _, result, history = run(tmp_path, config())
    calls = [(s, m["loss/call"]) for s, m in history if "loss/call" in m]
    # windows of 4 steps (1-4, 5-8, ...) and the last, short one (29-30)
    assert calls[:2] == [(4, 2.5), (8, 6.5)] and calls[-1] == (30, 29.5) and len(calls) == 8
    evals = [s for s, m in history if "source/val_acc" in m]
    assert evals == [10, 20, 30] and result.steps == 30
    assert sorted(p.name for p in (tmp_path / "ckpt/snapshots").iterdir()) == [
        "step_000010.pt", "step_000020.pt", "step_000030.pt"]


def test_best_source_val_keeps_the_best_evaluated_weights(tmp_path):
    method, result, history = run(tmp_path, config(select="best_source_val"))
    assert result.selected_step == 20 and result.steps == 30
    snapshot = torch.load(tmp_path / "ckpt/snapshots/step_000020.pt", weights_only=True)["nets"]
    assert all(torch.equal(t, method.nets["C"].state_dict()[k]) for k, t in snapshot["C"].items())


class _Killed(Exception):
    pass


def test_a_killed_run_resumes_to_exactly_the_uninterrupted_result(tmp_path):
    full, r_full, h_full = run(tmp_path / "full", config())

    def kill_at_16(metrics, step):
        if step == 16:
            raise _Killed  # between the checkpoints at 14 and 21, mid-window for log_every 4

    with pytest.raises(_Killed):
        run(tmp_path / "killed", config(), log=kill_at_16)
    resumed, r_res, h_res = run(tmp_path / "killed", config())
    assert r_res.resumed_from == 14 and h_res[0][0] == 16
    assert r_res.final == r_full.final and resumed.calls == full.calls == 30
    strip = lambda h: [(s, {k: v for k, v in m.items() if k != "perf/images_per_s"}) for s, m in h if s >= 16]  # noqa: E731
    assert strip(h_res) == strip(h_full)
    for k in full.nets:
        assert all(torch.equal(a, b) for a, b in zip(full.nets[k].state_dict().values(),
                                                     resumed.nets[k].state_dict().values(), strict=True))


def test_a_non_finite_loss_stops_naming_the_step_and_keeps_the_last_good_checkpoint(tmp_path):
    with pytest.raises(TrainingDiverged, match=r"step 17: loss loss/class is not finite \(nan\).*last\.pt"):
        run(tmp_path, config(), nan_at=17)
    assert torch.load(tmp_path / "ckpt/last.pt", weights_only=False)["step"] == 14


class _Payload:
    """Unpickling this calls open(path, "w"): a checkpoint that would create a file when loaded unsafely."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


@pytest.mark.parametrize("content", ["crafted", "random"])
def test_a_checkpoint_that_is_not_plain_tensors_is_refused_and_runs_nothing(tmp_path, content):
    marker = tmp_path / "pwned"
    last = tmp_path / "ckpt/last.pt"
    last.parent.mkdir(parents=True)
    if content == "crafted":
        torch.save({"step": 3, "method": _Payload(marker)}, last)
    else:
        last.write_bytes(torch.randint(0, 256, (4096,), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
                         .numpy().tobytes())
    with pytest.raises(DataError) as e:
        run(tmp_path, config())
    assert str(last) in str(e.value) and "deleting it restarts this run from scratch" in str(e.value)
    assert "weights_only" not in str(e.value)
    assert not marker.exists()
    assert last.exists()  # nothing is deleted for the user


def test_a_finished_run_resumed_again_reports_the_same_throughput(tmp_path):
    _, first, _ = run(tmp_path, config())
    _, again, history = run(tmp_path, config())
    assert again.resumed_from == 30 and history == [] and again.images_per_s == first.images_per_s > 0


class TwoPhase(Stub):
    """Returns loss/phase2 only from step 7 on: each key is averaged over the steps that returned it."""

    def step(self, batch, progress):
        out = super().step(batch, progress)
        return out | ({"loss/phase2": torch.tensor(float(self.calls))} if self.calls >= 7 else {})


def test_a_key_returned_by_some_steps_is_averaged_over_those_steps(tmp_path):
    cfg = config()
    method = TwoPhase(cfg, cfg.steps)
    samplers = {"source": EndlessSampler(len(X), cfg.batch_size, 0)}
    logged = []

    def draw() -> Batch:
        idx = samplers["source"].next()
        return Batch(X[idx], Y[idx], torch.empty(0))

    fit(method, draw, samplers, cfg, cfg.steps, tmp_path, lambda m: {}, lambda m, s: logged.append((s, m)))
    phase2 = [(s, m["loss/phase2"]) for s, m in logged if "loss/phase2" in m]
    assert phase2[0] == (8, 7.5)  # steps 7 and 8 of the window 5-8
