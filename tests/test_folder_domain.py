"""Domains of one's own (uda.datasets.folder): class folders declared in params.yaml, validated like the
built-in datasets, through the data stages and, end to end, every stage and a sweep."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml

from tests.conftest import ROOT, folder_tree, make_project, project_env
from uda.config import ConfigError
from uda.download import fetch_domain
from uda.io import DataError
from uda.preprocess import load_split, preprocess_domain
from uda.runs import parse

CLASSES = ("dog", "guitar", "house")


def params_with(domains: dict, root, recipe=None) -> dict:
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["domains"] = domains
    raw["data"]["root"] = str(root / "data")
    raw["experiments"]["mine"] = {"source": "my_photo", "target": "my_art", "train": {}, "description": "mine",
                                  "recipe": recipe or {"image_size": 32, "resize": 36, "channels": 3}}
    raw["experiment"] = "mine"
    raw["pipeline"]["methods"] = ["source_only", "dann"]
    return raw


@pytest.fixture
def trees(tmp_path, mirror):
    return (folder_tree(mirror, tmp_path / "photo", "photo", CLASSES, 6),
            folder_tree(mirror, tmp_path / "art", "art_painting", CLASSES, 5))


def prepare(params):
    for d in params.exp.domains:
        fetch_domain(d, params.data.raw_dir, None, progress=False, ds=params.dataset(d))
    return {d: preprocess_domain(d, params.exp.recipe, params.data, params.dataset(d)) for d in params.exp.domains}


def test_a_folder_domain_is_copied_verified_and_preprocessed_like_pacs(tmp_path, trees):
    photo, art = trees
    (photo / "dog" / "notes.txt").write_text("not an image: skipped")
    params = parse(params_with({"my_photo": {"path": str(photo), "class_counts": {"dog": 6, "guitar": 6, "house": 6}},
                                "my_art": {"path": str(art)}}, tmp_path)).params
    assert params.dataset("my_photo").classes == CLASSES  # the folder names, sorted
    stats = prepare(params)
    assert stats["my_photo"]["classes"] == list(CLASSES)
    assert stats["my_photo"]["splits"]["all"]["class_counts"] == [6, 6, 6]
    assert stats["my_art"]["splits"]["all"]["shape"] == [3, 32, 32]
    images = load_split(params.data.processed_dir, "my_art", "all")["images"]
    assert images.shape == (15, 3, 32, 32) and images.float().std() > 10  # real pixels, not a blank
    again = fetch_domain("my_photo", params.data.raw_dir, None, progress=False, ds=params.dataset("my_photo"))
    assert again[0].origin == "cached" and again[0].digest.startswith("sha256:")
    (photo / "dog" / "extra.jpg").write_bytes((photo / "dog").joinpath(sorted(p.name for p in (photo / "dog").iterdir()
                                                                              if p.suffix == ".jpg")[0]).read_bytes())
    assert fetch_domain("my_photo", params.data.raw_dir, None, progress=False,
                        ds=params.dataset("my_photo"))[0].origin == str(photo)  # a changed folder is copied again


def test_split_files_list_each_splits_images(tmp_path, trees):
    photo, art = trees
    files = sorted(p.relative_to(photo).as_posix() for p in photo.rglob("*.jpg"))
    (photo / "train.txt").write_text("\n".join(files[::2]) + "\n# a comment\n")
    (photo / "test.txt").write_text("\n".join(files[1::2]) + "\n")
    raw = params_with({"my_photo": {"path": str(photo), "splits": {"train": "train.txt", "test": "test.txt"}},
                       "my_art": {"path": str(art)}}, tmp_path)
    params = parse(raw).params
    stats = prepare(params)["my_photo"]
    assert list(stats["splits"]) == ["train", "test"]
    assert stats["splits"]["train"]["n"] == 9 and stats["splits"]["test"]["n"] == 9
    (photo / "test.txt").write_text("cat/001.jpg\n")
    with pytest.raises(DataError, match=r"test.txt:1: 'cat/001.jpg' is not under a class folder"):
        prepare(parse(raw).params)


def test_a_corrupt_image_is_an_error_naming_the_declared_file_and_keeps_the_old_outputs(tmp_path, trees):
    photo, art = trees
    params = parse(params_with({"my_photo": {"path": str(photo)}, "my_art": {"path": str(art)}}, tmp_path)).params
    prepare(params)
    before = (params.data.processed_dir / "my_photo" / "all.pt").read_bytes()
    (photo / "house" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    fetch_domain("my_photo", params.data.raw_dir, None, progress=False, ds=params.dataset("my_photo"))
    with pytest.raises(DataError, match=rf"{photo}/house/broken.jpg: corrupt or unreadable image"):
        preprocess_domain("my_photo", params.exp.recipe, params.data, params.dataset("my_photo"))
    assert (params.data.processed_dir / "my_photo" / "all.pt").read_bytes() == before


def test_expected_counts_are_checked(tmp_path, trees):
    photo, art = trees
    raw = params_with({"my_photo": {"path": str(photo), "class_counts": {"dog": 6, "guitar": 7, "house": 6}},
                       "my_art": {"path": str(art)}}, tmp_path)
    params = parse(raw).params
    with pytest.raises(DataError, match=r"per-class counts differ from domains.my_photo.class_counts: guitar: 6 "
                                        r"images, expected 7"):
        prepare(params)


def test_source_and_target_must_agree_on_classes(tmp_path, trees):
    photo, art = trees
    (art / "guitar").rename(art / "violin")
    with pytest.raises(ConfigError, match=r"experiments.mine: source and target classes differ \(only in my_photo: "
                                          r"\['guitar'\]; only in my_art: \['violin'\]\)"):
        parse(params_with({"my_photo": {"path": str(photo)}, "my_art": {"path": str(art)}}, tmp_path))


@pytest.mark.parametrize("domains, message", [
    ({"mnist": {"path": "x"}}, "domains.mnist: a built-in domain has this name"),
    ({"my_photo": {"path": "x", "splits": {"test": "t.txt"}}, "my_art": {"path": "y"}}, "must name a train split"),
    ({"my_photo": {"path": "x", "size": 3}, "my_art": {"path": "y"}}, "domains.my_photo.size: unknown key"),
    ({"my_art": {"path": "y"}}, "experiments.mine.source: unknown domain 'my_photo'"),
])
def test_bad_declarations_name_their_key(tmp_path, domains, message):
    with pytest.raises(ConfigError, match=message):
        parse(params_with(domains, tmp_path))


def test_a_missing_folder_is_named(tmp_path):
    with pytest.raises(DataError, match=rf"{tmp_path}/nowhere: not a folder"):
        parse(params_with({"my_photo": {"path": str(tmp_path / "nowhere")}, "my_art": {"path": str(tmp_path)}},
                          tmp_path))


@pytest.mark.slow
def test_a_folder_domain_runs_every_stage_and_a_sweep(tmp_path, mirror, prefect_api):
    """`dvc repro` on an experiment of two declared folders (no code change), then a two-point sweep."""
    photo = folder_tree(mirror, tmp_path / "photo", "photo", CLASSES, 30)
    art = folder_tree(mirror, tmp_path / "art", "art_painting", CLASSES, 30)
    root = make_project(tmp_path / "project", domains={"my_photo": {"path": str(photo)}, "my_art": {"path": str(art)}},
                        experiments={"mine": {"source": "my_photo", "target": "my_art", "train": {}, "description": "",
                                              "recipe": {"image_size": 32, "resize": 36, "channels": 3}}},
                        pipeline={"methods": ["source_only", "dann"]}, evaluate={"features_per_domain": 50},
                        tsne={"per_domain": 40, "perplexity": 10.0})
    raw = yaml.safe_load((root / "params.yaml").read_text())
    (root / "params.yaml").write_text(yaml.safe_dump(raw | {"experiment": "mine"}, sort_keys=False))
    env = project_env(root, prefect_api, mirror)
    for cmd in (["git", "add", "-A"], ["git", "commit", "-qm", "scratch"]):
        subprocess.run(cmd, cwd=root, check=True, env=env)
    run = lambda *a: subprocess.run([sys.executable, *a], cwd=root, env=env, capture_output=True, text=True)  # noqa: E731
    done = run("-m", "dvc", "repro")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    summary = json.loads((root / "reports/summary.json").read_text())
    assert set(summary["methods"]) == {"source_only", "dann"}
    details = json.loads((root / "evaluation/dann/details.json").read_text())
    assert list(details["target"]["class_acc"]) == list(CLASSES) and details["target"]["n"] == 90
    assert (root / "reports/tsne/dann_class.png").stat().st_size > 5_000  # a drawn scatter, not an empty canvas
    assert (root / "data/raw/folders/my_photo/dog").is_dir()
    # the sweep's points train DANN only: each stage process costs seconds, and source only has run above
    done = run("-m", "flows.sweep", "--name", "lr", "--grid", "train.optimizer.lr=0.01,0.001",
               "--set", "pipeline.methods=[dann]")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    sweep = json.loads((root / "reports/sweeps/lr/sweep.json").read_text())
    assert len(sweep["results"]) == 2
    assert all(set(r["target_test_acc"]) == {"dann"} for r in sweep["results"])
