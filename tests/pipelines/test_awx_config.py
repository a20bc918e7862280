"""examples/awx/configure.yml passes the argument validation of the awx.awx modules it calls, offline.

AWX cannot run here, so each task's arguments are checked the way the module itself checks them
before it talks to the controller: every task is templated as Ansible would template it (its loop
items, the play's vars_files and vars, lookups of an empty environment), and the result is validated
with ArgumentSpecValidator against the module's own argument spec: the spec its main() hands to
ControllerAPIModule (captured by stopping main() there), plus the connection options every awx.awx
module adds, with the module's mutually_exclusive and required_if rules.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any, Iterator, NamedTuple

import pytest
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.parsing.dataloader import DataLoader
from ansible.plugins.loader import init_plugin_loader
from ansible.template import Templar

REPO = Path(__file__).resolve().parents[2]
CONFIGURE = REPO / "examples" / "awx" / "configure.yml"

init_plugin_loader([])

from ansible_collections.awx.awx.plugins.module_utils import controller_api  # noqa: E402


class CapturedSpec(Exception):
    def __init__(self, argument_spec: dict[str, Any], rules: dict[str, Any]) -> None:
        super().__init__("argument spec captured")
        self.argument_spec = argument_spec
        self.rules = rules


def module_validator(module: str, monkeypatch: pytest.MonkeyPatch) -> ArgumentSpecValidator:
    """The validator of awx.awx.<module>: its main() stopped where it builds ControllerAPIModule."""

    def capture(self: Any, argument_spec: dict[str, Any], **rules: Any) -> None:
        raise CapturedSpec(argument_spec, rules)

    monkeypatch.setattr(controller_api.ControllerAPIModule, "__init__", capture)
    code = importlib.import_module(f"ansible_collections.awx.awx.plugins.modules.{module}")
    with pytest.raises(CapturedSpec) as captured:
        code.main()
    spec = dict(controller_api.ControllerModule.AUTH_ARGSPEC)
    spec.update(captured.value.argument_spec)
    rules = {key: value for key, value in captured.value.rules.items() if key != "direct_params"}
    return ArgumentSpecValidator(spec, **rules)


class RenderedTask(NamedTuple):
    name: str
    module: str
    arguments: dict[str, Any]


def rendered_tasks() -> Iterator[RenderedTask]:
    """Every task and loop item of configure.yml, with its arguments templated."""
    loader = DataLoader()
    play = loader.load_from_file(str(CONFIGURE), trusted_as_template=True)[0]
    variables: dict[str, Any] = {}
    for vars_file in play.get("vars_files", []):
        variables.update(loader.load_from_file(str(CONFIGURE.parent / vars_file), trusted_as_template=True))
    variables.update(play.get("vars", {}))
    for task in play["tasks"]:
        (module,) = [key for key in task if key.startswith("awx.awx.")]
        scope = dict(variables, **task.get("vars", {}))
        items = Templar(loader=loader, variables=scope).template(task["loop"]) if "loop" in task else [None]
        loop_var = task.get("loop_control", {}).get("loop_var", "item")
        for item in items:
            item_scope = dict(scope, **{loop_var: item}) if item is not None else scope
            arguments = Templar(loader=loader, variables=item_scope).template(task[module])
            yield RenderedTask(task["name"], module.rsplit(".", 1)[1], arguments)


TASKS = list(rendered_tasks())


def test_configure_uses_the_expected_modules() -> None:
    used = {task.module for task in TASKS}
    assert used == {
        "organization",
        "execution_environment",
        "credential_type",
        "credential",
        "project",
        "inventory",
        "inventory_source",
        "job_template",
        "workflow_job_template",
        "workflow_job_template_node",
    }


@pytest.mark.parametrize(
    ("name", "module", "arguments"), TASKS, ids=[f"{task.module}:{i}" for i, task in enumerate(TASKS)]
)
def test_task_arguments_pass_the_module_argument_spec(
    name: str, module: str, arguments: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    result = module_validator(module, monkeypatch).validate(arguments)
    assert not result.error_messages, f"{name} ({module}): " + "; ".join(result.error_messages)


def test_a_wrong_argument_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    # The check would catch a typo, a wrong type and an argument two options exclude.
    validator = module_validator("workflow_job_template_node", monkeypatch)
    good = {"identifier": "build", "workflow_job_template": "User Service release", "unified_job_template": "x"}
    assert not validator.validate(good).error_messages
    assert validator.validate(dict(good, sucess_nodes=["a"])).error_messages
    assert validator.validate(dict(good, approval_node={"name": "Approve"})).error_messages
    job_template = module_validator("job_template", monkeypatch)
    assert job_template.validate({"name": "x", "survey_spec": "not a dict"}).error_messages


def test_the_kubernetes_credential_type_injects_what_the_playbooks_read() -> None:
    (kube,) = [
        task.arguments for task in TASKS if task.module == "credential_type" and "Kubernetes" in task.arguments["name"]
    ]
    env = kube["injectors"]["env"]
    assert set(env) >= {"K8S_AUTH_HOST", "K8S_AUTH_API_KEY", "K8S_AUTH_SSL_CA_CERT"}
    assert env["K8S_AUTH_SSL_CA_CERT"] == "{{ tower.filename.ca_cert }}"
    assert "template.ca_cert" in kube["injectors"]["file"]
    secret_fields = {field["id"] for field in kube["inputs"]["fields"] if field.get("secret")}
    assert secret_fields == {"bearer_token"}


def test_the_workflow_runs_build_staging_approval_prod_and_a_check_in_order() -> None:
    nodes = {
        task.arguments["identifier"]: task.arguments for task in TASKS if task.module == "workflow_job_template_node"
    }
    order, current = [], "build"
    while current:
        order.append(current)
        following = nodes[current].get("success_nodes") or []
        assert len(following) <= 1, current
        current = following[0] if following else None
    assert order == ["build", "staging-release", "staging-smoke", "approval", "prod-push", "prod-release", "prod-check"]
    assert "approval_node" in nodes["approval"] and "unified_job_template" not in nodes["approval"]
    templates = {task.arguments["name"] for task in TASKS if task.module == "job_template"}
    for identifier, node in nodes.items():
        if "unified_job_template" in node:
            assert node["unified_job_template"] in templates, identifier


def test_release_templates_have_surveys_for_version_and_strategy() -> None:
    releases = [
        task.arguments
        for task in TASKS
        if task.module == "job_template" and task.arguments["name"].endswith(" release")
    ]
    assert {args["name"] for args in releases} == {"User Service staging release", "User Service prod release"}
    for args in releases:
        assert args["survey_enabled"] is True
        questions = {question["variable"]: question for question in args["survey_spec"]["spec"]}
        assert {"user_service_version", "user_service_release_strategy"} <= set(questions)
        assert questions["user_service_version"]["required"] is True
        # The lock holder names the AWX job: the template's own extra variable, templated by AWX at run time.
        assert args["extra_vars"]["release_lock_holder"] == "awx job {{ awx_job_id }} ({{ awx_job_template_name }})"
