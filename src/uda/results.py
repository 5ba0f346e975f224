"""Reading evaluation results: plain dicts in, plain numbers out (no torch), for evaluate, report and sweep."""

from __future__ import annotations

import statistics


def target_acc_at(result: dict, step) -> float | None:
    """The (report-only) target accuracy of DEV's candidate at `step`."""
    return next((c["target_test_acc_report_only"] for c in result["dev"]["candidates"] if c["step"] == step), None)


def headline(result: dict) -> dict:
    """What `dvc metrics show` lists for one method."""
    dev = result["dev"]
    return {"target": {"test_acc": result["target"]["test_acc"]}, "source": {"test_acc": result["source"]["test_acc"]},
            "domain": result["domain"], "dev": {"selected_step": dev["selected_step"],
                                                "selected_target_test_acc": target_acc_at(result, dev["selected_step"]),
                                                "last_target_test_acc": target_acc_at(result, dev["last_step"])}}


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


def mean_std(values: list) -> dict:
    """mean ± sample std over seeds (None values, e.g. a metric a run lacks, are left out)."""
    values = [v for v in values if v is not None]
    if not values:
        return {"mean": None, "std": None, "n": 0}
    return {"mean": statistics.mean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0,
            "n": len(values), "values": values}
