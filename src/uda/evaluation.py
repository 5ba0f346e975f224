"""Evaluate one trained method: what the report and the MLflow run show about it.

- Accuracy, per-class accuracy and the confusion matrix on the source and target test sets (target labels
  are read here, for the report, and nowhere upstream).
- The domain gap of its features: a linear domain classifier's held-out accuracy and the proxy A-distance
  (uda.domain_gap), on seeded samples of source and target test features.
- Model selection without target labels: every snapshot of the run is scored by every validator
  (uda.validators) and the one `evaluate.validator` picks is the model evaluated above. Each candidate's
  target accuracy is computed for the report only (with the oracle's step, so that the report can show
  what the pick lost); nothing here or upstream chooses by it.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import torch

from uda.config import EvaluateConfig
from uda.domain_gap import domain_classifier_error, proxy_a_distance
from uda.features import narrowed
from uda.io import atomic_dir, atomic_write, load_tensors, write_json
from uda.methods import Method
from uda.results import headline
from uda.runs import RunSpec
from uda.runtime import compute, load_roles, load_trained, outputs, sample
from uda.validators import Labelled, Unlabelled, score_all
from uda.viz import save_confusion


def class_metrics(y: np.ndarray, pred: np.ndarray, classes: list[str]) -> dict:
    k = len(classes)
    cm = np.bincount(y * k + pred, minlength=k * k).reshape(k, k)
    per_class = cm.diagonal() / np.maximum(cm.sum(1), 1)
    return {"test_acc": float(cm.trace() / max(cm.sum(), 1)), "n": int(cm.sum()),
            "class_acc": {c: float(a) for c, a in zip(classes, per_class, strict=True)}, "confusion": cm.tolist()}


def _write_predictions(path: Path, y: np.ndarray, pred: np.ndarray, classes: list[str]) -> None:
    """One row per test image: what `dvc plots` draws as a confusion matrix."""
    with atomic_write(path, "w") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["actual", "predicted"])
        w.writerows((classes[a], classes[b]) for a, b in zip(y, pred, strict=True))


def _outputs(method: Method, domain, batch_size: int, idx) -> Unlabelled:
    f, logits = outputs(method, domain, batch_size, idx)
    return Unlabelled(f, logits.numpy())


def validator_inputs(method: Method, data: dict, batch_size: int, target_test: tuple[np.ndarray, torch.Tensor]
                     | None = None) -> tuple[Labelled, Labelled, Unlabelled]:
    """What a validator may see of the current model: source train and validation samples with their
    labels, and the target *train* sample as outputs only (no labels: the type has none). Where the target
    train and test images are the same (PACS), the sample is cut from `target_test`'s pass, if given. Wide
    features are narrowed once, jointly over the three samples (uda.features), for every validator."""
    labelled = (("source", "source_idx"), ("source_val", "val_idx"))
    outs = [_outputs(method, data[role], batch_size, data[idx]) for role, idx in labelled]
    if target_test is not None and data["target"] is data["target_test"]:
        idx = data["target_idx"].numpy()
        outs.append(Unlabelled(target_test[0][idx], target_test[1][idx].numpy()))
    else:
        outs.append(_outputs(method, data["target"], batch_size, data["target_idx"]))
    f_s, f_val, f_t = narrowed(*(o.features for o in outs), seed=0)
    labels = [data[role].labels.cpu()[data[idx]].numpy() for role, idx in labelled]
    return (Labelled(f_s, outs[0].logits, labels[0]), Labelled(f_val, outs[1].logits, labels[1]),
            Unlabelled(f_t, outs[2].logits))


def candidates(method: Method, model_dir: Path, data: dict, batch_size: int, seed: int) -> list[dict]:
    """Every snapshot (the final weights when there are none) with every validator's score, and its target
    test accuracy for the report only. Leaves the final weights loaded."""
    final = method.eval_state()
    snapshots = sorted((Path(model_dir) / "snapshots").glob("step_*.pt"))
    made_by = f"the train@{method.name} stage (dvc repro train@{method.name} restores it)"
    states = [load_tensors(p, made_by) for p in snapshots] or [{"step": None, "nets": final}]
    rows = []
    for state in states:
        method.load_eval_state(state["nets"])
        # One pass over the target test set: the report's accuracy, and the validators' target sample if shared
        test = outputs(method, data["target_test"], batch_size)
        scores = score_all(*validator_inputs(method, data, batch_size, test), seed)
        acc = (test[1].argmax(1) == data["target_test"].labels.cpu()).double().mean().item()
        rows.append({"step": state["step"], "scores": scores, "target_test_acc_report_only": acc})
    method.load_eval_state(final)
    return rows


def pick(rows: list[dict], validator: str) -> dict:
    """The candidate the validator scores highest (ties: the later step); `last`: the final one."""
    if validator == "last":
        return rows[-1]
    return max(reversed(rows), key=lambda r: r["scores"][validator])


def _select(method: Method, model_dir: Path, data: dict, ecfg: EvaluateConfig, batch_size: int) -> dict:
    rows = candidates(method, model_dir, data, batch_size, ecfg.seed)
    picked = pick(rows, ecfg.validator)
    oracle = max(rows, key=lambda r: r["target_test_acc_report_only"])  # for the report, never for a choice
    if picked["step"] is not None and picked is not rows[-1]:
        snapshot = Path(model_dir) / "snapshots" / f"step_{picked['step']:06d}.pt"
        method.load_eval_state(load_tensors(snapshot, f"the train@{method.name} stage")["nets"])
    return {"validator": ecfg.validator, "picked_step": picked["step"], "last_step": rows[-1]["step"],
            "oracle_step_report_only": oracle["step"], "candidates": rows}


def evaluate(spec: RunSpec, ecfg: EvaluateConfig, model_dir: Path, out_dir: Path) -> dict:
    """Evaluate the trained method; its files replace `out_dir` whole once all are computed and written."""
    cfg, name = spec.train, spec.method
    device = compute(cfg)
    method = load_trained(spec, model_dir, device)
    classes = list(spec.classes)
    roles = ("source", "source_val", "source_test", "target", "target_test")
    data = load_roles(spec, roles, device)
    k = ecfg.features_per_domain
    data |= {"source_idx": sample(len(data["source"]), k, ecfg.seed),
             "target_idx": sample(len(data["target"]), k, ecfg.seed + 1),
             "val_idx": sample(len(data["source_val"]), k, ecfg.seed + 2)}
    result: dict = {"method": name, "experiment": spec.experiment}
    # The validator's pick is the model everything below describes (the last snapshot with `last`).
    result["selection"] = _select(method, model_dir, data, ecfg, cfg.eval_batch_size)
    feats, predictions = {}, {}
    for role in ("source", "target"):
        domain = data[f"{role}_test"]
        f, logits = outputs(method, domain, cfg.eval_batch_size)
        predictions[role] = y, pred = domain.labels.cpu().numpy(), logits.argmax(1).numpy()
        result[role] = class_metrics(y, pred, classes)
        feats[role] = f[sample(len(f), k, ecfg.seed + 3).numpy()]
    error = domain_classifier_error(feats["source"], feats["target"], ecfg.seed, ecfg.svm_c)
    result["domain"] = {"classifier_acc": 1.0 - error, "pad": proxy_a_distance(error)}
    with atomic_dir(Path(out_dir)) as tmp:
        for role, (y, pred) in predictions.items():
            _write_predictions(tmp / f"predictions_{role}.csv", y, pred, classes)
            save_confusion(result[role]["confusion"], classes, tmp / f"confusion_{role}.png",
                           f"{name}: {getattr(spec.exp, role)} test, accuracy {result[role]['test_acc']:.3f}")
        write_json(tmp / "details.json", result)
        write_json(tmp / "metrics.json", headline(result))  # what `dvc metrics show` lists
    return result
