"""Reading evaluation results: plain dicts in, plain numbers out (no torch), for evaluate, report and sweep."""

from __future__ import annotations

import statistics


def target_acc_at(result: dict, step) -> float | None:
    """The (report-only) target accuracy of the candidate snapshot at `step`."""
    rows = result["selection"]["candidates"]
    return next((c["target_test_acc_report_only"] for c in rows if c["step"] == step), None)


def selection_summary(result: dict) -> dict:
    """The validator's pick beside the last snapshot and the oracle (the best by target accuracy, for the
    report only): steps and target accuracies, and what the pick lost against the oracle."""
    sel = result["selection"]
    picked, last = target_acc_at(result, sel["picked_step"]), target_acc_at(result, sel["last_step"])
    oracle = target_acc_at(result, sel["oracle_step_report_only"])
    return {"validator": sel["validator"], "picked_step": sel["picked_step"], "picked_target_test_acc": picked,
            "last_step": sel["last_step"], "last_target_test_acc": last,
            "oracle_step_report_only": sel["oracle_step_report_only"], "oracle_target_test_acc_report_only": oracle,
            "regret_report_only": None if picked is None else oracle - picked}


def headline(result: dict) -> dict:
    """What `dvc metrics show` lists for one method."""
    return {"target": {"test_acc": result["target"]["test_acc"]}, "source": {"test_acc": result["source"]["test_acc"]},
            "domain": result["domain"], "selection": selection_summary(result)}


def flat_metrics(result: dict) -> dict[str, float]:
    """The scalar metrics, with namespaced keys (target/test_acc, target/class_acc/3, domain/pad, selection/…);
    what only target labels could tell about the choice is under report/."""
    out = {}
    for role in ("source", "target"):
        out[f"{role}/test_acc"] = result[role]["test_acc"]
        out |= {f"{role}/class_acc/{c}": a for c, a in result[role]["class_acc"].items()}
    out |= {f"domain/{k}": v for k, v in result["domain"].items()}
    s = selection_summary(result)
    picked = next(c for c in result["selection"]["candidates"] if c["step"] == s["picked_step"])
    out |= {f"selection/score/{k}": v for k, v in picked["scores"].items() if v > -float("inf")}
    if s["picked_step"] is not None:
        out |= {"selection/picked_step": s["picked_step"], "report/last_target_test_acc": s["last_target_test_acc"],
                "report/oracle_target_test_acc": s["oracle_target_test_acc_report_only"],
                "report/oracle_step": s["oracle_step_report_only"], "report/regret": s["regret_report_only"]}
    return out


def mean_std(values: list) -> dict:
    """mean ± sample std over seeds (None values, e.g. a metric a run lacks, are left out)."""
    values = [v for v in values if v is not None]
    if not values:
        return {"mean": None, "std": None, "n": 0}
    return {"mean": statistics.mean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0,
            "n": len(values), "values": values}
