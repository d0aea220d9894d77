"""The ``aws_region`` Jinja test (plugins/test/aws_region.py): the function itself, and found by ansible-playbook
through the project's ansible.cfg (``test_plugins``) alone."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from plugin_loader import load_plugin

ROOT = Path(__file__).resolve().parents[2]
region_test = load_plugin("test", "aws_region")

VALID = [
    "eu-west-1",
    "us-east-1",
    "ap-southeast-5",
    "ap-northeast-3",
    "ca-west-1",
    "il-central-1",
    "me-central-1",
    "cn-north-1",
    "cn-northwest-1",
    "us-gov-west-1",
    "us-gov-east-1",
    "us-iso-east-1",
    "us-isob-east-1",
    "eu-isoe-west-1",
    "us-isof-south-1",
    "eu-west-10",
]
INVALID = [
    "",
    None,
    ["eu-west-1"],
    ("eu-west-1",),
    {"region": "eu-west-1"},
    1,
    1.0,
    True,
    b"eu-west-1",
    "mars-1",
    "EU-WEST-1",
    "Eu-west-1",
    "eu-west-1 ",
    " eu-west-1",
    "eu-west-1\n",
    "eu-west",
    "eu-west-",
    "eu-1",
    "eu--west-1",
    "eur-west-1",
    "e-west-1",
    "eu-west-1a",
    "eu-west-1-",
    "eu-west-one",
    "eu-west-\u0661",  # ARABIC-INDIC DIGIT ONE: `\d` would take it
    "us-gov-west",
    "us-isoab-east-1",
    "us-iso-b-east-1",
    "eu_west_1",
    "arn:aws:ec2:eu-west-1",
    "eu-west-1.amazonaws.com",
]


@pytest.mark.parametrize("value", VALID)
def test_region_codes_of_every_partition_pass(value):
    assert region_test.aws_region(value) is True


@pytest.mark.parametrize("value", INVALID, ids=repr)
def test_anything_else_is_false_and_never_raises(value):
    assert region_test.aws_region(value) is False


def test_the_plugin_registers_the_test_under_its_name():
    assert region_test.TestModule().tests() == {"aws_region": region_test.aws_region}


def test_ansible_cfg_finds_the_project_as_its_collection():
    cfg = (ROOT / "ansible.cfg").read_text()
    assert "\ncollections_path = collections:" in cfg
    link = ROOT / "collections" / "ansible_collections" / "hybrid" / "onboard"
    assert link.is_symlink() and link.resolve() == ROOT
    assert (link / "plugins" / "test" / "aws_region.py").is_file()


PLAYBOOK = [
    {
        "name": "aws_region as a Jinja test",
        "hosts": "localhost",
        "connection": "local",
        "gather_facts": False,
        "tasks": [
            {
                "name": "A region code passes",
                "ansible.builtin.assert": {
                    "that": ["'eu-west-1' is hybrid.onboard.aws_region",
                             "'us-isob-east-1' is hybrid.onboard.aws_region"],
                    "fail_msg": "GOOD-REGION-REJECTED",
                    "success_msg": "GOOD-REGION-PASSED",
                },
            },
            {
                "name": "mars-1 is not a region",
                "ansible.builtin.assert": {
                    "that": ["'mars-1' is hybrid.onboard.aws_region"],
                    "fail_msg": "MARS-REJECTED",
                },
                "ignore_errors": True,
                "register": "mars",
            },
            {
                "name": "The test was false (the assert failed on it, not on an error)",
                "ansible.builtin.assert": {
                    "that": [
                        "mars is failed",
                        "mars.assertion == \"'mars-1' is hybrid.onboard.aws_region\"",
                        "'mars-1' is not hybrid.onboard.aws_region",
                        "not ('mars-1' is hybrid.onboard.aws_region)",
                    ],
                    "fail_msg": "MARS-NOT-FALSE {{ mars }}",
                },
            },
        ],
    }
]


def test_ansible_playbook_finds_the_test_through_ansible_cfg(tmp_path):
    playbook = tmp_path / "region.yml"
    playbook.write_text(yaml.safe_dump(PLAYBOOK, sort_keys=False))
    # Nothing from the caller's environment may point Ansible at the plugin: ansible.cfg alone must.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "AWS_"))}
    env.update(ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")
    argv = [str(Path(sys.executable).parent / "ansible-playbook"), "-i", "localhost,",
            "-e", "ansible_python_interpreter=" + sys.executable, str(playbook)]
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=str(ROOT), timeout=300, check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    assert "GOOD-REGION-PASSED" in proc.stdout
    assert "MARS-REJECTED" in proc.stdout
    assert "MARS-NOT-FALSE" not in proc.stdout
    assert "failed=0" in proc.stdout and "ignored=1" in proc.stdout, proc.stdout[-2000:]
