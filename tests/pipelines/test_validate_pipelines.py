"""hack/toolchain/validate-pipelines accepts the example pipelines and rejects broken ones.

Two kinds of broken input:
- the committed copies under tests/pipelines/broken/, each with its defects marked BROKEN;
- one defect at a time applied to the live example files, so every validator (actionlint, the GitLab
  CI schema, the Jenkinsfile check and the stage check) is shown to catch a realistic mistake in the
  files as they are now. Each mutation asserts that the text it replaces still exists, so a change to
  an example cannot turn a test into one that proves nothing.

A rejection must be exit code 1 with the validator's own message: exit 2 (a tool missing) or a
different message would mean the file was not really checked.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
VALIDATE = REPO / "hack" / "toolchain" / "validate-pipelines"
GITHUB = REPO / "examples" / "pipelines" / "github" / "release.yml"
GITLAB = REPO / "examples" / "pipelines" / "gitlab" / ".gitlab-ci.yml"
JENKINS = REPO / "examples" / "pipelines" / "jenkins" / "Jenkinsfile"
BROKEN = Path(__file__).resolve().parent / "broken"


def run_validator(*files: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(VALIDATE), *map(str, files)],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, **(env or {})},
        timeout=600,
    )


def write_mutant(tmp_path: Path, source: Path, old: str, new: str) -> Path:
    """``source`` with ``old`` replaced once by ``new``, under a name that keeps its kind."""
    text = source.read_text(encoding="utf-8")
    assert old in text, f"{source.relative_to(REPO)} no longer contains {old!r}: update this test"
    # The validator tells the kind by path: */github/*.yml, *.gitlab-ci.yml, *Jenkinsfile.
    target = tmp_path / source.parent.name / source.name
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text.replace(old, new, 1), encoding="utf-8")
    return target


def test_default_run_checks_every_example() -> None:
    result = run_validator()
    assert result.returncode == 0, result.stdout + result.stderr
    for path in (GITHUB, GITLAB, JENKINS):
        assert f"ok      {path.relative_to(REPO)}" in result.stdout
    assert "3 valid, 0 invalid" in result.stdout


@pytest.mark.parametrize(
    ("broken", "messages"),
    [
        (
            BROKEN / "github" / "release.yml",
            [
                'job "production" needs job "stagin" which does not exist in this workflow [job-needs]',
                'property "staging-digets" is not defined',
            ],
        ),
        (
            BROKEN / "gitlab" / ".gitlab-ci.yml",
            [
                "$['approve-production'].rules[0].when: 'manually' is not one of",
                "$.monitor.environment.action: 'check' is not one of",
            ],
        ),
        (
            BROKEN / "jenkins" / "Jenkinsfile",
            [
                "stage 'Staging tests' 'steps': expected a step, found '(inventory = inventories/staging)'",
                "option 'disableConcurrentBuilds' exists only at the pipeline level, not in a stage",
            ],
        ),
    ],
    ids=["github", "gitlab", "jenkins"],
)
def test_broken_copies_are_rejected(broken: Path, messages: list[str]) -> None:
    result = run_validator(broken)
    assert result.returncode == 1, result.stdout + result.stderr
    for message in messages:
        assert message in result.stdout, result.stdout
    assert "0 valid, 1 invalid" in result.stdout


MUTATIONS = [
    pytest.param(
        GITHUB,
        "      group: user-service-production\n      cancel-in-progress: false",
        "      group: user-service-production\n      cancel-in-progress: maybe",
        'boolean literal "true" or "false", but found plain text node',
        id="github-concurrency-not-boolean",
    ),
    pytest.param(
        GITHUB,
        "runs-on: [self-hosted, userservice-deploy]\n    outputs:\n      release:",
        "runs-on: [self-hosted, userservice-depoly]\n    outputs:\n      release:",
        'label "userservice-depoly" is unknown',
        id="github-unknown-runner-label",
    ),
    pytest.param(
        GITHUB,
        "      - name: Approval\n",
        "      - name: Wait\n",
        "stage 'Approval' is missing",
        id="github-stage-missing",
    ),
    pytest.param(
        GITLAB,
        "  resource_group: user-service-production\n  script:\n    # The strategy",
        "  resource_group: [user-service-production]\n  script:\n    # The strategy",
        "$['deploy-production'].resource_group: ['user-service-production'] is not of type 'string'",
        id="gitlab-resource-group-not-string",
    ),
    pytest.param(
        GITLAB,
        "  - approval\n  - deploy-production\n",
        "  - deploy-production\n  - approval\n",
        "stage 'deploy-production' comes before 'approval'",
        id="gitlab-stage-order",
    ),
    pytest.param(
        JENKINS,
        "    stages {\n        stage('Build, test and publish') {",
        "    stages {\n        stage('Build, test and publish' {",
        "Groovy syntax error",
        id="jenkins-syntax-error",
    ),
    pytest.param(
        JENKINS,
        "pipeline {\n    agent none\n",
        "pipeline {\n",
        "'pipeline' has no 'agent' section (required)",
        id="jenkins-no-agent",
    ),
    pytest.param(
        JENKINS,
        '                message "Release ${env.RELEASE_VERSION} to production?"\n',
        "",
        "'input' needs a 'message'",
        id="jenkins-input-without-message",
    ),
    pytest.param(
        JENKINS,
        "stage('Approval') {",
        "stage('Sign-off') {",
        "required stage 'Approval' is missing",
        id="jenkins-stage-missing",
    ),
    pytest.param(
        JENKINS,
        "                beforeInput true\n                allOf {",
        "                beforeInput true\n                allof {",
        "unknown condition",
        id="jenkins-unknown-when-condition",
    ),
]


@pytest.mark.parametrize(("source", "old", "new", "message"), MUTATIONS)
def test_one_defect_in_an_example_is_rejected(tmp_path: Path, source: Path, old: str, new: str, message: str) -> None:
    mutant = write_mutant(tmp_path, source, old, new)
    result = run_validator(mutant)
    assert result.returncode == 1, result.stdout + result.stderr
    assert message in result.stdout, result.stdout


def test_a_missing_tool_is_an_error_not_a_pass(tmp_path: Path) -> None:
    result = run_validator(GITLAB, env={"VENV": str(tmp_path / "no-venv")})
    assert result.returncode == 2, result.stdout + result.stderr
    assert "check-jsonschema is missing" in result.stderr


def test_an_unknown_file_kind_is_an_error(tmp_path: Path) -> None:
    other = tmp_path / "pipeline.yml"
    shutil.copy(GITHUB, other)
    result = run_validator(other)
    assert result.returncode == 2
    assert "unknown pipeline kind" in result.stderr
