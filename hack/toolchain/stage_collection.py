"""Copy the collection to a real ``ansible_collections/userservice/deploy`` path.

ansible-test must run from a directory whose real path (it resolves symlinks)
ends in ``ansible_collections/<namespace>/<name>``; the checkout does not. The
copy holds the files git tracks plus untracked files that are not ignored,
so ansible-test sees what a commit would contain. Files that left the
checkout are removed from the copy; ``tests/output`` (ansible-test's caches)
is kept between runs. The copy gets its own (empty) git repository: ansible-test
lists files with git and would otherwise find the checkout's repository, in
which build/ is ignored, and see no files at all. The collections this one depends on are linked next to
it from the toolchain venv, where the `ansible` pip package put them.

Usage: stage_collection.py REPO_ROOT STAGE_ROOT
       (the copy goes to STAGE_ROOT/ansible_collections/userservice/deploy)
"""

from __future__ import annotations

import filecmp
import os
import shutil
import subprocess
import sys
from pathlib import Path

NAMESPACE, NAME = "userservice", "deploy"
DEPENDENCIES = ("kubernetes/core", "community/docker", "community/library_inventory_filtering_v1")
# Kept between runs: ansible-test's caches and the copy's own git repository.
KEEP = ("tests/output", ".git")


def listed_files(repo: Path) -> set[str]:
    out = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=repo,
        check=True,
        capture_output=True,
    ).stdout.decode()
    # A tracked file deleted in the work tree is still listed by --cached.
    return {p for p in out.split("\0") if p and (repo / p).is_file()}


def kept(rel: str) -> bool:
    return any(rel == k or rel.startswith(k + "/") for k in KEEP)


def sync(repo: Path, dest: Path) -> None:
    wanted = listed_files(repo)
    dest.mkdir(parents=True, exist_ok=True)
    for rel in sorted(wanted):
        src, dst = repo / rel, dest / rel
        if dst.is_file() and not dst.is_symlink() and filecmp.cmp(src, dst, shallow=False):
            if (src.stat().st_mode & 0o777) != (dst.stat().st_mode & 0o777):
                os.chmod(dst, src.stat().st_mode & 0o777)
            continue
        dst.parent.mkdir(parents=True, exist_ok=True)
        if dst.is_symlink() or dst.exists():
            dst.unlink()
        shutil.copy2(src, dst)
    for root, dirs, files in os.walk(dest, topdown=True):
        rel_root = Path(root).relative_to(dest).as_posix()
        rel_root = "" if rel_root == "." else rel_root + "/"
        dirs[:] = [d for d in dirs if not kept(rel_root + d)]
        for f in files:
            if rel_root + f not in wanted:
                os.unlink(os.path.join(root, f))
    for root, dirs, files in os.walk(dest, topdown=False):
        if root != str(dest) and not dirs and not files and not kept(Path(root).relative_to(dest).as_posix()):
            os.rmdir(root)


def link_dependencies(collections_root: Path) -> None:
    import ansible_collections  # noqa: PLC0415 - from the `ansible` pip package

    for source_root in map(Path, ansible_collections.__path__):
        for dep in DEPENDENCIES:
            src, link = source_root / dep, collections_root / dep
            if src.is_dir():
                link.parent.mkdir(parents=True, exist_ok=True)
                if link.is_symlink() and link.resolve() == src.resolve():
                    continue
                if link.is_symlink():
                    link.unlink()
                link.symlink_to(src, target_is_directory=True)
    missing = [d for d in DEPENDENCIES if not (collections_root / d).is_dir()]
    if missing:
        sys.exit(f"stage_collection: dependencies not found in the venv: {', '.join(missing)}")


def main() -> int:
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    repo, stage = Path(sys.argv[1]).resolve(), Path(sys.argv[2]).resolve()
    collections_root = stage / "ansible_collections"
    dest = collections_root / NAMESPACE / NAME
    sync(repo, dest)
    if not (dest / ".git").exists():
        subprocess.run(["git", "init", "--quiet", str(dest)], check=True)
    link_dependencies(collections_root)
    print(collections_root / NAMESPACE / NAME)
    return 0


if __name__ == "__main__":
    sys.exit(main())
