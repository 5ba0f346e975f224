"""DVC stage `tsne`: each method's feature space in 2-D, by domain and by class, and all side by side."""

from __future__ import annotations

from pathlib import Path

from prefect import flow

from flows._cli import run_stage
from tasks.tsne import tsne_figures
from uda import layout, runs


@flow(name="tsne", validate_parameters=False)
def tsne_flow(resolved: runs.Resolved) -> list[Path]:
    methods = resolved.params.pipeline.all_methods
    return tsne_figures([resolved.run(m) for m in methods], resolved.params.tsne,
                        {m: layout.model_dir(m) for m in methods}, layout.TSNE)


if __name__ == "__main__":
    run_stage(tsne_flow, __doc__, load=runs.load)
