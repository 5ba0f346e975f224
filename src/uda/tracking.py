"""The one module that talks to MLflow.

By default runs go to a sqlite store and an artifact folder inside the project (`.mlflow/`,
git-ignored); `MLFLOW_TRACKING_URI` (for example a tracking server) is honoured when set.

How the UI reads: an experiment is tagged as model training (MLflow's record of its kind; which view the UI
opens on is the browser's own setting, "GenAI" until one clicks "Model training" once); the stage runs of
one pipeline run (one `dvc repro` or `dvc exp run`: the same params and commit) are nested under one parent
run, `pipeline <params hash>`, so the table shows one row per pipeline run and its stages beneath (a sweep's
points nest under the sweep's run instead); a training run's source and target data are MLflow dataset
inputs, which the table's Dataset column shows.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator, Mapping
from pathlib import Path

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

STORE_DIR = ".mlflow"
KIND = {"mlflow.experimentKind": "custom_model_development"}  # MLflow 3's kind of a model-training experiment


def tracking_uri(root: Path | str = ".") -> str:
    env = os.environ.get("MLFLOW_TRACKING_URI")
    if env:
        return env
    return f"sqlite:///{(Path(root) / STORE_DIR / 'mlflow.db').resolve()}"


def _experiment_id(mlflow, name: str, uri: str) -> str:
    exp = mlflow.get_experiment_by_name(name)
    if exp is not None:
        for key, value in KIND.items():
            if exp.tags.get(key) != value:  # an experiment made before the kind was set
                mlflow.MlflowClient().set_experiment_tag(exp.experiment_id, key, value)
        return exp.experiment_id
    # A sqlite store keeps artifacts in a folder beside its database (not ./mlruns); a server picks its own.
    location = None
    if uri.startswith("sqlite:///"):
        location = (Path(uri.removeprefix("sqlite:///")).parent / "artifacts" / name).resolve().as_uri()
    try:
        return mlflow.create_experiment(name, artifact_location=location, tags=KIND)
    except Exception:  # a concurrent stage created it first
        return mlflow.get_experiment_by_name(name).experiment_id


def flatten(d: Mapping, prefix: str = "") -> dict[str, object]:
    """{'a': {'b': 1}} → {'a.b': 1}: MLflow params are flat."""
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(flatten(v, f"{key}."))
        else:
            out[key] = v
    return out


@contextlib.contextmanager
def run(experiment: str, run_name: str, tags: Mapping[str, str] | None = None,
        root: Path | str = ".", run_id: str | None = None, uri: str | None = None) -> Iterator:
    """Start (or, with `run_id`, resume) an MLflow run in the store at `uri` (default: tracking_uri(root));
    yields the active run."""
    import mlflow

    uri = uri or tracking_uri(root)
    if uri.startswith("sqlite:///"):
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(uri)
    exp_id = _experiment_id(mlflow, experiment, uri)
    tags = dict(tags or {})
    if run_id is None and os.environ.get("UDA_PARENT_RUN_ID"):  # a point of a sweep: nest under its run
        tags |= {"mlflow.parentRunId": os.environ["UDA_PARENT_RUN_ID"], "sweep": os.environ.get("UDA_SWEEP", ""),
                 "sweep_point": os.environ.get("UDA_SWEEP_POINT", "")}
    elif run_id is None and "params_hash" in tags and tags.get("stage") not in ("sweep", "pipeline"):
        tags["mlflow.parentRunId"] = pipeline_run(exp_id, tags)
    # A resumed run keeps its name (start_run would rename it).
    with mlflow.start_run(run_id=run_id, experiment_id=None if run_id else exp_id,
                          run_name=None if run_id else run_name, tags=tags) as active:
        yield active


def pipeline_run(exp_id: str, tags: Mapping[str, str]) -> str:
    """The parent run of every stage run with these params at this commit: found, or made (and marked
    finished at once: it only groups its children)."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    key = f"{tags['params_hash']}@{tags.get('git_commit', 'unknown')[:12]}"
    found = client.search_runs([exp_id], f"tags.stage = 'pipeline' and tags.pipeline_key = '{key}'", max_results=1)
    if found:
        return found[0].info.run_id
    keep = {k: tags[k] for k in ("experiment", "source", "target", "git_commit", "params_hash") if k in tags}
    parent = client.create_run(exp_id, run_name=f"pipeline {tags['params_hash'][:8]}",
                               tags=keep | {"stage": "pipeline", "pipeline_key": key})
    client.set_terminated(parent.info.run_id)
    return parent.info.run_id


def log_dataset(name: str, digest: str, path: Path | str, context: str) -> None:
    """A dataset input of the active run: its name, a digest of its content and where it lies."""
    import mlflow
    from mlflow.data.meta_dataset import MetaDataset
    from mlflow.data.sources import LocalArtifactDatasetSource

    source = LocalArtifactDatasetSource(Path(path).resolve().as_uri())
    mlflow.log_input(MetaDataset(source, name=name, digest=digest), context=context)


def log_params(params: Mapping) -> None:
    import mlflow

    mlflow.log_params({k: ("null" if v is None else v) for k, v in flatten(params).items()})


def log_metrics(metrics: Mapping[str, float], step: int | None = None) -> None:
    import mlflow

    mlflow.log_metrics({k: float(v) for k, v in metrics.items()}, step=step)


def log_artifact(path: Path | str, artifact_path: str | None = None) -> None:
    import mlflow

    mlflow.log_artifact(str(path), artifact_path=artifact_path)


def git_commit(root: Path | str = ".") -> str:
    import subprocess

    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return out.stdout.strip() if out.returncode == 0 else "unknown"


def run_exists(run_id: str, root: Path | str = ".") -> bool:
    """Whether the tracking store in use holds this run (a checkpoint may come from another store)."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    try:
        MlflowClient(tracking_uri(root)).get_run(run_id)
    except MlflowException as e:
        if getattr(e, "error_code", "") == "RESOURCE_DOES_NOT_EXIST" or "not found" in str(e):
            return False
        raise
    return True


def run_tags(params, stage: str, **extra: str) -> dict[str, str]:
    """The tags every run carries, so the MLflow UI can filter and compare across stages and methods."""
    exp = params.exp
    return {"experiment": params.experiment, "source": exp.source, "target": exp.target, "stage": stage,
            "git_commit": git_commit(), "params_hash": params.digest(), **extra}


def run_name(spec) -> str:
    """A method's training run (a uda.runs.RunSpec), which its evaluation and t-SNE also log into."""
    return f"{spec.method}-seed{spec.train.seed}"


def training_run_id(model_dir: Path | str) -> str:
    """The MLflow run a train stage wrote to models/<method>/mlflow_run_id."""
    from uda.io import DataError

    path = Path(model_dir) / "mlflow_run_id"
    if not path.is_file():
        raise DataError(f"{path}: missing; run the train stage first (dvc repro train@{Path(model_dir).name})")
    return path.read_text().strip()


def log_torch_model(module, input_example, name: str = "model") -> None:
    """The model as an MLflow PyTorch model (mlflow.pytorch.load_model), exported as a traced pt2 graph
    from `input_example` (one normalised input batch, a numpy array), so loading needs no uda code."""
    import mlflow.pytorch
    import torch

    # Explicit requirements: inferring them would run pip, slowly, and reach for the network.
    mlflow.pytorch.log_model(module.cpu().eval(), name=name, input_example=input_example,
                             pip_requirements=[f"torch=={torch.__version__}"])


def log_text(text: str, artifact_file: str) -> None:
    import mlflow

    mlflow.log_text(text, artifact_file)


def metric_history(run_id: str, root: Path | str = ".", first_step: int = 0) -> dict[str, list[tuple[int, float]]]:
    """Every metric of a run as (step, value) pairs in step order, from `first_step` on; a step logged twice
    (a resumed run re-logs the steps after its last checkpoint) keeps the last value."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri(root))
    out = {}
    for key in client.get_run(run_id).data.metrics:
        history = sorted(client.get_metric_history(run_id, key), key=lambda m: m.timestamp)
        by_step = {m.step: m.value for m in history if m.step >= first_step}
        if by_step:
            out[key] = sorted(by_step.items())
    return out


def finished_children(parent_run_id: str, stage: str, artifact: str, uri: str) -> list[tuple[dict, object]]:
    """The finished child runs of `stage` under a parent: each one's tags and its JSON artifact, oldest first."""
    import mlflow
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    parent = client.get_run(parent_run_id)
    children = client.search_runs([parent.info.experiment_id], f"tags.`mlflow.parentRunId` = '{parent_run_id}' "
                                  f"and tags.stage = '{stage}' and attributes.status = 'FINISHED'",
                                  order_by=["attributes.start_time ASC"], max_results=10_000)
    return [(c.data.tags, json.loads(Path(mlflow.artifacts.download_artifacts(
        run_id=c.info.run_id, artifact_path=artifact, tracking_uri=uri)).read_text())) for c in children]
