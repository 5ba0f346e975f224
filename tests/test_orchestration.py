"""Orchestration with the real servers: `uda services`, the work pool and gpu limit, the nightly deployment
run by a worker, a sweep with parent/child MLflow runs, and the MLflow UI in a headless browser."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.conftest import ROOT, free_port, make_project

pytestmark = pytest.mark.slow
ARTIFACTS = ROOT / "test-artifacts"  # screenshots a person can look at after the run (git-ignored)


@pytest.fixture(scope="module")
def services(tmp_path_factory, mirror):
    """A scratch project (source-only, 1,000 images per split) with `uda services` running on loopback."""
    root = make_project(tmp_path_factory.mktemp("orchestrated"), pipeline={"methods": ["source_only"]},
                        data={"max_per_split": 1000})
    env = {k: v for k, v in os.environ.items() if k not in ("PREFECT_API_URL", "MLFLOW_TRACKING_URI")}
    env |= {"UDA_DATA_MIRROR": str(mirror), "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}",
            "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    for cmd in (["git", "add", "-A"], ["git", "commit", "-qm", "scratch"]):
        subprocess.run(cmd, cwd=root, env=env, check=True)
    proc = subprocess.Popen([sys.executable, "-m", "uda.cli", "services", "--prefect-port", str(free_port()),
                             "--mlflow-port", str(free_port())], cwd=root, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 180
        while not (root / ".services.json").exists():
            assert proc.poll() is None, proc.stdout.read()
            assert time.monotonic() < deadline, "services did not start within 180 s"
            time.sleep(0.5)
        record = json.loads((root / ".services.json").read_text())
        env |= {"PREFECT_API_URL": record["prefect_api"], "MLFLOW_TRACKING_URI": record["mlflow"]}
        yield root, env, record
    finally:
        proc.terminate()
        proc.wait(60)


def run(root, env, *args, timeout=900):
    done = subprocess.run([sys.executable, *args], cwd=root, env=env, capture_output=True, text=True,
                          timeout=timeout)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


def get(url):
    with urllib.request.urlopen(url, timeout=10) as r:
        return r.status, r.read()


def stop_group(proc: subprocess.Popen) -> None:
    """Ctrl-C to the worker's process group; SIGKILL if it has not exited a minute later. (A Prefect worker
    sometimes does not return from SIGTERM while it is between polls: what the test checks is the run.)"""
    os.killpg(proc.pid, signal.SIGINT)
    try:
        proc.wait(60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


def test_services_answer_on_loopback_and_the_pipeline_would_use_them(services):
    root, env, record = services
    assert all(record[k].startswith("http://127.0.0.1:") for k in ("prefect_api", "mlflow"))
    assert get(f"{record['prefect_api']}/health")[0] == 200 and get(f"{record['mlflow']}/health")[0] == 200
    clean = {k: v for k, v in env.items() if k not in ("PREFECT_API_URL", "MLFLOW_TRACKING_URI")}
    shown = run(root, clean, "-c", "import os, tasks; print(os.environ['PREFECT_API_URL'], "
                                   "os.environ['MLFLOW_TRACKING_URI'])")
    assert shown.split() == [record["prefect_api"], record["mlflow"]]


def test_nightly_deployment_runs_through_a_worker_into_mlflow(services):
    import httpx
    from mlflow.tracking import MlflowClient

    root, env, record = services
    api = httpx.Client(base_url=record["prefect_api"], timeout=30)  # Prefect's REST API, as any client sees it
    assert "'concurrency_limit': 1" in run(root, env, "-m", "flows.deploy", "setup")  # no GPU here: 1
    assert api.get("/concurrency_limits/tag/gpu").json()["concurrency_limit"] == 1
    assert api.get("/work_pools/uda-process").json()["type"] == "process"
    run(root, env, "-m", "flows.deploy", "register")
    nightly = api.get("/deployments/name/pipeline/nightly").json()
    assert [s["schedule"]["cron"] for s in nightly["schedules"]] == ["0 2 * * *"]
    assert api.get("/deployments/name/sweep/on-demand").json()["parameters"]["seeds"] == [0, 1, 2]
    worker = subprocess.Popen([sys.executable, "-m", "prefect", "worker", "start", "--pool", "uda-process"],
                              cwd=root, env=env | {"UDA_PROJECT_DIR": str(root)},
                              stdout=open(root / "worker.log", "w"), stderr=subprocess.STDOUT,
                              start_new_session=True)
    try:
        flow_run = api.post(f"/deployments/{nightly['id']}/create_flow_run", json={}).json()
        deadline = time.monotonic() + 900
        while (state := api.get(f"/flow_runs/{flow_run['id']}").json()["state"])["type"] not in (
                "COMPLETED", "FAILED", "CRASHED", "CANCELLED"):
            assert time.monotonic() < deadline, "the triggered run did not finish within 15 min"
            time.sleep(2)
        assert state["type"] == "COMPLETED", f"{state}\n" + (root / "worker.log").read_text()[-3000:]
    finally:
        stop_group(worker)
    mlflow = MlflowClient(record["mlflow"])
    exp = mlflow.get_experiment_by_name("mnist_mnistm")
    runs = {r.data.tags["stage"]: r for r in mlflow.search_runs([exp.experiment_id])}
    assert {"download", "preprocess", "train", "report"} <= set(runs)
    train = runs["train"]
    assert 0 <= train.data.metrics["target/test_acc"] <= 1 and "loss/class" in train.data.metrics
    names = {a.path for a in mlflow.list_artifacts(train.info.run_id)}
    assert {"model.pt", "evaluation", "tsne"} <= names
    assert (root / "reports/summary.md").exists()


def not_blank(path: Path) -> bool:
    return np.asarray(Image.open(path).convert("L")).std() > 5


def test_a_sweep_through_uda_services_gives_a_heatmap_and_parent_child_runs(services):
    """A one-worker sweep on the project's own servers (tests/test_fanout.py runs two workers, faults and
    re-runs); its runs are what the browser tests below look at."""
    from mlflow.tracking import MlflowClient

    root, env, record = services
    before = (root / "params.yaml").read_text()
    run(root, env, "-m", "flows.sweep", "--name", "grid", "--grid", "train.optimizer.lr=0.02,0.05")
    assert (root / "params.yaml").read_text() == before
    out = root / "reports/sweeps/grid"
    assert not_blank(out / "source_only_target_test_acc.png") and not_blank(out / "source_only_validator_score.png")
    summary = json.loads((out / "sweep.json").read_text())
    settings = summary["summary"]["source_only"]["settings"]
    assert len(settings) == 2 and summary["summary"]["source_only"]["choice"] in settings
    mlflow = MlflowClient(record["mlflow"])
    exp = mlflow.get_experiment_by_name("mnist_mnistm")
    parent = mlflow.search_runs([exp.experiment_id], "tags.stage = 'sweep'")[0]
    assert {a.path for a in mlflow.list_artifacts(parent.info.run_id, "sweep")} >= {
        "sweep/sweep.md", "sweep/source_only_target_test_acc.png"}
    children = mlflow.search_runs([exp.experiment_id], f"tags.`mlflow.parentRunId` = '{parent.info.run_id}' "
                                                       "and tags.stage = 'train'")
    points = {json.loads(c.data.tags["sweep_point"])["train.optimizer.lr"] for c in children}
    assert len(children) == 2 and points == {0.02, 0.05}
    assert all("target/test_acc" in c.data.metrics for c in children)


def test_mlflow_ui_compares_two_runs_in_a_headless_browser(services):
    from mlflow.tracking import MlflowClient
    from playwright.sync_api import sync_playwright

    root, env, record = services
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    assert chromium, "no chromium: scripts/setup.sh installs Debian's package (apt-get install chromium)"
    mlflow = MlflowClient(record["mlflow"])
    exp = mlflow.get_experiment_by_name("mnist_mnistm")
    runs = mlflow.search_runs([exp.experiment_id], "tags.stage = 'train'", max_results=2)
    assert len(runs) == 2
    ids = [r.info.run_id for r in runs]
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1600, "height": 1200})
        # The runs table of the "Model training" view lists the parent runs by name (the stage runs fold
        # beneath them: the next test opens them).
        page.goto(f"{record['mlflow']}/#/experiments/{exp.experiment_id}/runs?workflowType=machine_learning")
        page.get_by_text("sweep-grid", exact=True).first.wait_for(timeout=60_000)
        compare = (f"{record['mlflow']}/#/compare-runs?runs={json.dumps(ids)}"
                   f"&experiments={json.dumps([exp.experiment_id])}")
        page.goto(compare.replace(" ", ""))
        pad = page.get_by_text("domain/pad", exact=True).first
        pad.wait_for(timeout=60_000)
        pad.scroll_into_view_if_needed()
        text = page.inner_text("body")
        page.screenshot(path=str(ARTIFACTS / "mlflow_compare.png"))
        browser.close()
    assert "Comparing 2 Runs" in text
    shown = lambda v: str(round(v, 3)) in text or f"{v:.3f}" in text  # noqa: E731  (the UI rounds to 3 places)
    # The metrics table is virtualised: the names near the top of its alphabetical list are rendered.
    for key in ("domain/pad", "domain/classifier_acc", "monitor/target_test_acc"):
        assert key in text and all(shown(r.data.metrics[key]) for r in runs), key


def test_mlflow_ui_shows_pipeline_runs_with_their_stages_datasets_and_headline_metric(services):
    """What a person sees in the runs table: one row per pipeline run (and per sweep), its stage runs beneath,
    the training runs' datasets in the Dataset column, and target accuracy as a column once chosen."""
    from mlflow.tracking import MlflowClient
    from playwright.sync_api import sync_playwright

    root, env, record = services
    mlflow = MlflowClient(record["mlflow"])
    exp = mlflow.get_experiment_by_name("mnist_mnistm")
    assert exp.tags["mlflow.experimentKind"] == "custom_model_development"
    pipeline = mlflow.search_runs([exp.experiment_id], "tags.stage = 'pipeline'")[0]
    train = mlflow.search_runs([exp.experiment_id], f"tags.`mlflow.parentRunId` = '{pipeline.info.run_id}' "
                                                    "and tags.stage = 'train'")[0]
    acc = train.data.metrics["target/test_acc"]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which("chromium") or shutil.which("chromium-browser"),
                                    args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 2400, "height": 1200})
        page.goto(f"{record['mlflow']}/#/experiments/{exp.experiment_id}/runs?workflowType=machine_learning")
        row = page.locator("[role='row']", has_text=pipeline.info.run_name).first
        row.wait_for(timeout=60_000)
        collapsed = page.inner_text("body")
        assert "sweep-grid" in collapsed and train.info.run_name not in collapsed  # stage runs start folded
        row.locator("button[data-component-id*='runnamecellrenderer']").first.click()
        page.get_by_text("download", exact=True).first.wait_for(timeout=30_000)
        page.get_by_role("button", name="Columns", exact=True).click()
        page.get_by_placeholder("Search columns").fill("target/test_acc")
        # the search also lists the report's <method>/target/test_acc: the item whose whole name is the key
        page.locator("[role='dialog'] .du-bois-light-tree-title").filter(
            has_text=re.compile(r"^target/test_acc$")).first.click()
        page.keyboard.press("Escape")
        page.get_by_text(str(acc)).first.wait_for(timeout=30_000)
        text = page.inner_text("body")
        # the value sits on the training run's row (the grid draws a row's pinned and scrolled cells apart)
        index = page.locator("[role='row']", has_text=train.info.run_name).first.get_attribute("row-index")
        row_text = " ".join(page.locator(f"[role='row'][row-index='{index}']").all_inner_texts())
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "mlflow_runs_table.png"))
        browser.close()
    assert train.info.run_name in text and "preprocess" in text and "report" in text
    assert str(acc) in row_text
    assert "mnist@32px" in text and "mnist_m@32px" in text  # the Dataset column
