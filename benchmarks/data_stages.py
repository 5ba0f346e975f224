"""Wall time of the data stages per domain (mirror copy + verify, decode + transform + write).

    python benchmarks/data_stages.py            # prints a Markdown table; paste into docs/benchmarks.md
"""

from __future__ import annotations

import os
import platform
import tempfile
import time

import torch

from uda.config import DataConfig, Recipe
from uda.download import fetch_domain, resolve_mirror
from uda.preprocess import preprocess_domain

CASES = [("mnist", Recipe(image_size=32, channels=3)), ("mnist_m", Recipe(image_size=32, channels=3)),
         ("usps", Recipe(image_size=32, channels=1)),
         ("pacs_photo", Recipe(image_size=224, resize=256, channels=3)),
         ("pacs_art_painting", Recipe(image_size=224, resize=256, channels=3))]


def main() -> None:
    mirror = resolve_mirror(None)
    if mirror is None:
        raise SystemExit("set UDA_DATA_MIRROR to a folder laid out like shared/datasets")
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"torch {torch.__version__}, threads {torch.get_num_threads()}\n")
    print("| domain | recipe | images | download (s) | preprocess (s) | images/s |")
    print("| --- | --- | --- | --- | --- | --- |")
    with tempfile.TemporaryDirectory() as tmp:
        data = DataConfig(root=tmp)
        for domain, recipe in CASES:
            t0 = time.perf_counter()
            fetch_domain(domain, data.raw_dir, mirror, progress=False)
            t1 = time.perf_counter()
            stats = preprocess_domain(domain, recipe, data)
            t2 = time.perf_counter()
            n = sum(s["n"] for s in stats["splits"].values())
            shape = "×".join(map(str, next(iter(stats["splits"].values()))["shape"]))
            print(f"| {domain} | {shape} | {n:,} | {t1 - t0:.1f} | {t2 - t1:.1f} | {n / (t2 - t1):,.0f} |")


if __name__ == "__main__":
    main()
