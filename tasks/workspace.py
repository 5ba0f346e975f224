"""A sweep point's workspace: a clone of the project at the sweep's commit, sharing this machine's DVC cache.

Two points never share a working tree, a params.yaml or a DVC lock, because each runs in a clone of its own
(a git worktree would share the repository's refs, and DVC keeps the state of a running experiment in
`refs/exps/exec/*`, so two experiments at once would overwrite each other's). The clone borrows the git
objects of a local repository (`--shared`) and uses the DVC cache of the machine's folder, run cache
included, with links rather than copies, so a stage a point does not change is restored, not re-run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml
from prefect import task
from prefect.cache_policies import NO_CACHE

from uda.io import DataError, atomic_write

WORKSPACES = ".workspaces"  # inside the machine's folder, git- and DVC-ignored
PERSISTED_LOCK = "persisted.lock"  # in .workspaces/: the last lock entries of stages whose outputs DVC persists
WORKER_DIR = "UDA_WORKER_DIR"


def machine_dir(checkout: Path) -> Path:
    """The folder whose DVC cache, checkpoints/ and .workspaces/ the points run on this machine share:
    UDA_WORKER_DIR where set (workers whose flow runs start in fresh clones, by Prefect's git_clone pull
    step), else the checkout the flow run starts in."""
    return Path(os.environ.get(WORKER_DIR) or checkout).resolve()


def _call(cmd: list[str], cwd: Path | None, check: bool = True) -> str | None:
    """The command's stdout; on failure a DataError naming it and the folder (or None, with check=False)."""
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        if not check:
            return None
        shown = " ".join(cmd[2:] if cmd[0] == sys.executable else cmd)
        raise DataError(f"`{shown}` failed in {cwd or Path.cwd()}: {done.stderr.strip()[-1000:]}")
    return done.stdout.strip()


def _git(*args: str, cwd: Path | None = None) -> str:
    return _call(["git", *args], cwd)


def _dvc(*args: str, cwd: Path, check: bool = True) -> str | None:
    return _call([sys.executable, "-m", "dvc", *args], cwd, check)


def commit_of(root: Path) -> str:
    """HEAD of the project, refusing a tree whose tracked files differ from it: every point runs the commit,
    so uncommitted edits would silently not be part of the sweep."""
    changed = _git("status", "--porcelain", "--untracked-files=no", cwd=root)
    if changed:
        files = ", ".join(line.split(maxsplit=1)[-1] for line in changed.splitlines()[:10])
        raise DataError(f"{root}: tracked files differ from HEAD ({files}); a sweep runs every point at a commit, "
                        "so commit or stash them first")
    return _git("rev-parse", "HEAD", cwd=root)


def shared_cache(machine: Path) -> Path:
    """The DVC cache of this machine's folder: its own, where it is a DVC repository (wherever `dvc cache dir`
    put it), else <folder>/dvc-cache."""
    if (machine / ".dvc").is_dir():
        return Path(_dvc("cache", "dir", cwd=machine)).resolve()
    return machine / "dvc-cache"


@task(name="workspace", cache_policy=NO_CACHE, persist_result=False)
def create(repo: str, commit: str, machine: Path, name: str) -> dict:
    """Clone `repo` at `commit` into <machine>/.workspaces/<name>, wired to the machine's DVC cache.

    Returns the workspace's path and the seconds its creation took (the isolation's cost per point)."""
    start = time.perf_counter()
    dest = Path(machine) / WORKSPACES / name
    if dest.exists():  # left by an attempt that died: its checkpoints live outside it, so nothing is lost
        shutil.rmtree(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    local = Path(repo).is_dir()
    _git("clone", "--quiet", "--no-checkout", *(["--shared"] if local else []), repo, str(dest))
    _git("checkout", "--quiet", "--detach", commit, cwd=dest)
    own = Path(machine) / ".dvc" / "config.local"  # remotes' credentials and the like stay this machine's
    if own.is_file():
        shutil.copy2(own, dest / ".dvc" / "config.local")
    _dvc("cache", "dir", "--local", str(shared_cache(Path(machine))), cwd=dest)
    # Hard links where the file system allows: restoring a cached stage then costs no copy. DVC never writes
    # into a linked output (it removes outputs before a stage runs), so sharing them is safe.
    _dvc("config", "--local", "cache.type", "reflink,hardlink,copy", cwd=dest)
    restored = restore_persisted(dest, Path(machine))
    return {"path": str(dest), "seconds": time.perf_counter() - start, "restored": restored}


def persisted_stages(path: Path) -> list[str]:
    """The plain stages of dvc.yaml with an output DVC persists (`download`): DVC keeps no run cache for
    them, so a fresh clone would run them again although their outputs sit in the shared cache."""
    pipeline = path / "dvc.yaml"
    stages = (yaml.safe_load(pipeline.read_text()) or {}).get("stages", {}) if pipeline.is_file() else {}
    return [name for name, st in stages.items() if "foreach" not in st and any(
        isinstance(out, dict) and any((o or {}).get("persist") for o in out.values()) for out in st.get("outs", []))]


def _lock_stages(path: Path) -> dict:
    return (yaml.safe_load(path.read_text()) or {}).get("stages", {}) if path.is_file() else {}


def restore_persisted(dest: Path, machine: Path) -> list[str]:
    """Give a fresh workspace the persisted stages' outputs, from the shared cache, and their lock entries.

    The entries come from the clone's own dvc.lock, else from the last point that ran on this machine
    (`remember_persisted`), else from the machine's checkout. DVC still checks them against the clone's
    deps and params when the point runs, so an entry that no longer matches only means the stage runs,
    as it would have; one whose outputs are not in this machine's cache is dropped, and the stage runs.
    Returns the stages restored."""
    lock = dest / "dvc.lock"
    own = _lock_stages(lock)
    sources = [own, _lock_stages(machine / WORKSPACES / PERSISTED_LOCK), _lock_stages(machine / "dvc.lock")]
    entries = {}
    for name in persisted_stages(dest):
        entry = next((s[name] for s in sources if name in s), None)
        if entry is not None:
            entries[name] = entry
    if not entries:
        return []
    original = lock.read_text() if lock.is_file() else None
    data = yaml.safe_load(original) if original else {"schema": "2.0"}
    lock.write_text(yaml.safe_dump({**data, "stages": {**own, **entries}}, sort_keys=False))
    restored = [name for name in entries if _dvc("checkout", "--quiet", name, cwd=dest, check=False) is not None]
    missing = set(entries) - set(restored)
    if missing:  # outputs not in this cache: those entries go, so their stages run as they would have
        kept = {k: v for k, v in {**own, **entries}.items() if k not in missing or k in own}
        if kept or original:
            lock.write_text(yaml.safe_dump({**data, "stages": kept}, sort_keys=False))
        else:
            lock.unlink()
    return restored


def remember_persisted(path: Path, machine: Path) -> None:
    """Keep a finished point's lock entries of the persisted stages for the next point on this machine."""
    persisted = set(persisted_stages(path))
    entries = {k: v for k, v in _lock_stages(path / "dvc.lock").items() if k in persisted}
    if entries:
        memo = machine / WORKSPACES / PERSISTED_LOCK
        with atomic_write(memo, "w") as f:  # two points may finish at once: each writes whole, or not at all
            yaml.safe_dump({"schema": "2.0", "stages": entries}, f, sort_keys=False)


def has_remote(path: Path) -> bool:
    """Whether the workspace has a default DVC remote (then `dvc exp push` also pushes its outputs there)."""
    return bool(_dvc("config", "core.remote", cwd=path, check=False))


def remove(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
