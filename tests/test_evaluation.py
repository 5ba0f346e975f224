"""Evaluation on small real data: metrics agree with each other, the domain gap and the validator behave."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch
from PIL import Image

from tests.test_training import data_root, make_params  # noqa: F401  (data_root is a fixture)
from uda.domain_gap import domain_classifier_error, proxy_a_distance
from uda.evaluation import evaluate, pick, validator_inputs
from uda.results import flat_metrics, target_acc_at
from uda.runtime import load_role, load_trained, sample
from uda.training import train
from uda.validators import VALIDATORS, score_all
from uda.validators.dev import dev_risk


@pytest.fixture(scope="module")
def trained(data_root, tmp_path_factory):  # noqa: F811
    root = tmp_path_factory.mktemp("run")
    params = make_params(data_root, steps=60, eval_every=20)
    train(params.run("dann"), root / "models/dann", root / "ckpt")
    return params, root


def not_blank(path):
    pixels = np.asarray(Image.open(path).convert("L"))
    return pixels.std() > 5


def test_metrics_lie_in_range_and_agree(trained):
    params, root = trained
    result = evaluate(params.run("dann"), params.params.evaluate, root / "models/dann", root / "eval")
    assert json.loads((root / "eval/details.json").read_text()) == json.loads(json.dumps(result))
    headline = json.loads((root / "eval/metrics.json").read_text())
    assert headline["target"]["test_acc"] == result["target"]["test_acc"]
    for role, n in (("source", 1500), ("target", 1500)):  # the subsets of USPS test and MNIST test
        r = result[role]
        cm = np.array(r["confusion"])
        assert cm.sum() == r["n"] == n and 0 <= r["test_acc"] <= 1
        assert r["test_acc"] == pytest.approx(cm.trace() / n)
        assert r["test_acc"] == pytest.approx(sum(a * c for a, c in zip(r["class_acc"].values(), cm.sum(1),
                                                                       strict=True)) / n)
        with open(root / f"eval/predictions_{role}.csv") as f:
            rows = list(csv.DictReader(f))
        assert len(rows) == n and sum(row["actual"] == row["predicted"] for row in rows) == cm.trace()
        assert not_blank(root / f"eval/confusion_{role}.png")
    assert result["source"]["test_acc"] > result["target"]["test_acc"] > 0.1  # USPS → MNIST after 60 steps
    assert 0 <= result["domain"]["pad"] <= 2
    assert result["domain"]["pad"] == pytest.approx(2 * (1 - 2 * (1 - result["domain"]["classifier_acc"])))
    sel = result["selection"]
    assert [c["step"] for c in sel["candidates"]] == [20, 40, 60] and sel["last_step"] == 60
    assert set(sel["candidates"][0]["scores"]) == set(VALIDATORS)
    default = params.params.evaluate.validator  # params.yaml's, chosen by benchmarks/validators.py
    assert sel["validator"] == default and sel["picked_step"] == pick(sel["candidates"], default)["step"]
    # the model reported is the picked snapshot
    assert result["target"]["test_acc"] == pytest.approx(target_acc_at(result, sel["picked_step"]))
    assert target_acc_at(result, sel["oracle_step_report_only"]) == max(
        c["target_test_acc_report_only"] for c in sel["candidates"])
    flat = flat_metrics(result)
    assert flat["target/test_acc"] == result["target"]["test_acc"] and "target/class_acc/3" in flat


def test_proxy_a_distance_is_near_2_for_separable_and_near_0_for_identical_features():
    g = np.random.default_rng(0)
    a, b = g.normal(size=(600, 16)), g.normal(size=(600, 16))
    assert proxy_a_distance(domain_classifier_error(a, b + 3.0)) > 1.9
    assert proxy_a_distance(domain_classifier_error(a, b)) < 0.3


def test_dev_risk_is_the_plain_mean_when_the_domains_match():
    losses = np.random.default_rng(1).exponential(size=500)
    assert dev_risk(losses, np.ones(500)) == pytest.approx(losses.mean())


def test_validator_ranks_a_broken_checkpoint_below_a_good_one(trained):
    params, root = trained
    good = torch.load(root / "models/dann/snapshots/step_000060.pt", weights_only=True)
    broken = {"step": 61, "nets": {k: dict(v) for k, v in good["nets"].items()}}
    # The output layer's rows shifted by one class: every prediction becomes the next label.
    broken["nets"]["C"] = {p: t.roll(1, 0) if t.shape[:1] == (10,) else t for p, t in good["nets"]["C"].items()}
    torch.save(broken, root / "models/dann/snapshots/step_000061.pt")
    try:
        sel = evaluate(params.run("dann"), params.params.evaluate, root / "models/dann",
                       root / "eval_broken")["selection"]
    finally:
        (root / "models/dann/snapshots/step_000061.pt").unlink()
    scores = {c["step"]: c["scores"] for c in sel["candidates"]}
    # those that read source labels see it; the target-only ones cannot tell a relabelling of the classes
    reading_source = ("source_val", "dev", "reverse")
    for name in reading_source:
        assert scores[61][name] < scores[60][name], name
        assert pick(sel["candidates"], name)["step"] != 61, name
    # a permutation of the classes leaves every target-only score where it was: their known blind spot
    for name in set(VALIDATORS) - set(reading_source):
        assert scores[61][name] == pytest.approx(scores[60][name], rel=1e-4, abs=1e-6), name


def test_no_validator_can_read_target_labels(trained):
    """The same model scored with the target split's labels poisoned: every score is unchanged."""
    params, root = trained
    spec = params.run("dann")
    method = load_trained(spec, root / "models/dann", torch.device("cpu"))
    data = {r: load_role(spec, r, torch.device("cpu")) for r in ("source", "source_val", "target")}
    data |= {"source_idx": sample(len(data["source"]), 500, 0), "target_idx": sample(len(data["target"]), 500, 1),
             "val_idx": sample(len(data["source_val"]), 500, 2)}
    clean = score_all(*validator_inputs(method, data, 500), 0)
    data["target"].labels = torch.randint(0, 10, data["target"].labels.shape)  # poisoned
    assert score_all(*validator_inputs(method, data, 500), 0) == clean


def test_an_evaluation_that_fails_while_writing_leaves_its_previous_outputs_whole(trained, monkeypatch):
    import uda.evaluation

    params, root = trained
    out = root / "eval_whole"
    evaluate(params.run("dann"), params.params.evaluate, root / "models/dann", out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    calls = []

    def fail_on_second(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return save_confusion(*args, **kwargs)

    save_confusion = uda.evaluation.save_confusion
    monkeypatch.setattr(uda.evaluation, "save_confusion", fail_on_second)
    with pytest.raises(OSError):
        evaluate(params.run("dann"), params.params.evaluate, root / "models/dann", out)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
