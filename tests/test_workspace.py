"""A sweep point's workspace (tasks/workspace.py): a clone at the sweep's commit on the machine's DVC cache,
and the refusal of a tree whose tracked files differ from that commit."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tasks import workspace
from tests.conftest import ROOT
from uda.io import DataError

GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}


@pytest.fixture
def repo(tmp_path, monkeypatch):
    for key, value in GIT_ENV.items():
        monkeypatch.setenv(key, value)
    root = tmp_path / "project"
    root.mkdir()
    (root / "params.yaml").write_text("a: 1\n")
    shutil.copy2(ROOT / ".gitignore", root / ".gitignore")  # the project's own: it must ignore .workspaces/
    for cmd in (["git", "init", "-q"], [sys.executable, "-m", "dvc", "init", "-q"], ["git", "add", "-A"],
                ["git", "commit", "-qm", "one"]):
        subprocess.run(cmd, cwd=root, check=True)
    return root


def test_a_tree_with_uncommitted_tracked_edits_is_refused_naming_them(repo):
    head = workspace.commit_of(repo)
    (repo / "untracked.txt").write_text("not part of any commit, and harmless\n")
    assert workspace.commit_of(repo) == head
    (repo / "params.yaml").write_text("a: 2\n")
    with pytest.raises(DataError, match=r"params\.yaml.*commit or stash"):
        workspace.commit_of(repo)


def test_a_workspace_is_a_clone_at_the_commit_on_the_machines_cache(repo):
    first = workspace.commit_of(repo)
    (repo / "params.yaml").write_text("a: 2\n")
    subprocess.run(["git", "commit", "-qam", "two"], cwd=repo, check=True)
    ws = workspace.create.fn(str(repo), first, repo, "s/0-x")  # the sweep's commit, not the newer HEAD
    path = repo / ".workspaces/s/0-x"
    assert ws["path"] == str(path) and ws["seconds"] > 0
    assert (path / "params.yaml").read_text() == "a: 1\n" and (repo / "params.yaml").read_text() == "a: 2\n"
    cache = subprocess.run([sys.executable, "-m", "dvc", "cache", "dir"], cwd=path, capture_output=True, text=True)
    assert cache.stdout.strip() == str(workspace.shared_cache(repo))  # one cache, so one run cache
    (path / "params.yaml").write_text("a: 3\n")  # a point's -S edits stay in its clone
    assert (repo / "params.yaml").read_text() == "a: 2\n"
    assert subprocess.run(["git", "status", "--porcelain"], cwd=repo, capture_output=True,
                          text=True).stdout == ""  # .workspaces/ is ignored by the project's git


def _dvc_repo_with_a_persisted_stage(root, counter):
    """`fetch` persists its output (as `download` does) and counts its runs in a file outside the repository."""
    (root / "dvc.yaml").write_text(
        "stages:\n  fetch:\n    cmd: python fetch.py\n    deps: [fetch.py]\n"
        "    outs:\n      - raw:\n          persist: true\n")
    (root / "fetch.py").write_text(
        "from pathlib import Path\nPath('raw').mkdir(exist_ok=True)\nPath('raw/a.txt').write_text('data')\n"
        f"with open({str(counter)!r}, 'a') as f:\n    f.write('run\\n')\n")
    (root / ".gitignore").write_text((root / ".gitignore").read_text() + "/raw\n")
    subprocess.run(["git", "add", "-A"], cwd=root, check=True)
    subprocess.run(["git", "commit", "-qm", "pipeline"], cwd=root, check=True)


def _repro(path):
    subprocess.run([sys.executable, "-m", "dvc", "repro", "-q"], cwd=path, check=True)


def test_a_persisted_stage_is_restored_from_the_cache_not_run_again(repo, tmp_path):
    counter = tmp_path / "runs.txt"
    _dvc_repo_with_a_persisted_stage(repo, counter)
    assert workspace.persisted_stages(repo) == ["fetch"]
    head = workspace.commit_of(repo)
    first = workspace.create.fn(str(repo), head, repo, "s/0-a")
    assert first["restored"] == []  # nothing ran on this machine yet
    _repro(first["path"])
    assert counter.read_text().count("run") == 1
    workspace.remember_persisted(Path(first["path"]), repo)
    workspace.remove(Path(first["path"]))

    second = workspace.create.fn(str(repo), head, repo, "s/1-b")  # from the first point's lock entry
    assert second["restored"] == ["fetch"]
    assert (Path(second["path"]) / "raw/a.txt").read_text() == "data"
    _repro(second["path"])
    assert counter.read_text().count("run") == 1  # restored, not run

    (repo / "fetch.py").write_text((repo / "fetch.py").read_text() + "# changed\n")  # a new commit's code
    subprocess.run(["git", "commit", "-qam", "changed"], cwd=repo, check=True)
    third = workspace.create.fn(str(repo), workspace.commit_of(repo), repo, "s/2-c")
    _repro(third["path"])  # the remembered entry no longer matches the deps: DVC runs the stage
    assert counter.read_text().count("run") == 2


def test_a_remembered_entry_whose_outputs_left_the_cache_is_dropped(repo, tmp_path):
    counter = tmp_path / "runs.txt"
    _dvc_repo_with_a_persisted_stage(repo, counter)
    head = workspace.commit_of(repo)
    first = workspace.create.fn(str(repo), head, repo, "s/0-a")
    _repro(first["path"])
    workspace.remember_persisted(Path(first["path"]), repo)
    shutil.rmtree(workspace.shared_cache(repo) / "files")  # another machine's cache, say: it lacks the outputs
    second = workspace.create.fn(str(repo), head, repo, "s/1-b")
    assert second["restored"] == []
    assert not (Path(second["path"]) / "dvc.lock").exists()  # as a clone of the commit has it
    _repro(second["path"])
    assert counter.read_text().count("run") == 2
