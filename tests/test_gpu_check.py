"""benchmarks/gpu_check.py, the check meant for a bare GPU machine: it skips cleanly without CUDA, and its
comparison and timing run end to end on the CPU (channels_last against the plain layout, fp32 both)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT

SCRIPT = ROOT / "benchmarks/gpu_check.py"


def run(*args, env=None):
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=900)


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="this machine has CUDA: the check would run")
def test_without_cuda_it_says_so_and_exits_cleanly():
    done = run()
    assert done.returncode == 0, done.stderr[-2000:]
    assert "no CUDA device here; skipped" in done.stdout


@pytest.mark.slow
def test_the_checks_run_end_to_end_on_the_cpu(tmp_path, mirror):
    import os

    env = {**os.environ, "UDA_DATA_MIRROR": str(mirror)}
    done = run("--bundle", tmp_path / "bundle", "--max-per-split", 200, "--no-wheels", env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert not (tmp_path / "bundle/data/raw").exists()  # only the preprocessed tensors travel
    out = tmp_path / "gpu_check.json"
    done = run("--device", "cpu", "--data", tmp_path / "bundle/data", "--methods", "source_only", "dann",
               "--steps", 3, "--speed-steps", 3, "--train-steps", 4, "--out", out, env=env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads(out.read_text())
    assert set(report["methods"]) == {"source_only", "dann"}
    for row in report["methods"].values():
        assert row["agree"] and row["worst_difference"] < report["tolerance"] and row["images_per_s"] > 0
        assert row["losses_fp32"].keys() == row["losses_bf16"].keys() and "loss/class" in row["losses_fp32"]
    assert set(report["training"]) == {"source_only", "dann", "gta"}  # the default pipeline's methods
    assert all(r["wall_s"] > 0 and r["steps"] == 4 for r in report["training"].values())
