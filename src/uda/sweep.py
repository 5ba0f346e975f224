"""Sweeps: a grid of params (e.g. learning rate × optimizer, as in the AlexNet PACS study) times seeds.

Pure bookkeeping, no orchestration (that is flows/sweep.py): which points to run, and, from each point's
evaluation results, a mean ± std table over seeds and heatmaps over the grid. Each setting's label-free
score is its mean DEV risk (uda.validation); the setting DEV prefers is named, and target accuracy is
shown beside it for the report only.
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path

from uda.results import mean_std
from uda.viz import save_heatmap


def points(grid: dict[str, list], seeds: list[int]) -> list[dict]:
    """Every combination of the grid's values, for each seed: [{'train.optimizer.lr': 0.01, ..., 'train.seed': 0}]."""
    keys = list(grid)
    return [dict(zip(keys, values, strict=True)) | {"train.seed": seed}
            for values in itertools.product(*(grid[k] for k in keys)) for seed in seeds]


def setting_name(point: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in point.items() if k != "train.seed") or "defaults"


def aggregate(results: list[dict]) -> dict:
    """results: [{'point': {...}, 'details': {method: evaluation details}}] → per method and setting."""
    table: dict[str, dict[str, dict]] = {}
    for r in results:
        for method, d in r["details"].items():
            cell = table.setdefault(method, {}).setdefault(setting_name(r["point"]), {"acc": [], "src": [], "dev": []})
            cell["acc"].append(d["target"]["test_acc"])
            cell["src"].append(d["source"]["test_acc"])
            cell["dev"].append(d["dev"]["last_risk"])
    summary = {}
    for method, cells in table.items():
        rows = {name: {"target_test_acc": mean_std(c["acc"]), "source_test_acc": mean_std(c["src"]),
                       "dev_risk": mean_std(c["dev"])} for name, c in cells.items()}
        scored = [n for n in rows if rows[n]["dev_risk"]["mean"] is not None]  # no snapshots, no DEV risk
        chosen = min(scored, key=lambda n: rows[n]["dev_risk"]["mean"]) if scored else None
        summary[method] = {"settings": rows, "dev_choice": chosen}
    return summary


def markdown(name: str, summary: dict) -> str:
    lines = [f"# Sweep {name}", "", "| method | setting | target test acc | source test acc | DEV risk |",
             "| --- | --- | --- | --- | --- |"]
    pm = lambda s: f"{s['mean']:.4f} ± {s['std']:.4f} (n={s['n']})" if s["n"] else "–"  # noqa: E731
    for method, m in summary.items():
        for setting, row in m["settings"].items():
            mark = " **(DEV's choice)**" if setting == m["dev_choice"] else ""
            lines.append(f"| {method} | {setting}{mark} | {pm(row['target_test_acc'])} | "
                         f"{pm(row['source_test_acc'])} | {pm(row['dev_risk'])} |")
    lines += ["", "DEV's choice uses no target labels (lowest mean DEV risk of the final model); target accuracy "
              "is shown for the report only."]
    return "\n".join(lines) + "\n"


def heatmaps(grid: dict[str, list], summary: dict, out_dir: Path) -> list[Path]:
    """For a one- or two-key grid: mean target accuracy (report only) and mean DEV risk per method."""
    keys = list(grid)
    if not 1 <= len(keys) <= 2:
        return []
    rows_key, cols_key = (keys[0], keys[1]) if len(keys) == 2 else ("", keys[0])
    row_values, col_values = (grid[rows_key] if rows_key else [None]), grid[cols_key]
    paths = []
    for method, m in summary.items():
        for metric, label in (("target_test_acc", "target test accuracy (report only)"), ("dev_risk", "DEV risk")):
            values = [[_cell(m, {rows_key: r, cols_key: c} if rows_key else {cols_key: c}, metric)
                       for c in col_values] for r in row_values]
            paths.append(save_heatmap(values, [str(r) for r in row_values] if rows_key else [""],
                                      [str(c) for c in col_values], Path(out_dir) / f"{method}_{metric}.png",
                                      f"{method}: mean {label}", rows_key, cols_key))
    return paths


def _cell(m: dict, point: dict, metric: str) -> float:
    row = m["settings"].get(setting_name(point))
    return row[metric]["mean"] if row else math.nan


def write(out_dir: Path, name: str, grid: dict, results: list[dict]) -> tuple[dict, list[Path]]:
    from uda.io import atomic_write, write_json

    out_dir = Path(out_dir)
    summary = aggregate(results)
    write_json(out_dir / "sweep.json", {"name": name, "grid": grid, "summary": summary, "results": [
        {"point": r["point"], "target_test_acc": {m: d["target"]["test_acc"] for m, d in r["details"].items()}}
        for r in results]})
    with atomic_write(out_dir / "sweep.md", "w") as f:
        f.write(markdown(name, summary))
    return summary, [out_dir / "sweep.json", out_dir / "sweep.md", *heatmaps(grid, summary, out_dir)]

