# Copyright: (c) 2026, userservice.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run one playbook the way AWX runs a job, with ansible-runner.

What AWX (awx/main/tasks/jobs.py) prepares, and this does too:
- a private data directory: project/ (a copy of the project: its playbooks and its ansible.cfg),
  inventory/hosts (an executable script printing the inventory as JSON, with the imported group
  variables untemplated), env/extravars (AWX's YAML: every string of a survey answer or of AWX's own
  awx_* variables tagged !unsafe, the job template's own extra variables left as they are, so Ansible
  templates those only), env/cmdline (-u root), env/settings (job_timeout, idle_timeout);
- the environment: JOB_ID, INVENTORY_ID, AWX_HOST, ANSIBLE_RETRY_FILES_ENABLED, AWX_PRIVATE_DATA_DIR,
  ANSIBLE_COLLECTIONS_PATH, and what each credential's type injects, rendered from the credential type's
  `injectors` (examples/awx/user_service.yml) with the credential's inputs: `env` values, and `file`
  templates written to files in the private data directory whose paths are `tower.filename.<name>`;
- ansible-runner's default (pexpect) mode, with AWX's password prompts as the only expected output.

Nothing else of the caller's environment reaches the job (the caller starts this with `env -i`).

Usage: python awx_job.py SPEC.json   (prints a JSON summary: status, rc, artifacts, env keys, stdout tail)
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import sys
import tempfile
from pathlib import Path
from typing import Any, Dict, List, Optional

import ansible_runner
import yaml
from jinja2.sandbox import ImmutableSandboxedEnvironment

# What AWX's RunJob.get_password_prompts expects (prompt regex -> answer); a job without a machine or
# vault credential answers each with an empty line. The playbooks must never show any of them.
PASSWORD_PROMPTS = {
    r"Enter passphrase for .*:\s*?$": "",
    r"Bad passphrase, try again for .*:\s*?$": "",
    r"BECOME password.*:\s*?$": "",
    r"SSH password:\s*?$": "",
    r"Password:\s*?$": "",
    r"Vault password:\s*?$": "",
}


class UnsafeStringDumper(yaml.SafeDumper):
    """AWX's SafeStringDumper: every string becomes `!unsafe '...'`, so Ansible never templates it."""

    def represent_data(self, data: Any) -> Any:
        if isinstance(data, str):
            return self.represent_scalar("!unsafe", data)
        return super().represent_data(data)


def dump_extra_vars(extra_vars: Dict[str, Any], trusted: Dict[str, Any]) -> str:
    """AWX's safe_dump: keys whose value the job template itself set are trusted, all others are unsafe."""
    parts = []
    for key, value in extra_vars.items():
        dumper = yaml.SafeDumper if key in trusted and trusted[key] == value else UnsafeStringDumper
        parts.append(yaml.dump_all([{key: value}], None, Dumper=dumper, default_flow_style=False))
    return "".join(parts)


def write_private_file(directory: Path, name: Optional[str], content: str, mode: int = 0o600) -> Path:
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    if name:
        path = directory / name
    else:
        handle, raw = tempfile.mkstemp(dir=directory)
        os.close(handle)
        path = Path(raw)
    path.write_text(content, encoding="utf-8")
    path.chmod(mode)
    return path


def load_credential_types(path: Path) -> Dict[str, Dict[str, Any]]:
    # The file's own variables hold Jinja for Ansible; only the injectors (tagged !unsafe there) are read.
    class Loader(yaml.SafeLoader):
        pass

    Loader.add_constructor("!unsafe", lambda loader, node: loader.construct_scalar(node))
    document = yaml.load(path.read_text(encoding="utf-8"), Loader=Loader)  # noqa: S506 - a SafeLoader subclass
    return {kind["name"]: kind for kind in document["awx_user_service_credential_types"]}


def inject_credential(
    kind: Dict[str, Any], inputs: Dict[str, Any], env: Dict[str, str], private_data_dir: Path
) -> List[str]:
    """AWX's CredentialType.inject_credential for a custom type: file templates, then env templates."""
    jinja = ImmutableSandboxedEnvironment()
    defaults = {field["id"]: field.get("default", "") for field in kind["inputs"].get("fields", [])}
    namespace: Dict[str, Any] = dict(defaults, **inputs)
    files = {}
    for key, template in (kind["injectors"].get("file") or {}).items():
        path = write_private_file(private_data_dir / "env", None, jinja.from_string(template).render(**namespace))
        files[key.split(".", 1)[1] if "." in key else "filename"] = str(path)
    filenames = files.pop("filename", None) or files
    namespace["tower"] = namespace["awx"] = {"filename": filenames}
    injected = []
    for name, template in (kind["injectors"].get("env") or {}).items():
        env[name] = jinja.from_string(template).render(**namespace)
        injected.append(name)
    return injected


def inventory_script(inventory: Dict[str, Any], job_hosts: Dict[str, int]) -> str:
    # AWX adds its own host variables (towervars) and prints the inventory from a script.
    for host, host_id in job_hosts.items():
        inventory.setdefault("_meta", {}).setdefault("hostvars", {}).setdefault(host, {}).update(
            {"remote_tower_enabled": "true", "remote_tower_id": host_id}
        )
    return "#! /usr/bin/env python3\n# -*- coding: utf-8 -*-\nprint(%r)\n" % json.dumps(inventory)


def prepare(spec: Dict[str, Any]) -> Dict[str, Any]:
    pdd = Path(spec["private_data_dir"])
    if pdd.exists():
        shutil.rmtree(pdd)
    pdd.mkdir(mode=0o700, parents=True)
    project = pdd / "project"
    shutil.copytree(Path(spec["project_src"]) / "playbooks", project / "playbooks")
    shutil.copy(Path(spec["project_src"]) / "ansible.cfg", project / "ansible.cfg")

    inventory = write_private_file(
        pdd / "inventory", "hosts", inventory_script(spec["inventory"], {"localhost": 1}), mode=0o700
    )
    job_id = spec["job_id"]
    meta = {}
    for prefix in ("awx", "tower"):
        meta.update(
            {
                f"{prefix}_job_id": job_id,
                f"{prefix}_job_launch_type": "manual",
                f"{prefix}_job_template_id": 7,
                f"{prefix}_job_template_name": spec["job_template_name"],
                f"{prefix}_user_name": "release-manager",
                f"{prefix}_user_id": 3,
                f"{prefix}_project_revision": spec.get("project_revision", ""),
            }
        )
    extra_vars = dict(spec["template_extra_vars"])
    extra_vars.update(spec.get("survey_answers", {}))
    extra_vars.update(meta)
    write_private_file(pdd / "env", "extravars", dump_extra_vars(extra_vars, spec["template_extra_vars"]))
    write_private_file(pdd / "env", "cmdline", "-u root")
    write_private_file(
        pdd / "env", "settings", json.dumps({"job_timeout": spec.get("job_timeout", 900), "idle_timeout": 300})
    )

    env = dict(spec["base_env"])
    env.update(
        {
            "JOB_ID": str(job_id),
            "INVENTORY_ID": "5",
            "PROJECT_REVISION": spec.get("project_revision", ""),
            "ANSIBLE_RETRY_FILES_ENABLED": "False",
            "MAX_EVENT_RES": "700000",
            "AWX_HOST": "https://awx.example.internal",
            "AWX_PRIVATE_DATA_DIR": str(pdd),
            "ANSIBLE_COLLECTIONS_PATH": spec["collections_path"],
        }
    )
    kinds = load_credential_types(Path(spec["credential_types_file"]))
    injected: List[str] = []
    for credential in spec["credentials"]:
        injected += inject_credential(kinds[credential["type"]], credential["inputs"], env, pdd)
    return {"private_data_dir": pdd, "inventory": inventory, "env": env, "injected": injected}


def main(argv: List[str]) -> int:
    spec = json.loads(Path(argv[1]).read_text(encoding="utf-8"))
    job = prepare(spec)
    runner = ansible_runner.run(
        private_data_dir=str(job["private_data_dir"]),
        ident=str(spec["job_id"]),
        playbook=spec["playbook"],
        inventory=str(job["inventory"]),
        envvars=job["env"],
        passwords=PASSWORD_PROMPTS,
        suppress_env_files=True,
        quiet=True,
    )
    artifacts: Dict[str, Any] = {}
    failed: List[str] = []
    for event in runner.events:
        data = event.get("event_data", {})
        if event.get("event") == "playbook_on_stats":
            artifacts = data.get("artifact_data") or {}
        if event.get("event") == "runner_on_failed" and not data.get("ignore_errors"):
            failed.append("%s: %s" % (data.get("task"), data.get("res", {}).get("msg", "")))
    stdout = runner.stdout.read()
    mode = os.stat(job["private_data_dir"] / "env" / "extravars").st_mode
    print(
        json.dumps(
            {
                "status": runner.status,
                "rc": runner.rc,
                "artifacts": artifacts,
                "failed_tasks": failed,
                "env_keys": sorted(job["env"]),
                "injected": job["injected"],
                "extravars_private": not mode & (stat.S_IRWXG | stat.S_IRWXO),
                "stdout_tail": stdout[-4000:],
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
