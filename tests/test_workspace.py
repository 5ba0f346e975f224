"""A sweep point's workspace (tasks/workspace.py): a clone at the sweep's commit on the machine's DVC cache,
and the refusal of a tree whose tracked files differ from that commit."""

from __future__ import annotations

import shutil
import subprocess
import sys

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
