"""Task of the preprocess stage: decode one domain into uint8 tensors, stats and a validation split."""

from __future__ import annotations

from prefect import task

from uda.config import DataConfig, Recipe
from uda.datasets import DatasetSpec
from uda.preprocess import preprocess_domain


@task(name="preprocess-domain")
def preprocess(domain: str, ds: DatasetSpec, recipe: Recipe, data: DataConfig) -> dict:
    return preprocess_domain(domain, recipe, data, ds)
