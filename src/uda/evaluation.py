"""Evaluate one trained method: what the report and the MLflow run show about it.

- Accuracy, per-class accuracy and the confusion matrix on the source and target test sets (target labels
  are read here, for the report, and nowhere upstream).
- The domain gap of its features: a linear domain classifier's held-out accuracy and the proxy A-distance
  (uda.domain_gap), on seeded samples of source and target test features.
- The unsupervised validator (DEV, uda.validation) over the run's snapshots: which step it would pick,
  next to the last step. Each candidate's target accuracy is computed for the report only; nothing here
  or upstream chooses by it.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import torch.nn.functional as F_

from uda.config import EvaluateConfig
from uda.domain_gap import domain_classifier_error, proxy_a_distance
from uda.io import atomic_dir, atomic_write, load_tensors, write_json
from uda.methods import Method
from uda.results import headline
from uda.runs import RunSpec
from uda.runtime import accuracy, load_role, load_trained, outputs, resolve_device, sample
from uda.validation import density_ratio, dev_risk
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


def _dev_candidates(method: Method, model_dir: Path, data: dict, batch_size: int, seed: int) -> list[dict]:
    """DEV risk of every snapshot (and of the final weights when there are none)."""
    final = method.eval_state()
    snapshots = sorted((Path(model_dir) / "snapshots").glob("step_*.pt"))
    made_by = f"the train@{method.name} stage (dvc repro train@{method.name} restores it)"
    states = [load_tensors(p, made_by) for p in snapshots]
    states = states or [{"step": None, "nets": final}]
    rows = []
    for state in states:
        method.load_eval_state(state["nets"])
        f_tr, _ = outputs(method, data["source"], batch_size, data["source_idx"])
        f_t, _ = outputs(method, data["target"], batch_size, data["target_idx"])
        f_val, logits_val = outputs(method, data["source_val"], batch_size, data["val_idx"])
        y_val = data["source_val"].labels.cpu()[data["val_idx"]]
        losses = F_.cross_entropy(logits_val, y_val, reduction="none").numpy()
        risk = dev_risk(losses, density_ratio(f_tr, f_t, f_val, seed))
        target_acc = accuracy(method, data["target_test"], batch_size)[0]
        rows.append({"step": state["step"], "dev_risk": risk,
                     "source_val_acc": (logits_val.argmax(1) == y_val).float().mean().item(),
                     "target_test_acc_report_only": target_acc})
    method.load_eval_state(final)
    return rows


def evaluate(spec: RunSpec, ecfg: EvaluateConfig, model_dir: Path, out_dir: Path) -> dict:
    """Evaluate the trained method; its files replace `out_dir` whole once all are computed and written."""
    cfg, name = spec.train, spec.method
    device = resolve_device(cfg.device)
    method = load_trained(spec, model_dir, device)
    classes = list(spec.classes)
    roles = ("source", "source_val", "source_test", "target", "target_test")
    data = {r: load_role(spec, r, device) for r in roles}
    k = ecfg.features_per_domain
    data |= {"source_idx": sample(len(data["source"]), k, ecfg.seed),
             "target_idx": sample(len(data["target"]), k, ecfg.seed + 1),
             "val_idx": sample(len(data["source_val"]), k, ecfg.seed + 2)}
    result: dict = {"method": name, "experiment": spec.experiment}
    feats, predictions = {}, {}
    for role in ("source", "target"):
        domain = data[f"{role}_test"]
        f, logits = outputs(method, domain, cfg.eval_batch_size)
        predictions[role] = y, pred = domain.labels.cpu().numpy(), logits.argmax(1).numpy()
        result[role] = class_metrics(y, pred, classes)
        feats[role] = f[sample(len(f), k, ecfg.seed + 3).numpy()]
    error = domain_classifier_error(feats["source"], feats["target"], ecfg.seed, ecfg.svm_c)
    result["domain"] = {"classifier_acc": 1.0 - error, "pad": proxy_a_distance(error)}
    candidates = _dev_candidates(method, model_dir, data, cfg.eval_batch_size, ecfg.seed)
    picked, last = min(candidates, key=lambda r: r["dev_risk"]), candidates[-1]
    result["dev"] = {"selected_step": picked["step"], "last_step": last["step"], "selected_risk": picked["dev_risk"],
                     "last_risk": last["dev_risk"], "candidates": candidates}
    with atomic_dir(Path(out_dir)) as tmp:
        for role, (y, pred) in predictions.items():
            _write_predictions(tmp / f"predictions_{role}.csv", y, pred, classes)
            save_confusion(result[role]["confusion"], classes, tmp / f"confusion_{role}.png",
                           f"{name}: {getattr(spec.exp, role)} test, accuracy {result[role]['test_acc']:.3f}")
        write_json(tmp / "details.json", result)
        write_json(tmp / "metrics.json", headline(result))  # what `dvc metrics show` lists
    return result
