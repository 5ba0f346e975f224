"""End to end: `dvc repro` runs the data stages as Prefect flows (real server) that log to MLflow."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time

import httpx
import mlflow
import mlflow.pytorch
import pytest
import torch
import yaml

from tests.conftest import ROOT, dvc

pytestmark = pytest.mark.slow


def split_counts(root, domain):
    stats = json.loads((root / "data/processed" / domain / "stats.json").read_text())
    return {s: (v["n"], v["shape"][0]) for s, v in stats["splits"].items()}


def test_default_experiment_then_a_second_repro_is_a_no_op(project, prefect_api):
    root, env = project
    started = time.time()
    out = dvc(project, "repro")
    methods = ("source_only", "dann", "gta")
    for stage in ("download", "preprocess", *(f"{s}@{m}" for s in ("train", "evaluate") for m in methods),
                  "tsne", "report"):
        assert f"Running stage '{stage}'" in out
    assert split_counts(root, "mnist") == {"train": (60000, 3), "test": (10000, 3)}
    assert split_counts(root, "mnist_m") == {"train": (30000, 3), "test": (9001, 3)}  # the mirror's subset

    again = dvc(project, "repro")
    assert "Running stage" not in again and "up to date" in again

    # The stages ran as flows on the Prefect server.
    runs = httpx.post(f"{prefect_api}/flow_runs/filter", json={}).json()
    names = {httpx.get(f"{prefect_api}/flows/{r['flow_id']}").json()["name"] for r in runs
             if r["state_type"] == "COMPLETED"}
    assert {"download", "preprocess", "train", "evaluate", "tsne", "report"} <= names

    # And each logged a run to MLflow, with params, metrics, tags and the sample grids.
    mlflow.set_tracking_uri(env["MLFLOW_TRACKING_URI"])
    found = mlflow.search_runs(experiment_names=["mnist_mnistm"], output_format="list")
    by_stage = {r.data.tags["stage"]: r for r in found if r.info.start_time / 1000 >= started - 1}
    # evaluate and t-SNE join train runs; every stage run of this repro is a child of one pipeline run
    assert set(by_stage) == {"download", "preprocess", "train", "report", "pipeline"}
    parent = by_stage["pipeline"].info.run_id
    children = [r for r in found if r.data.tags.get("mlflow.parentRunId") == parent]
    assert sorted(r.data.tags["stage"] for r in children) == ["download", "preprocess", "report", *["train"] * 3]
    assert by_stage["pipeline"].data.tags["params_hash"] == by_stage["report"].data.tags["params_hash"]
    inputs = {(d.dataset.name, {t.key: t.value for t in d.tags}["mlflow.data.context"])
              for d in by_stage["train"].inputs.dataset_inputs}
    assert inputs == {("mnist@32px", "source"), ("mnist_m@32px", "target")}
    pre = by_stage["preprocess"]
    assert pre.data.params["source"] == "mnist" and pre.data.params["recipe.channels"] == "3"
    assert pre.data.metrics["data/mnist_m/test/n"] == 9001
    assert pre.data.tags["params_hash"] and pre.data.tags["git_commit"] != "unknown"
    artifacts = {a.path for a in mlflow.artifacts.list_artifacts(run_id=pre.info.run_id, artifact_path="data/mnist")}
    assert artifacts == {"data/mnist/samples.png", "data/mnist/stats.json"}
    assert by_stage["download"].data.metrics["download/files"] == 5


def test_train_stages_leave_mlflow_runs_with_params_metrics_and_model(project):
    root, env = project
    mlflow.set_tracking_uri(env["MLFLOW_TRACKING_URI"])
    runs = mlflow.search_runs(experiment_names=["mnist_mnistm"], filter_string="tags.stage = 'train'",
                              output_format="list")
    by_method = {r.data.tags["method"]: r for r in runs}
    assert set(by_method) == {"source_only", "dann", "gta"}
    for method, run in by_method.items():
        assert (root / "models" / method / "mlflow_run_id").read_text() == run.info.run_id
        assert run.info.run_name == f"{method}-seed0" and run.data.tags["seed"] == "0"
        assert run.data.params["train.steps"] == "40"
        history = mlflow.MlflowClient().get_metric_history(run.info.run_id, "loss/class")
        assert [m.step for m in history] == [10, 20, 30, 40]
        assert 0 <= run.data.metrics["monitor/target_test_acc"] <= 1 and run.data.metrics["selected/step"] == 40
        metrics = json.loads((root / "models" / method / "metrics.json").read_text())
        assert metrics["final"]["source/val_acc"] == pytest.approx(run.data.metrics["source/val_acc"])
        model = mlflow.pytorch.load_model(f"runs:/{run.info.run_id}/model")
        assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 10)
        names = {a.path for a in mlflow.artifacts.list_artifacts(run_id=run.info.run_id)}
        assert {"model.pt", "metrics.json", "evaluation", "tsne"} <= names
    assert "loss/domain" in by_method["dann"].data.metrics and "loss/D" in by_method["gta"].data.metrics
    assert "loss/domain" not in by_method["source_only"].data.metrics


def test_evaluation_tsne_and_report_are_outputs_metrics_and_mlflow_artifacts(project):
    root, env = project
    mlflow.set_tracking_uri(env["MLFLOW_TRACKING_URI"])
    summary = json.loads((root / "reports/summary.json").read_text())
    assert set(summary["methods"]) == {"source_only", "dann", "gta"}
    text = (root / "reports/summary.md").read_text()
    for method, row in summary["methods"].items():
        details = json.loads((root / "evaluation" / method / "details.json").read_text())
        assert row["target_test_acc"]["mean"] == details["target"]["test_acc"]
        assert f"| {method} | {details['target']['test_acc']:.4f} |" in text
        assert (root / "reports/curves" / f"{method}.png").stat().st_size > 10_000
        for png in (f"evaluation/{method}/confusion_target.png", f"reports/tsne/{method}_domain.png",
                    f"reports/tsne/{method}_class.png"):
            assert (root / png).stat().st_size > 10_000, png
        run_id = (root / "models" / method / "mlflow_run_id").read_text()
        run = mlflow.get_run(run_id)
        assert run.data.metrics["target/test_acc"] == pytest.approx(details["target"]["test_acc"])
        assert 0 <= run.data.metrics["domain/pad"] <= 2
        logged = {a.path for a in mlflow.artifacts.list_artifacts(run_id=run_id, artifact_path="evaluation")}
        assert "evaluation/confusion_target.png" in logged
    assert "0.7666" in text  # DANN's published MNIST→MNIST-M figure sits beside ours
    assert (root / "reports/tsne/all_methods.png").stat().st_size > 30_000

    shown = json.loads(dvc(project, "metrics", "show", "--json"))
    files = next(iter(shown.values()))["data"]
    for method in summary["methods"]:
        acc = files[f"evaluation/{method}/metrics.json"]["data"]["target"]["test_acc"]
        assert acc == summary["methods"][method]["target_test_acc"]["mean"]
    dvc(project, "plots", "show", "-o", "plots_html")
    assert (root / "plots_html/index.html").exists()


def test_a_killed_train_stage_resumes_to_the_uninterrupted_result(project):
    """SIGKILL the real stage process after its first checkpoint; re-running it must resume, continue the
    same MLflow run, and end with the metrics of an uninterrupted run."""
    root, env = project
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["train"].update(steps=400, checkpoint_every=20, log_every=20, eval_every=200)
    (root / "params_kill.yaml").write_text(yaml.safe_dump(params))
    cmd = [sys.executable, "-m", "flows.train", "--method", "source_only", "--params", "params_kill.yaml"]
    out = root / "models/source_only/metrics.json"
    subprocess.run(cmd, cwd=root, env=env, check=True, capture_output=True)
    results = lambda: {k: v for k, v in json.loads(out.read_text()).items() if k != "images_per_s"}  # noqa: E731
    reference = results()
    shutil.rmtree(root / "checkpoints")

    proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while not list((root / "checkpoints").rglob("last.pt")):
        assert proc.poll() is None and time.monotonic() < deadline, "the stage ended before its first checkpoint"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    last = next((root / "checkpoints").rglob("last.pt"))
    killed_at = torch.load(last, weights_only=False)["step"]
    assert killed_at < 400
    run_id = (last.parent / "mlflow_run_id").read_text()

    done = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    assert results() == reference
    assert (root / "models/source_only/mlflow_run_id").read_text() == run_id
    mlflow.set_tracking_uri(env["MLFLOW_TRACKING_URI"])
    assert mlflow.get_run(run_id).info.status == "FINISHED"


@pytest.mark.parametrize("experiment, expected", [
    ("photo_art", {"pacs_photo": {"all": (1670, 3)}, "pacs_art_painting": {"all": (2048, 3)}}),
    ("mnist_usps", {"mnist": {"train": (60000, 1), "test": (10000, 1)},
                    "usps": {"train": (7291, 1), "test": (2007, 1)}}),
])
def test_other_experiments_are_a_params_change(project, experiment, expected):
    root, _ = project
    # gta takes 32×32 only: the PACS experiment leaves it out, as the README shows
    dvc(project, "exp", "run", "-S", f"experiment={experiment}", "-S", "pipeline.methods=[source_only,dann]",
        "preprocess")
    for domain, counts in expected.items():
        assert split_counts(root, domain) == counts
    size = yaml.safe_load((root / "params.yaml").read_text())["experiments"][experiment]["recipe"]["image_size"]
    stats = json.loads((root / "data/processed" / next(iter(expected)) / "stats.json").read_text())
    assert all(v["shape"][1:] == [size, size] for v in stats["splits"].values())


def test_bad_params_fail_before_any_work(tmp_path):
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["data"]["val_fraction"] = 2
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    done = subprocess.run([sys.executable, "-m", "flows.download", "--params", str(tmp_path / "params.yaml")],
                          capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert done.returncode == 2
    assert "data.val_fraction: Input should be less than 1 (got 2)" in done.stderr
    assert "Starting temporary server" not in done.stdout + done.stderr
