"""t-SNE of each method's feature space: does adaptation mix the domains while keeping the classes apart?

The same seeded sample of source and target test images goes through every method's feature extractor
(F; for GTA its embedder), and scikit-learn's TSNE (seeded, PCA init) maps the features to 2-D. For each
method one figure is coloured by domain and one by class; a last figure puts all methods side by side.
Class colours use the labels of the test images: this is a picture for people, and nothing selects on it.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from sklearn.manifold import TSNE

from uda.config import Experiment, TsneConfig
from uda.io import atomic_dir, atomic_write
from uda.runs import RunSpec
from uda.runtime import compute, load_role, load_trained, outputs, sample
from uda.viz import save_scatter_grid


def embed(features: np.ndarray, cfg: TsneConfig) -> np.ndarray:
    perplexity = min(cfg.perplexity, (len(features) - 1) / 3)  # TSNE needs perplexity < n
    tsne = TSNE(2, perplexity=perplexity, init="pca", learning_rate="auto", random_state=cfg.seed)
    return tsne.fit_transform(features.astype(np.float32))


def method_embedding(spec: RunSpec, tcfg: TsneConfig, model_dir: Path) -> dict:
    """2-D points of the sampled source and target test features, with their domain and class."""
    cfg = spec.train
    device = compute(cfg)
    method = load_trained(spec, model_dir, device)
    feats, domain, label = [], [], []
    for d, role in enumerate(("source_test", "target_test")):
        data = load_role(spec, role, device)
        idx = sample(len(data), tcfg.per_domain, tcfg.seed + d)
        f, _ = outputs(method, data, cfg.eval_batch_size, idx)
        feats.append(f)
        domain.append(np.full(len(idx), d))
        label.append(data.labels.cpu()[idx].numpy())
    return {"xy": embed(np.concatenate(feats), tcfg), "domain": np.concatenate(domain),
            "label": np.concatenate(label)}


def save_figures(exp: Experiment, classes: list[str], embeddings: dict[str, dict], out_dir: Path) -> list[Path]:
    """<method>_domain.png, <method>_class.png, <method>.csv for each method, and all_methods.png; they
    replace `out_dir` whole once all are written. Returns their final paths."""
    out_dir = Path(out_dir)
    domains = [exp.source, exp.target]
    names, by_domain, by_class = [], [], []
    with atomic_dir(out_dir) as tmp:
        for name, e in embeddings.items():
            by_domain.append((f"{name}: by domain", e["xy"], e["domain"], domains))
            by_class.append((f"{name}: by class", e["xy"], e["label"], classes))
            names.append(save_scatter_grid([by_domain[-1]], tmp / f"{name}_domain.png", 1).name)
            names.append(save_scatter_grid([by_class[-1]], tmp / f"{name}_class.png", 1).name)
            with atomic_write(tmp / f"{name}.csv", "w") as f:
                w = csv.writer(f, lineterminator="\n")
                w.writerow(["x", "y", "domain", "label"])
                w.writerows((f"{x:.4f}", f"{y:.4f}", domains[d], classes[k])
                            for (x, y), d, k in zip(e["xy"], e["domain"], e["label"], strict=True))
        names.append(save_scatter_grid(by_domain + by_class, tmp / "all_methods.png", len(embeddings)).name)
    return [out_dir / n for n in names]
