"""The report and sweep bookkeeping: every method listed, mean ± std over seeds, picked / last / oracle, the
validator's choice and its regret, heatmaps."""

from __future__ import annotations

import json
import statistics

import numpy as np
import pytest
import yaml
from PIL import Image

from tests.conftest import ROOT
from uda import sweep
from uda.config import parse_params
from uda.report import markdown, summarize


def fake_details(acc: float, risk: float, seed: int, validator: str = "dev") -> dict:
    """An evaluation result with the fields the report and sweep read (values chosen by the test): the
    validator picks step 20 (target accuracy `acc`), the oracle is step 10 (acc + 0.05), the last is 30."""
    candidates = [{"step": 10, "scores": {"dev": -risk - 1}, "target_test_acc_report_only": acc + 0.05},
                  {"step": 20, "scores": {"dev": -risk}, "target_test_acc_report_only": acc},
                  {"step": 30, "scores": {"dev": -risk - 2}, "target_test_acc_report_only": acc - 0.1}]
    return {"target": {"test_acc": acc}, "source": {"test_acc": 0.99 - seed / 100},
            "domain": {"classifier_acc": 0.8, "pad": 1.2},
            "selection": {"validator": validator, "picked_step": 20, "last_step": 30, "oracle_step_report_only": 10,
                          "candidates": candidates}}


@pytest.fixture
def params():
    return parse_params(yaml.safe_load((ROOT / "params.yaml").read_text()))


def test_report_lists_every_method_with_mean_and_std_over_seeds(params):
    accs = {"source_only": [0.5, 0.6, 0.55], "dann": [0.8, 0.82, 0.78], "gta": [0.7]}
    evaluations = {m: [fake_details(a, 1.0, s) for s, a in enumerate(v)] for m, v in accs.items()}
    summary = summarize(params, evaluations)
    assert list(summary["methods"]) == ["source_only", "dann", "gta"]
    for m, values in accs.items():
        stat = summary["methods"][m]["target_test_acc"]
        assert stat["mean"] == pytest.approx(statistics.mean(values)) and stat["n"] == len(values)
    text = markdown(summary)
    assert f"| dann | {statistics.mean(accs['dann']):.4f} ± {statistics.stdev(accs['dann']):.4f} |" in text
    assert "| gta | 0.7000 |" in text  # one seed: no ± shown
    assert "| 20 | 30 | 0.6000 | 10 | 0.7500 |" in text  # gta: picked step, last step and acc, the oracle's
    assert summary["methods"]["gta"]["oracle_target_acc"]["mean"] == pytest.approx(0.75)
    assert "0.7666" in text and "0.5225" in text  # DANN JMLR 2016 Table 2, MNIST → MNIST-M


def test_sweep_points_aggregate_the_validators_choice_and_its_regret(tmp_path):
    grid = {"train.optimizer.lr": [0.01, 0.1], "train.optimizer.name": ["sgd", "adam"]}
    pts = sweep.points(grid, [0, 1])
    assert len(pts) == 8 and {p["train.seed"] for p in pts} == {0, 1}
    # DEV risk is lowest for lr=0.1/adam, while target accuracy is highest for lr=0.01/sgd:
    risk = {(0.01, "sgd"): 3.0, (0.01, "adam"): 2.0, (0.1, "sgd"): 1.5, (0.1, "adam"): 1.0}
    acc = {(0.01, "sgd"): 0.9, (0.01, "adam"): 0.8, (0.1, "sgd"): 0.7, (0.1, "adam"): 0.6}
    results = [{"point": p, "details": {"dann": fake_details(acc[key] + p["train.seed"] / 100, risk[key],
                                                            p["train.seed"])}}
               for p in pts for key in [(p["train.optimizer.lr"], p["train.optimizer.name"])]]
    summary, paths = sweep.write(tmp_path, "t", grid, results)
    cell = summary["dann"]["settings"]["train.optimizer.lr=0.01, train.optimizer.name=sgd"]
    assert cell["target_test_acc"]["mean"] == pytest.approx(0.905) and cell["target_test_acc"]["n"] == 2
    assert cell["target_test_acc"]["std"] == pytest.approx(statistics.stdev([0.9, 0.91]))
    chosen = "train.optimizer.lr=0.1, train.optimizer.name=adam"
    assert summary["dann"]["choice"] == chosen  # not the best accuracy
    assert summary["dann"]["oracle_report_only"] == "train.optimizer.lr=0.01, train.optimizer.name=sgd"
    assert summary["dann"]["regret_report_only"] == pytest.approx(0.905 - 0.605)
    text = (tmp_path / "sweep.md").read_text()
    assert "**(the validator's choice)**" in text and "| dann | dev | " + chosen in text and "| 0.3000 |" in text
    heat = tmp_path / "dann_target_test_acc.png"
    assert heat in paths and np.asarray(Image.open(heat).convert("L")).std() > 5


def test_a_sweep_with_validator_last_names_no_choice(tmp_path):
    """`evaluate.validator: last` scores nothing: the sweep still writes its table, and chooses nothing."""
    grid = {"train.optimizer.lr": [0.01, 0.1]}
    results = [{"point": p, "details": {"dann": fake_details(0.5 + p["train.optimizer.lr"], 1.0, 0, "last")}}
               for p in sweep.points(grid, [0])]
    summary, _ = sweep.write(tmp_path, "t", grid, results)
    assert summary["dann"]["choice"] is None and summary["dann"]["regret_report_only"] is None
    assert summary["dann"]["settings"]["train.optimizer.lr=0.1"]["target_test_acc"]["mean"] == pytest.approx(0.6)
    text = (tmp_path / "sweep.md").read_text()
    assert "validator's choice)**" not in text and "| – |" in text


def test_a_point_that_did_not_complete_is_named_and_not_counted(tmp_path):
    grid = {"train.optimizer.lr": [0.01, 0.1]}
    pts = sweep.points(grid, [0, 1])
    results = [{"point": p, "details": {"dann": fake_details(0.5, 1.0, p["train.seed"])}} for p in pts[1:]]
    failed = [{"index": 0, "point": pts[0], "reason": "CRASHED: no heartbeat"}]
    summary, _ = sweep.write(tmp_path, "t", grid, results, failed)
    assert summary["dann"]["settings"]["train.optimizer.lr=0.01"]["target_test_acc"]["n"] == 1  # seed 1 only
    assert json.loads((tmp_path / "sweep.json").read_text())["failed"] == failed
    assert "**Not counted** (did not complete): train.optimizer.lr=0.01, seed 0: CRASHED" in (
        tmp_path / "sweep.md").read_text()
