#!/usr/bin/python
# -*- coding: utf-8 -*-
"""Ansible module: run mosaic-install --json on the host and report its result."""

from __future__ import annotations

import json
import os
import shutil
import tempfile

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
module: mosaic_install
short_description: Install or upgrade this host's Mosaic agent fleet
description:
  - Runs C(mosaic-install --json) (from the mosaic-install package) for one
    host and reports C(changed) as the installer does: a run that wrote no
    file, receipt or unit state is C(ok).
  - A non-zero exit fails the task with the installer's own error text.
  - In check mode it runs C(mosaic-install --dry-run) and changes nothing;
    in diff mode it shows the installer's unified diffs.
options:
  profile:
    description: An embedded profile name (minimal, local-canary, usc).
    type: str
  roster:
    description:
      - The text of a roster file. It is staged as C(<stage>/roster.yaml)
        and installed from there (check mode stages it in a temporary
        directory instead).
    type: str
  stage:
    description: The staging directory on the host.
    type: path
    required: true
  home:
    description: Install into this home instead of the remote user's own.
    type: path
  host:
    description: The roster C(host:) whose agents this host runs.
    type: str
    required: true
  start:
    description:
      - Start the fleet canary-first. Where no systemd user manager runs for
        the user, the installer installs the files, starts nothing and
        returns the commands to run later, which become a warning.
    type: bool
    default: false
  canary:
    description: The agent to start first.
    type: str
  wave:
    description: Agents per wave after the canary.
    type: int
    default: 4
  restart_changed:
    description: Restart running units whose unit files changed.
    type: bool
    default: false
  executable:
    description: The mosaic-install program.
    type: str
    default: mosaic-install
"""

RETURN = r"""
result:
  description: The installer's JSON report.
  returned: always
  type: dict
"""


def command(module, exe, roster_path, dry_run, json_output):
    params = module.params
    args = [exe, "--host", params["host"]]
    if json_output:
        args.append("--json")
    if params["home"]:
        args += ["--home", params["home"]]
    args += ["--profile", roster_path or params["profile"]]
    if dry_run:
        return args + ["--dry-run"]
    if params["start"]:
        args += ["--start", "--wave", str(params["wave"])]
        if params["canary"]:
            args += ["--canary", params["canary"]]
    if params["restart_changed"]:
        args.append("--restart-changed")
    return args


def stage_roster(module, directory, text):
    """Write the roster into directory/roster.yaml unless it already holds it."""
    path = os.path.join(directory, "roster.yaml")
    if os.path.isfile(path):
        with open(path, encoding="utf-8") as current:
            if current.read() == text:
                return path
    os.makedirs(directory, mode=0o700, exist_ok=True)
    handle, temp = tempfile.mkstemp(dir=directory, prefix=".roster-")
    with os.fdopen(handle, "w", encoding="utf-8") as out:
        out.write(text)
    os.chmod(temp, 0o644)
    module.atomic_move(temp, path)
    return path


def report(module, args):
    rc, out, err = module.run_command(args)
    try:
        data = json.loads(out)
    except ValueError:
        data = {}
    if rc != 0:
        module.fail_json(
            msg=data.get("error") or err.strip() or out.strip(),
            rc=rc,
            cmd=args,
            stderr=err,
        )
    if "changed" not in data:
        module.fail_json(msg="mosaic-install printed no JSON report", rc=rc, cmd=args, stdout=out, stderr=err)
    return data


def main():
    module = AnsibleModule(
        argument_spec=dict(
            profile=dict(type="str"),
            roster=dict(type="str"),
            stage=dict(type="path", required=True),
            home=dict(type="path"),
            host=dict(type="str", required=True),
            start=dict(type="bool", default=False),
            canary=dict(type="str"),
            wave=dict(type="int", default=4),
            restart_changed=dict(type="bool", default=False),
            executable=dict(type="str", default="mosaic-install"),
        ),
        mutually_exclusive=[("profile", "roster")],
        required_one_of=[("profile", "roster")],
        supports_check_mode=True,
    )
    params = module.params
    exe = module.get_bin_path(params["executable"])
    if exe is None:
        if module.check_mode:
            module.exit_json(changed=True, msg="mosaic-install is not installed yet; the package task installs it")
        module.fail_json(msg="%s is not on PATH: install the mosaic-install package first" % params["executable"])

    scratch = tempfile.mkdtemp(prefix="mosaic-install-check-") if module.check_mode else None
    try:
        roster_path = None
        if params["roster"] is not None:
            roster_path = stage_roster(module, scratch or params["stage"], params["roster"])
        diff = None
        if module._diff:
            rc, text, err = module.run_command(command(module, exe, roster_path, True, False))
            if rc == 0:
                diff = {"prepared": text}
        data = report(module, command(module, exe, roster_path, module.check_mode, True))
    finally:
        if scratch:
            shutil.rmtree(scratch, ignore_errors=True)

    result = dict(changed=bool(data["changed"]), result=data)
    if diff and data["changed"]:
        result["diff"] = diff
    systemd = data.get("systemd") or {}
    if params["start"] and systemd.get("outcome") == "unreachable":
        module.warn(
            "the fleet is installed but not started: %s; run: %s"
            % (systemd.get("reason", "no systemd user manager"), "; ".join(systemd.get("commands") or []))
        )
    module.exit_json(**result)


if __name__ == "__main__":
    main()
