"""Run specs: params resolved once into one frozen object per method, the three-way merge checked at load."""

from __future__ import annotations

import dataclasses

import pytest
import yaml

from tests.conftest import ROOT
from uda.config import ConfigError
from uda.methods import METHODS
from uda.methods.dann import DannConfig
from uda.runs import load, parse


def base() -> dict:
    return yaml.safe_load((ROOT / "params.yaml").read_text())


def test_one_frozen_spec_per_registered_method():
    resolved = load(ROOT / "params.yaml")
    assert set(resolved.runs) == set(METHODS)
    spec = resolved.run("dann")
    assert isinstance(spec.config, DannConfig) and spec.config.gamma == base()["methods"]["dann"]["gamma"]
    assert spec.key.startswith("mnist_mnistm/dann-seed0-") and spec.experiment == "mnist_mnistm"
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.method = "gta"
    with pytest.raises(TypeError):
        resolved.runs["dann"] = spec  # the mapping is read-only too
    with pytest.raises(ConfigError, match=f"unknown method 'bogus'; registered: {', '.join(sorted(METHODS))}"):
        resolved.run("bogus")


def test_a_method_budget_overrides_train_and_an_experiment_block_wins():
    raw = base()
    raw["methods"]["gta"] = {"train": {"steps": 123, "batch_size": 16}}
    raw["experiments"]["mnist_mnistm"]["train"] = {"batch_size": 8}
    resolved = parse(raw)
    assert resolved.run("gta").train.steps == 123 and resolved.run("gta").train.batch_size == 8
    assert resolved.run("dann").train.steps == raw["train"]["steps"]
    assert resolved.run("dann").train.batch_size == 8


@pytest.mark.parametrize("edit, message", [
    (lambda r: r["methods"]["gta"].update(train={"stepz": 1}), "methods.gta.train.stepz: unknown key"),
    # the three-way merge: a bad value names the layer that set it
    (lambda r: r["methods"]["dann"].update(train={"optimizer": {"lr": -1}}),
     "methods.dann.train.optimizer.lr: Input should be greater than 0"),
    (lambda r: r["experiments"]["photo_art"]["train"].update(batch_size=0),
     "experiments.photo_art.train.batch_size: Input should be greater than 0"),
    # a merge that only fails as a whole: the top-level steps with an experiment's epochs
    (lambda r: r["experiments"]["mnist_usps"]["train"].update(epochs=3),
     "train + methods.adda.train + experiments.mnist_usps.train: Value error, set exactly one of steps and epochs"),
    (lambda r: r["methods"]["dann"].update(bogus=1), "methods.dann.bogus: unknown key"),
    (lambda r: r["methods"]["dann"].update(bn="both"), "methods.dann.bn: Input should be 'shared' or 'per_domain'"),
    (lambda r: r["methods"].update(bogus={}), f"methods.bogus: unknown method (registered: {', '.join(METHODS)})"),
    (lambda r: r["pipeline"].update(methods=["dann", "bogus"]), "pipeline.methods.1: unknown method 'bogus'"),
])
def test_a_bad_override_fails_at_load_naming_its_key(edit, message):
    raw = base()
    edit(raw)
    with pytest.raises(ConfigError) as e:
        parse(raw, "params.yaml")
    assert message in str(e.value) and "params.yaml: invalid config" in str(e.value)


def test_the_run_key_changes_with_what_the_run_depends_on_only():
    key = lambda raw, m="dann": parse(raw).run(m).key  # noqa: E731
    raw = base()
    assert key(raw) == key(base())
    raw["methods"]["dann"]["gamma"] = 5.0
    assert key(raw) != key(base()) and key(raw, "source_only") == key(base(), "source_only")
    raw = base()
    raw["experiments"]["mnist_mnistm"]["description"] = "another description"
    assert key(raw) == key(base())
    raw["train"]["seed"] = 1
    assert key(raw) != key(base()) and "-seed1-" in key(raw)


TOY = '''"""A toy method: source only with a weight, to show that a method is one file."""

from typing import Annotated

from pydantic import Field

from uda.config import MethodConfig
from uda.methods.source_only import SourceOnly


class ToyConfig(MethodConfig):
    weight: Annotated[float, Field(gt=0)] = 0.5


class Toy(SourceOnly):
    name = "toy"
    Config = ToyConfig


METHOD = Toy
'''


def test_adding_a_method_is_one_file_and_a_params_block(tmp_path):
    import shutil
    import subprocess
    import sys

    shutil.copytree(ROOT / "src", tmp_path / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    (tmp_path / "src/uda/methods/toy.py").write_text(TOY)
    raw = base()
    raw["methods"]["toy"] = {"weight": 2.0, "train": {"steps": 7}}
    raw["pipeline"]["methods"] = ["source_only", "toy"]
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    code = ("from uda.runs import load; spec = load('params.yaml').run('toy'); "
            "print(type(spec.config).__name__, spec.config.weight, spec.train.steps)")
    env = {"PYTHONPATH": str(tmp_path / "src"), "PATH": ""}
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, env=env)
    assert done.stdout.split() == ["ToyConfig", "2.0", "7"], done.stderr
    raw["methods"]["toy"] = {"weight": -1}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, env=env)
    assert "methods.toy.weight: Input should be greater than 0" in done.stderr


def test_the_validator_and_the_refine_stages_are_checked_at_load():
    from uda.runs import validator_names
    from uda.validators import VALIDATORS

    assert validator_names() == set(VALIDATORS)  # read from the files, without importing them
    raw = base()
    raw["evaluate"]["validator"] = "oracle"
    with pytest.raises(ConfigError, match=r"evaluate.validator: unknown validator 'oracle' \(registered: bnm,"):
        parse(raw)
    raw = base()
    raw["pipeline"]["refine"] = {"vada": "dirt_t"}
    with pytest.raises(ConfigError, match=r"pipeline: .*dirt_t starts from vada's model, so vada must be in methods"):
        parse(raw)
    raw["pipeline"]["methods"] = ["vada", "dirt_t"]
    with pytest.raises(ConfigError, match="dirt_t is trained by its refine stage"):
        parse(raw)
    raw["pipeline"] = {"methods": ["dann"], "refine": {"dann": "dirt_t"}}
    with pytest.raises(ConfigError, match="pipeline.refine.dann: dirt_t starts from vada, not dann"):
        parse(raw)
    raw["pipeline"] = {"methods": ["vada"], "refine": {"vada": "dirt_t"}}
    resolved = parse(raw)
    assert resolved.params.pipeline.all_methods == ["vada", "dirt_t"]
    assert resolved.run("dirt_t").train.ema == 0.998 and resolved.run("dann").train.ema == 0.0


def test_a_method_that_cannot_take_the_experiments_images_fails_before_any_work():
    """PACS at 96 or 224 pixels: GTA's digit networks take 32×32 only. The error says so at load, with the
    override that leaves it out, instead of after the other methods have trained."""
    raw = base() | {"experiment": "photo_art_small"}
    with pytest.raises(ConfigError, match=r"gta's networks take 32×32 input, and experiment photo_art_small "
                                          r"stores 96×96 images; leave it out \(e.g. -S 'pipeline.methods="
                                          r"\[source_only,dann\]'\)"):
        parse(raw)
    raw["pipeline"]["methods"] = ["source_only", "dann"]
    assert parse(raw).run("dann").exp.recipe.image_size == 96
