"""Sweeps: a grid of params (e.g. learning rate × optimizer, as in the AlexNet PACS study) times seeds.

Pure bookkeeping, no orchestration (that is flows/sweep.py): which points to run, and, from each point's
evaluation results, a mean ± std table over seeds and heatmaps over the grid. Each setting's label-free
score is the mean, over seeds, of the validator's score of the snapshot it picked (`evaluate.validator`,
uda.validators); the setting it prefers is each method's choice. The oracle (the setting with the best
mean target accuracy) and the regret (oracle minus choice) are shown for the report only.
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
            cells = table.setdefault(method, {})
            cell = cells.setdefault(setting_name(r["point"]), {"acc": [], "src": [], "score": []})
            cell["acc"].append(d["target"]["test_acc"])
            cell["src"].append(d["source"]["test_acc"])
            cell["score"].append(picked_score(d))
    summary = {}
    for method, cells in table.items():
        rows = {name: {"target_test_acc": mean_std(c["acc"]), "source_test_acc": mean_std(c["src"]),
                       "validator_score": mean_std(c["score"])} for name, c in cells.items()}
        scored = [n for n in rows if rows[n]["validator_score"]["mean"] is not None]  # `last` scores nothing
        chosen = max(scored, key=lambda n: rows[n]["validator_score"]["mean"]) if scored else None
        oracle = max(rows, key=lambda n: rows[n]["target_test_acc"]["mean"])  # report only
        regret = rows[oracle]["target_test_acc"]["mean"] - rows[chosen]["target_test_acc"]["mean"] if chosen else None
        summary[method] = {"settings": rows, "choice": chosen, "oracle_report_only": oracle,
                           "regret_report_only": regret, "validator": next(iter(validators(results)), None)}
    return summary


def validators(results: list[dict]) -> set[str]:
    return {d["selection"]["validator"] for r in results for d in r["details"].values()}


def picked_score(details: dict) -> float | None:
    """The validator's score of the snapshot it picked (None for `last`, which scores nothing)."""
    sel = details["selection"]
    if sel["validator"] == "last":
        return None
    picked = next(c for c in sel["candidates"] if c["step"] == sel["picked_step"])
    return picked["scores"][sel["validator"]]


def markdown(name: str, summary: dict) -> str:
    lines = [f"# Sweep {name}", "", "| method | setting | target test acc | source test acc | validator score |",
             "| --- | --- | --- | --- | --- |"]
    pm = lambda s: f"{s['mean']:.4f} ± {s['std']:.4f} (n={s['n']})" if s["n"] else "–"  # noqa: E731
    for method, m in summary.items():
        for setting, row in m["settings"].items():
            mark = " **(the validator's choice)**" if setting == m["choice"] else ""
            mark += " *(oracle, report only)*" if setting == m["oracle_report_only"] else ""
            lines.append(f"| {method} | {setting}{mark} | {pm(row['target_test_acc'])} | "
                         f"{pm(row['source_test_acc'])} | {pm(row['validator_score'])} |")
    lines += ["", "| method | validator | its choice | oracle (report only) | regret (report only) |",
              "| --- | --- | --- | --- | --- |"]
    for method, m in summary.items():
        regret = "–" if m["regret_report_only"] is None else f"{m['regret_report_only']:.4f}"
        lines.append(f"| {method} | {m['validator']} | {m['choice'] or '–'} | {m['oracle_report_only']} | {regret} |")
    lines += ["", "The validator's choice uses no target labels (the highest mean score of the snapshot it picked "
              "in each run). Target accuracy, the oracle and the regret (oracle minus choice) are shown for the "
              "report only."]
    return "\n".join(lines) + "\n"


def heatmaps(grid: dict[str, list], summary: dict, out_dir: Path) -> list[Path]:
    """For a one- or two-key grid: mean target accuracy (report only) and mean validator score per method."""
    keys = list(grid)
    if not 1 <= len(keys) <= 2:
        return []
    rows_key, cols_key = (keys[0], keys[1]) if len(keys) == 2 else ("", keys[0])
    row_values, col_values = (grid[rows_key] if rows_key else [None]), grid[cols_key]
    paths = []
    for method, m in summary.items():
        for metric, label in (("target_test_acc", "target test accuracy (report only)"),
                              ("validator_score", "validator score")):
            values = [[_cell(m, {rows_key: r, cols_key: c} if rows_key else {cols_key: c}, metric)
                       for c in col_values] for r in row_values]
            paths.append(save_heatmap(values, [str(r) for r in row_values] if rows_key else [""],
                                      [str(c) for c in col_values], Path(out_dir) / f"{method}_{metric}.png",
                                      f"{method}: mean {label}", rows_key, cols_key))
    return paths


def _cell(m: dict, point: dict, metric: str) -> float:
    row = m["settings"].get(setting_name(point))
    return row[metric]["mean"] if row else math.nan


def write(out_dir: Path, name: str, grid: dict, results: list[dict],
          failed: list[dict] | None = None) -> tuple[dict, list[Path]]:
    """The table, sweep.json and heatmaps of the completed points; `failed` ({point, reason}) are named, not counted."""
    from uda.io import atomic_write, write_json

    out_dir, failed = Path(out_dir), list(failed or [])
    summary = aggregate(results)
    write_json(out_dir / "sweep.json", {"name": name, "grid": grid, "summary": summary, "failed": failed, "results": [
        {"point": r["point"], "target_test_acc": {m: d["target"]["test_acc"] for m, d in r["details"].items()}}
        for r in results]})
    with atomic_write(out_dir / "sweep.md", "w") as f:
        f.write(markdown(name, summary))
        for fail in failed:
            f.write(f"\n**Not counted** (did not complete): {setting_name(fail['point'])}, seed "
                    f"{fail['point'].get('train.seed')}: {fail['reason']}\n")
    return summary, [out_dir / "sweep.json", out_dir / "sweep.md", *heatmaps(grid, summary, out_dir)]

