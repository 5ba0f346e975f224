"""Training on small real subsets: losses fall, seeds reproduce, resume is exact, the NaN guard fires."""

from __future__ import annotations

import json

import pytest
import torch
import yaml

from tests.conftest import ROOT, TEST_THREADS, cut_budget
from uda.download import fetch_domain
from uda.methods import METHODS
from uda.preprocess import preprocess_domain
from uda.runs import parse
from uda.trainer import TrainingDiverged
from uda.training import train

pytestmark = pytest.mark.slow  # real-data training: minutes in all


@pytest.fixture(scope="module")
def data_root(mirror, tmp_path_factory):
    """USPS → MNIST at 32×32, one channel; a seeded 1,500-image subset per split keeps it quick."""
    root = tmp_path_factory.mktemp("data")
    params = make_params(root).params
    for domain in params.exp.domains:
        fetch_domain(domain, params.data.raw_dir, mirror, progress=False)
        preprocess_domain(domain, params.exp.recipe, params.data)
    return root


def make_params(root, methods: dict | None = None, **train):
    """USPS → MNIST on the 1,500-image subsets in `root`, resolved into run specs."""
    raw = cut_budget(yaml.safe_load((ROOT / "params.yaml").read_text()))
    for name, overrides in (methods or {}).items():
        raw["methods"][name] = {**(raw["methods"].get(name) or {}), **overrides}
    raw["experiment"] = "usps_mnist"
    raw["data"].update(root=str(root), max_per_split=1500)
    raw["train"].update({"steps": 60, "batch_size": 32, "log_every": 10, "eval_every": 20, "checkpoint_every": 20,
                         "threads": TEST_THREADS, "device": "cpu", **train})
    return parse(raw)


def start_model(params, method, tmp_path):
    """The trained model a refining method (dirt_t) starts from: its start method's, trained first."""
    start = METHODS[method].starts_from
    if start is None:
        return None
    out = tmp_path / f"start-{start}" / "out"
    if not (out / "model.pt").exists():
        train(params.run(start), out, tmp_path / f"start-{start}" / "ckpt")
    return out


def run(params, method, tmp_path, name="run", log=None):
    history = []

    def record(metrics, step):
        history.append((step, dict(metrics)))
        if log:
            log(metrics, step)

    trained, result = train(params.run(method), tmp_path / name / "out", tmp_path / name / "ckpt", log=record,
                            start=start_model(params, method, tmp_path))
    return trained, result, history


# A weight average of 0.998 (VADA, DIRT-T) or 0.99 (self-ensembling's teacher) still remembers the random
# start after 60 steps: these tests of learning look at a shorter average.
SHORT_AVERAGE = {m: {"train": {**(yaml.safe_load((ROOT / "params.yaml").read_text())["methods"][m].get("train") or {}),
                               "ema": 0.8}} for m in ("vada", "dirt_t", "self_ensembling")}


@pytest.mark.parametrize("method", sorted(METHODS))
def test_each_method_learns(data_root, tmp_path, method):
    _, result, history = run(make_params(data_root, methods=SHORT_AVERAGE, optimizer={"lr": 0.02}), method, tmp_path)
    key = "loss/entropy" if method == "dirt_t" else "loss/class"  # dirt_t sees no source labels
    losses = [m[key] for _, m in history if key in m]
    # adda pre-trains on source for the first half only (then C is fixed and its encoder adapts)
    learnt = losses[2] if method == "adda" else losses[-1]
    # dirt_t refines a model that already fits: its target entropy falls more slowly than a fresh loss
    assert len(losses) == 6 and learnt < (0.8 if method == "dirt_t" else 0.6) * losses[0]
    assert result.final["source/val_acc"] > 0.5
    assert 0 <= result.final["monitor/target_test_acc"] <= 1
    if method == "dann":
        domain = [m for _, m in history if "loss/domain" in m]
        assert all(0 <= m["train/domain_acc"] <= 1 and m["loss/domain"] > 0 for m in domain)
        assert domain[0]["schedule/lambda"] < domain[-1]["schedule/lambda"] < 1


@pytest.mark.parametrize("gta", [{"embedder": "dig2"}, {"discriminators": 2}], ids=["DigF2-DigC2", "two-D"])
def test_each_gta_variant_learns(data_root, tmp_path, gta):
    params = make_params(data_root, methods={"gta": gta}, steps=40, eval_every=40, monitor_target=False)
    _, result, history = run(params, "gta", tmp_path)
    losses = [m["loss/class"] for _, m in history if "loss/class" in m]
    assert losses[-1] < 0.6 * losses[0] and result.final["source/val_acc"] > 0.5
    if "discriminators" in gta:
        assert all(m["loss/D_t"] > 0 for _, m in history if "loss/D" in m)


def _weights(method):
    return {f"{k}.{p}": t.clone() for k, n in method.nets.items() for p, t in n.state_dict().items()}


def test_same_seed_same_result_and_another_seed_differs(data_root, tmp_path):
    params = make_params(data_root, steps=30)
    a, ra, _ = run(params, "dann", tmp_path, "a")
    b, rb, _ = run(params, "dann", tmp_path, "b")
    assert ra.final == rb.final
    assert all(torch.equal(t, _weights(b)[k]) for k, t in _weights(a).items())
    _, rc, _ = run(make_params(data_root, steps=30, seed=1), "dann", tmp_path, "c")
    assert rc.final != ra.final


class _Killed(Exception):
    pass


@pytest.mark.parametrize("method", sorted(METHODS))
def test_resume_after_a_kill_equals_an_uninterrupted_run(data_root, tmp_path, method):
    # checkpoints not a multiple of log_every (10); GTA, ~25× a DANN step, resumes exactly at any batch size
    params = make_params(data_root, checkpoint_every=15, batch_size=8 if method == "gta" else 32)
    full, r_full, h_full = run(params, method, tmp_path, "full")

    def kill_at_50(metrics, step):
        if step == 50:
            raise _Killed  # dies between the checkpoints at 45 and 60

    with pytest.raises(_Killed):
        run(params, method, tmp_path, "killed", log=kill_at_50)
    resumed, r_res, history = run(params, method, tmp_path, "killed")
    assert r_res.resumed_from == 45 and history[0][0] == 50
    assert r_res.final == r_full.final
    # the loss averages logged after the resume (over steps 41-50 at step 50) equal the uninterrupted run's
    losses = lambda h: [(s, {k: v for k, v in m.items() if k.startswith("loss/")}) for s, m in h if s >= 50]  # noqa: E731
    assert losses(history) == losses(h_full) and losses(history)[0][1]
    assert all(torch.equal(t, _weights(resumed)[k]) for k, t in _weights(full).items())
    out = json.loads((tmp_path / "killed/out/metrics.json").read_text())
    assert out["final"] == r_full.final


@pytest.mark.parametrize("method", ["dann", "gta", "cdan", "mcc", "mcd", "adda", "vada", "dirt_t", "self_ensembling"])
def test_nan_guard_names_step_and_loss_and_keeps_the_last_good_checkpoint(data_root, tmp_path, monkeypatch, method):
    cls = METHODS[method]
    original = cls.step

    def poisoned(self, batch, progress):
        if round(progress * 60) == 24:  # the 25th step: corrupt a weight, as a diverging run would
            with torch.no_grad():
                next(self.nets[self.eval_nets[-1]].parameters()).fill_(float("nan"))  # C, or MCD's C2
        return original(self, batch, progress)

    monkeypatch.setattr(cls, "step", poisoned)
    with pytest.raises(TrainingDiverged, match=r"step 25: loss loss/\w+ is not finite \(nan\).*last.pt"):
        run(make_params(data_root), method, tmp_path)
    state = torch.load(next((tmp_path / "run/ckpt").rglob("last.pt")), weights_only=False)
    assert state["step"] == 20
    assert all(torch.isfinite(t).all() for net in state["method"]["nets"].values() for t in net.values()
               if t.is_floating_point())


def test_best_source_val_selection_never_reads_target_labels(data_root, tmp_path):
    params = make_params(data_root, select="best_source_val", monitor_target=False)
    _, result, history = run(params, "source_only", tmp_path)
    vals = {step: m["source/val_acc"] for step, m in history if "source/val_acc" in m}
    assert all("monitor/target_test_acc" not in m for _, m in history)
    assert result.selected_step == max(vals, key=lambda s: (vals[s], -s))
    assert result.selected["source/val_acc"] == max(vals.values())


def test_a_train_stage_that_fails_while_writing_leaves_its_previous_outputs_whole(data_root, tmp_path):
    out = tmp_path / "run/out"
    run(make_params(data_root, steps=20, eval_every=10), "source_only", tmp_path)
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}

    def fail_while_writing_history(tmp, method, result):
        (tmp / "history.json").write_text("{")  # half-written, then the disk fills up
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space left"):
        train(make_params(data_root, steps=30, eval_every=10).run("source_only"), out, tmp_path / "run/ckpt",
              finish=fail_while_writing_history)
    after = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert after == before and not list(out.parent.glob(".out.*"))
