"""Where each stage writes, named once: the flows, the tasks and a test of dvc.yaml's outs all read these.

Paths are relative to the project root (where `dvc repro` runs). The data folders come from `data.root`.
"""

from __future__ import annotations

import os
from pathlib import Path

MODELS = Path("models")  # train@<method> → models/<method>/
EVALUATION = Path("evaluation")  # evaluate@<method> → evaluation/<method>/
REPORTS = Path("reports")  # report → summary.md, summary.json, curves/
TSNE = REPORTS / "tsne"  # tsne → reports/tsne/
SWEEPS = REPORTS / "sweeps"  # a sweep's table and heatmaps (flows/sweep.py), not a DVC stage
# Outside DVC's outs (DVC deletes outs before a stage re-runs). A sweep's point runs in a workspace of its own and
# points UDA_CHECKPOINT_ROOT at its machine's checkout, so a point re-run after a crash resumes there.
CHECKPOINTS = Path(os.environ.get("UDA_CHECKPOINT_ROOT") or "checkpoints")


def model_dir(method: str) -> Path:
    return MODELS / method


def evaluation_dir(method: str) -> Path:
    return EVALUATION / method
