"""Task of the preprocess stage: decode one domain into uint8 tensors, stats and a validation split."""

from __future__ import annotations

from prefect import task

from uda.config import DataConfig, Recipe
from uda.preprocess import preprocess_domain


@task(name="preprocess-domain")
def preprocess(domain: str, recipe: Recipe, data: DataConfig) -> dict:
    return preprocess_domain(domain, recipe, data)
