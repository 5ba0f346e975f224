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
import torch
import torch.nn.functional as F_

from uda.batches import Domain
from uda.config import Params
from uda.datasets import dataset_of
from uda.domain_gap import domain_classifier_error, proxy_a_distance
from uda.io import atomic_write, write_json
from uda.methods import Method
from uda.training import accuracy, build_method, load_role, resolve_device
from uda.validation import density_ratio, dev_risk
from uda.viz import save_confusion


def load_trained(params: Params, name: str, model_dir: Path, device: torch.device) -> Method:
    """The method with the weights the train stage wrote (models/<name>/model.pt), in eval mode."""
    path = Path(model_dir) / "model.pt"
    model = torch.load(path, map_location="cpu", weights_only=True)
    if model.get("method") != name:
        raise ValueError(f"{path}: holds method {model.get('method')!r}, expected {name!r}")
    method = build_method(params, name, params.exp.recipe.channels, 1, device)
    for k, state in model["nets"].items():
        method.nets[k].load_state_dict(state)
    method.train(False)
    return method


@torch.no_grad()
def outputs(method: Method, domain: Domain, batch_size: int, idx: torch.Tensor | None = None):
    """Features (float32 numpy) and class logits (torch, CPU) over a domain, or the rows `idx` of it."""
    idx = torch.arange(len(domain)) if idx is None else idx
    feats, logits = [], []
    for i in range(0, len(idx), batch_size):
        x, _ = domain.batch(idx[i:i + batch_size])
        with method.autocast():
            f = method.features(x)
            logits.append(method.classify(f).float().cpu())
        feats.append(f.float().flatten(1).cpu())
    return torch.cat(feats).numpy(), torch.cat(logits)


def class_metrics(y: np.ndarray, pred: np.ndarray, classes: list[str]) -> dict:
    k = len(classes)
    cm = np.bincount(y * k + pred, minlength=k * k).reshape(k, k)
    per_class = cm.diagonal() / np.maximum(cm.sum(1), 1)
    return {"test_acc": float(cm.trace() / max(cm.sum(), 1)), "n": int(cm.sum()),
            "class_acc": {c: float(a) for c, a in zip(classes, per_class, strict=True)}, "confusion": cm.tolist()}


def sample(n: int, k: int, seed: int) -> torch.Tensor:
    """A seeded subset of k of n indices (all of them when k ≥ n), in index order."""
    if k >= n:
        return torch.arange(n)
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:k].sort().values


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
    states = [torch.load(p, map_location="cpu", weights_only=True) for p in snapshots]
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


def evaluate(params: Params, name: str, model_dir: Path, out_dir: Path) -> dict:
    cfg, ecfg, out_dir = params.train_for(name), params.evaluate, Path(out_dir)
    device = resolve_device(cfg.device)
    method = load_trained(params, name, model_dir, device)
    classes = list(dataset_of(params.exp.source).classes)
    roles = ("source", "source_val", "source_test", "target", "target_test")
    data = {r: load_role(params, cfg, r, device) for r in roles}
    k = ecfg.features_per_domain
    data |= {"source_idx": sample(len(data["source"]), k, ecfg.seed),
             "target_idx": sample(len(data["target"]), k, ecfg.seed + 1),
             "val_idx": sample(len(data["source_val"]), k, ecfg.seed + 2)}
    result: dict = {"method": name, "experiment": params.experiment}
    feats = {}
    for role in ("source", "target"):
        domain = data[f"{role}_test"]
        f, logits = outputs(method, domain, cfg.eval_batch_size)
        y, pred = domain.labels.cpu().numpy(), logits.argmax(1).numpy()
        result[role] = class_metrics(y, pred, classes)
        feats[role] = f[sample(len(f), k, ecfg.seed + 3).numpy()]
        _write_predictions(out_dir / f"predictions_{role}.csv", y, pred, classes)
        save_confusion(result[role]["confusion"], classes, out_dir / f"confusion_{role}.png",
                       f"{name}: {getattr(params.exp, role)} test, accuracy {result[role]['test_acc']:.3f}")
    error = domain_classifier_error(feats["source"], feats["target"], ecfg.seed, ecfg.svm_c)
    result["domain"] = {"classifier_acc": 1.0 - error, "pad": proxy_a_distance(error)}
    candidates = _dev_candidates(method, model_dir, data, cfg.eval_batch_size, ecfg.seed)
    picked, last = min(candidates, key=lambda r: r["dev_risk"]), candidates[-1]
    result["dev"] = {"selected_step": picked["step"], "last_step": last["step"], "selected_risk": picked["dev_risk"],
                     "last_risk": last["dev_risk"], "candidates": candidates}
    write_json(out_dir / "details.json", result)
    write_json(out_dir / "metrics.json", headline(result))  # what `dvc metrics show` lists
    return result


def target_acc_at(result: dict, step) -> float | None:
    """The (report-only) target accuracy of DEV's candidate at `step`."""
    return next((c["target_test_acc_report_only"] for c in result["dev"]["candidates"] if c["step"] == step), None)


def headline(result: dict) -> dict:
    dev = result["dev"]
    at = lambda step: target_acc_at(result, step)  # noqa: E731
    return {"target": {"test_acc": result["target"]["test_acc"]}, "source": {"test_acc": result["source"]["test_acc"]},
            "domain": result["domain"], "dev": {"selected_step": dev["selected_step"],
                                                "selected_target_test_acc": at(dev["selected_step"]),
                                                "last_target_test_acc": at(dev["last_step"])}}


def flat_metrics(result: dict) -> dict[str, float]:
    """The scalar metrics, with namespaced keys (target/test_acc, target/class_acc/3, domain/pad, dev/…)."""
    out = {}
    for role in ("source", "target"):
        out[f"{role}/test_acc"] = result[role]["test_acc"]
        out |= {f"{role}/class_acc/{c}": a for c, a in result[role]["class_acc"].items()}
    out |= {f"domain/{k}": v for k, v in result["domain"].items()}
    dev = result["dev"]
    out |= {"dev/selected_risk": dev["selected_risk"], "dev/last_risk": dev["last_risk"]}
    if dev["selected_step"] is not None:
        out["dev/selected_step"] = dev["selected_step"]
        out["report/dev_selected_target_test_acc"] = target_acc_at(result, dev["selected_step"])
    return out
