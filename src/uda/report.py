"""The comparison report: methods × metrics for one experiment, beside the published figures.

Input: each method's evaluation results (evaluation/<method>/metrics.json), one per seed that ran, and
its training history. Output: a summary dict (reports/summary.json), its Markdown (reports/summary.md)
and a learning-curve PNG per method. With several seeds, each number is mean ± std over them.
"""

from __future__ import annotations

from pathlib import Path

from uda.config import Params
from uda.published import published
from uda.results import mean_std, target_acc_at
from uda.viz import save_curves

# Summary columns: (key, header, how to read it from one evaluation)
COLUMNS = [
    ("target_test_acc", "target test acc", lambda r: r["target"]["test_acc"]),
    ("source_test_acc", "source test acc", lambda r: r["source"]["test_acc"]),
    ("domain_classifier_acc", "domain clf acc", lambda r: r["domain"]["classifier_acc"]),
    ("pad", "proxy A-dist.", lambda r: r["domain"]["pad"]),
    ("dev_selected_step", "DEV picks step", lambda r: r["dev"]["selected_step"]),
    ("dev_selected_target_acc", "its target acc", lambda r: target_acc_at(r, r["dev"]["selected_step"])),
    ("last_step", "last step", lambda r: r["dev"]["last_step"]),
]


def summarize(params: Params, evaluations: dict[str, list[dict]]) -> dict:
    """evaluations: method → one evaluation result per seed."""
    exp = params.exp
    methods = {}
    for name, results in evaluations.items():
        row = {key: mean_std([get(r) for r in results]) for key, _, get in COLUMNS}
        row["published"] = [{"acc": a, "std": s, "source": src, "protocol": p}
                            for a, s, src, p in published(exp.source, exp.target, name)]
        methods[name] = row
    return {"experiment": params.experiment, "source": exp.source, "target": exp.target,
            "description": exp.description, "methods": methods}


def _fmt(stat: dict, digits: int = 4) -> str:
    if stat["mean"] is None:
        return "–"
    if isinstance(stat["mean"], int) or float(stat["mean"]).is_integer() and digits == 4 and stat["mean"] > 2:
        return f"{stat['mean']:,.0f}" + (f" ± {stat['std']:,.0f}" if stat["n"] > 1 else "")
    return f"{stat['mean']:.{digits}f}" + (f" ± {stat['std']:.{digits}f}" if stat["n"] > 1 else "")


def markdown(summary: dict, figures: dict[str, str] | None = None) -> str:
    seeds = {row["target_test_acc"]["n"] for row in summary["methods"].values()}
    lines = [f"# {summary['experiment']}: {summary['source']} → {summary['target']}", "",
             summary["description"], "",
             f"Seeds per method: {', '.join(map(str, sorted(seeds)))} (mean ± std where more than one).", "",
             "| method | " + " | ".join(h for _, h, _ in COLUMNS) + " | published target acc |",
             "| --- " * (len(COLUMNS) + 2) + "|"]
    for name, row in summary["methods"].items():
        pub = "; ".join(f"{p['acc']:.4g}" + (f" ± {p['std']:.3g}" if p["std"] else "") + f" ({p['source']}, "
                        f"{p['protocol']})" for p in row["published"]) or "–"
        lines.append(f"| {name} | " + " | ".join(_fmt(row[k]) for k, _, _ in COLUMNS) + f" | {pub} |")
    lines += ["", "How to read it:",
              "- The model reported is the last checkpoint (or the best on *source* validation, if "
              "`train.select` says so); target labels never choose anything.",
              "- *DEV picks step*: the checkpoint Deep Embedded Validation (You et al., ICML 2019) would choose "
              "without target labels; *its target acc* is shown for the report only.",
              "- *Proxy A-distance* 2(1 − 2ε) of a linear SVM telling source from target test features "
              "(0: indistinguishable, 2: separable); *domain clf acc* is 1 − ε.", ""]
    for title, path in (figures or {}).items():
        lines.append(f"![{title}]({path})")
    return "\n".join(lines) + "\n"


CURVE_PREFIXES = ("loss/", "source/val_acc", "monitor/")


def learning_curves(history: dict[str, list[tuple[int, float]]], path: Path, title: str) -> Path:
    """Losses, source validation accuracy and the monitored target accuracy against the step."""
    return save_curves({k: v for k, v in history.items() if k.startswith(CURVE_PREFIXES)}, path, title)
