"""The comparison report: methods × metrics for one experiment, beside the published figures.

Input: each method's evaluation results (evaluation/<method>/metrics.json), one per seed that ran, and
its training history. Output: a summary dict (reports/summary.json), its Markdown (reports/summary.md)
and a learning-curve PNG per method. With several seeds, each number is mean ± std over them.
"""

from __future__ import annotations

from pathlib import Path

from uda.config import Params
from uda.published import published
from uda.results import mean_std, selection_summary
from uda.viz import save_curves

# Summary columns: (key, header, how to read it from one evaluation)
COLUMNS = [
    ("target_test_acc", "target test acc (picked)", lambda r: r["target"]["test_acc"]),
    ("source_test_acc", "source test acc", lambda r: r["source"]["test_acc"]),
    ("domain_classifier_acc", "domain clf acc", lambda r: r["domain"]["classifier_acc"]),
    ("pad", "proxy A-dist.", lambda r: r["domain"]["pad"]),
    ("picked_step", "picked step", lambda r: selection_summary(r)["picked_step"]),
    ("last_step", "last step", lambda r: selection_summary(r)["last_step"]),
    ("last_target_acc", "last's target acc", lambda r: selection_summary(r)["last_target_test_acc"]),
    ("oracle_step", "oracle step", lambda r: selection_summary(r)["oracle_step_report_only"]),
    ("oracle_target_acc", "oracle target acc", lambda r: selection_summary(r)["oracle_target_test_acc_report_only"]),
]


def summarize(params: Params, evaluations: dict[str, list[dict]]) -> dict:
    """evaluations: method → one evaluation result per seed."""
    exp = params.exp
    methods = {}
    for name, results in evaluations.items():
        row = {key: mean_std([get(r) for r in results]) for key, _, get in COLUMNS}
        row["validator"] = results[0]["selection"]["validator"]
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
    validators = sorted({row["validator"] for row in summary["methods"].values()})
    lines += ["", "How to read it:",
              f"- The model reported is the snapshot the label-free validator ({', '.join(validators)}; "
              "`evaluate.validator`) picks; target labels never choose anything.",
              "- *Last's target acc*: the last snapshot's. *Oracle*: the snapshot with the best target accuracy, "
              "which only target labels could find: shown for the report only, to say what the pick lost.",
              "- *Proxy A-distance* 2(1 − 2ε) of a linear SVM telling source from target test features "
              "(0: indistinguishable, 2: separable); *domain clf acc* is 1 − ε.", ""]
    for title, path in (figures or {}).items():
        lines.append(f"![{title}]({path})")
    return "\n".join(lines) + "\n"


CURVE_PREFIXES = ("loss/", "source/val_acc", "monitor/")


def learning_curves(history: dict[str, list[tuple[int, float]]], path: Path, title: str) -> Path:
    """Losses, source validation accuracy and the monitored target accuracy against the step."""
    return save_curves({k: v for k, v in history.items() if k.startswith(CURVE_PREFIXES)}, path, title)
