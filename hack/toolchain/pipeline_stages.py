"""Check that a GitHub Actions workflow or a GitLab CI file carries the pipeline's stages, in order.

Used by hack/toolchain/validate-pipelines beside actionlint and check-jsonschema, which check each
file against its system's own rules but cannot know which stages this project's pipelines promise.

- github: every NAME is the ``name`` of a job or of a step; their first appearances (jobs in file
  order, each job's steps in order) follow the order given.
- gitlab: every NAME is in ``stages:`` in the order given, and at least one job runs in each.

Usage: python hack/toolchain/pipeline_stages.py {github|gitlab} --stage NAME [--stage NAME]... FILE...
Exit: 0 every file has the stages, 1 a file lacks one or has them out of order, 2 usage error.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import yaml

# Top-level keys of a .gitlab-ci.yml that are not jobs.
GITLAB_KEYWORDS = {
    "after_script",
    "before_script",
    "cache",
    "default",
    "image",
    "include",
    "services",
    "spec",
    "stages",
    "variables",
    "workflow",
}


class _GitLabLoader(yaml.SafeLoader):
    """A safe loader that also reads GitLab's ``!reference [job, key]`` tags."""


_GitLabLoader.add_constructor("!reference", lambda loader, node: loader.construct_sequence(node))


def read_yaml(path: str) -> Any:
    with open(path, encoding="utf-8") as handle:
        return yaml.load(handle, Loader=_GitLabLoader)  # noqa: S506 - a SafeLoader subclass


def compare_order(found: list[str], wanted: list[str]) -> list[str]:
    """Problems with ``found`` (names in file order) against ``wanted``: missing, or out of order."""
    problems = [f"stage {name!r} is missing" for name in wanted if name not in found]
    present = [name for name in wanted if name in found]
    positions = [found.index(name) for name in present]
    for before, after, pos_before, pos_after in zip(present, present[1:], positions, positions[1:]):
        if pos_after < pos_before:
            problems.append(f"stage {after!r} comes before {before!r}; the order is: {' | '.join(wanted)}")
    return problems


def read_github_names(document: dict[str, Any]) -> list[str]:
    names: list[str] = []
    for key, job in (document.get("jobs") or {}).items():
        if not isinstance(job, dict):
            continue
        names.append(str(job.get("name", key)))
        names.extend(str(step["name"]) for step in job.get("steps") or [] if isinstance(step, dict) and "name" in step)
    return names


def check_github(document: dict[str, Any], wanted: list[str]) -> list[str]:
    names = read_github_names(document)
    # A name may repeat (a "Checkout" step in every job): its first appearance counts.
    first = list(dict.fromkeys(names))
    return compare_order(first, wanted)


def check_gitlab(document: dict[str, Any], wanted: list[str]) -> list[str]:
    stages = [str(s) for s in document.get("stages") or []]
    problems = compare_order(stages, wanted)
    used = {
        str(job.get("stage", "test"))
        for key, job in document.items()
        if isinstance(job, dict) and key not in GITLAB_KEYWORDS and not str(key).startswith(".")
    }
    problems.extend(f"stage {name!r} has no job" for name in wanted if name in stages and name not in used)
    return problems


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=["github", "gitlab"])
    parser.add_argument("--stage", action="append", required=True, help="a stage name, in order (repeat)")
    parser.add_argument("files", nargs="+")
    args = parser.parse_args(argv)
    check = check_github if args.kind == "github" else check_gitlab
    failed = 0
    for path in args.files:
        document = read_yaml(path)
        if not isinstance(document, dict):
            problems = ["not a YAML mapping"]
        else:
            problems = check(document, args.stage)
        for problem in problems:
            print(f"{path}: {problem}")
        if problems:
            failed += 1
        else:
            print(f"{path}: has the {len(args.stage)} stages in order")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
