from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from uda.config import ConfigError, load_params, parse_params

ROOT = Path(__file__).resolve().parents[1]


def base() -> dict:
    return yaml.safe_load((ROOT / "params.yaml").read_text())


def test_params_yaml_declares_every_reference_experiment():
    params = load_params(ROOT / "params.yaml")
    assert params.experiment == "mnist_mnistm"
    pairs = {(e.source, e.target) for e in params.experiments.values()}
    assert {("mnist", "mnist_m"), ("mnist", "usps"), ("usps", "mnist"), ("svhn", "mnist"), ("mnist", "svhn"),
            ("pacs_photo", "pacs_art_painting")} <= pairs
    assert params.exp.recipe.channels == 3  # MNIST replicated to RGB beside MNIST-M


def test_choosing_an_experiment_is_a_params_change():
    raw = base() | {"experiment": "photo_art"}
    params = parse_params(raw)
    assert params.exp.domains == ("pacs_photo", "pacs_art_painting")
    assert (params.exp.recipe.resize, params.exp.recipe.image_size) == (256, 224)


@pytest.mark.parametrize(
    "edit, key, expect",
    [
        (lambda r: r["data"].update(bogus=1), "data.bogus", "unknown key"),
        (lambda r: r["experiments"]["mnist_usps"]["recipe"].update(channels=2),
         "experiments.mnist_usps.recipe.channels", "1 or 3"),
        (lambda r: r["data"].update(val_fraction=1.5), "data.val_fraction", "less than 1"),
        (lambda r: r["experiments"]["mnist_usps"].update(target="cifar"), "experiments.mnist_usps.target",
         "unknown domain 'cifar'"),
        (lambda r: r.update(experiment="nope"), "experiment 'nope' is not declared", "declared: mnist_mnistm"),
        (lambda r: r["experiments"]["photo_art"]["recipe"].update(resize=100), "experiments.photo_art.recipe",
         "at least image_size"),
    ],
)
def test_bad_config_names_key_and_what_is_allowed(edit, key, expect):
    raw = base()
    edit(raw)
    with pytest.raises(ConfigError) as e:
        parse_params(raw, "params.yaml")
    assert key in str(e.value) and expect in str(e.value) and "params.yaml" in str(e.value)


@pytest.mark.parametrize("key, value, expect", [
    ("steps", True, "train.steps: Input should be a valid integer (got True)"),
    ("steps", "60", "train.steps: Input should be a valid integer (got '60')"),
    ("batch_size", 64.0, "train.batch_size: Input should be a valid integer (got 64.0)"),
    ("amp", "yes", "train.amp: Input should be a valid boolean (got 'yes')"),
    ("monitor_target", 1, "train.monitor_target: Input should be a valid boolean (got 1)"),
])
def test_counts_and_switches_are_not_coerced(key, value, expect):
    raw = base()
    raw["train"][key] = value
    with pytest.raises(ConfigError) as e:
        parse_params(raw)
    assert expect in str(e.value)


def test_floats_accept_what_yaml_writes():
    raw = base()
    raw["train"]["optimizer"]["lr"] = "1e-3"  # YAML 1.1 reads 1e-3 as a string
    raw["train"]["optimizer"]["weight_decay"] = 0
    from uda.runs import parse

    assert parse(raw).run("dann").train.optimizer.lr == 0.001


def test_config_is_frozen():
    params = load_params(ROOT / "params.yaml")
    with pytest.raises(ValidationError):
        params.data.val_fraction = 0.5


def test_missing_or_malformed_file(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_params(tmp_path / "absent.yaml")
    (tmp_path / "bad.yaml").write_text("experiment: [unclosed\n")
    with pytest.raises(ConfigError, match="bad.yaml: not valid YAML"):
        load_params(tmp_path / "bad.yaml")


def test_digest_tracks_settings():
    a = parse_params(base())
    b = parse_params(base() | {"experiment": "mnist_usps"})
    assert a.digest() == parse_params(base()).digest() != b.digest()


def test_every_block_is_required():
    for key in ("train", "methods", "pipeline", "data", "evaluate", "tsne"):
        raw = base()
        del raw[key]
        with pytest.raises(ConfigError, match=rf"\n  {key}: Field required"):
            parse_params(raw, "params.yaml")
    raw = base()
    del raw["experiments"]["mnist_usps"]["train"]
    with pytest.raises(ConfigError, match="experiments.mnist_usps.train: Field required"):
        parse_params(raw)
