"""End to end, beside tests/test_pipeline.py (a file of its own, so the two run side by side): the adversarial
and consistency families of methods through every stage of a scratch project."""

from __future__ import annotations

import json

import mlflow
import pytest
import yaml

from tests.conftest import dvc

pytestmark = pytest.mark.slow


def test_the_adversarial_and_consistency_families_run_through_every_stage(project):
    """One `dvc exp run -S pipeline.methods=[...]` (one experiment keeps the suite's stage processes few): CDAN+E,
    MCC, MCD and ADDA, self-ensembling and VADA, then DIRT-T from VADA's model (a DVC dependency), through
    train, evaluate, t-SNE and report, every pick made by another validator (SND)."""
    root, env = project
    adversarial = ["cdan", "mcc", "mcd", "adda"]
    dvc(project, "exp", "run", "-S", f"pipeline.methods=[{','.join(adversarial)},self_ensembling,vada]",
        "-S", "methods.cdan.entropy=true", "-S", "+pipeline.refine.vada=dirt_t", "-S", "evaluate.validator=snd")
    summary = json.loads((root / "reports/summary.json").read_text())
    assert set(summary["methods"]) == {*adversarial, "self_ensembling", "vada", "dirt_t"}
    mlflow.set_tracking_uri(env["MLFLOW_TRACKING_URI"])
    for method, loss in zip(adversarial, ("loss/domain", "loss/mcc", "loss/discrepancy", "loss/mapping"), strict=True):
        details = json.loads((root / "evaluation" / method / "details.json").read_text())
        assert 0 <= details["target"]["test_acc"] <= 1 and details["selection"]["picked_step"] in (20, 40)
        assert (root / f"reports/tsne/{method}_domain.png").stat().st_size > 10_000
        run = mlflow.get_run((root / "models" / method / "mlflow_run_id").read_text())
        assert loss in run.data.metrics and run.data.params["method"] == method
    assert mlflow.get_run((root / "models/cdan/mlflow_run_id").read_text()).data.params["cdan.entropy"] == "True"

    lock = yaml.safe_load((root / "dvc.lock").read_text())["stages"]
    assert any(d["path"] == "models/vada" for d in lock["refine@vada"]["deps"])
    text = (root / "reports/summary.md").read_text()
    assert "snd" in text and "oracle target acc" in text
    for method in summary["methods"]:
        details = json.loads((root / "evaluation" / method / "details.json").read_text())
        sel = details["selection"]
        picked = max(reversed(sel["candidates"]), key=lambda c: c["scores"]["snd"])
        assert sel["validator"] == "snd" and sel["picked_step"] == picked["step"]
        assert details["target"]["test_acc"] == pytest.approx(picked["target_test_acc_report_only"])
        row = summary["methods"][method]
        assert row["picked_step"]["mean"] == sel["picked_step"] and row["oracle_target_acc"]["mean"] >= max(
            row["target_test_acc"]["mean"], row["last_target_acc"]["mean"]) - 1e-6  # two float32 means
    run = mlflow.get_run((root / "models/dirt_t/mlflow_run_id").read_text())
    assert "loss/teacher" in run.data.metrics and run.data.params["train.ema"] == "0.998"
    assert "selection/picked_step" in run.data.metrics
