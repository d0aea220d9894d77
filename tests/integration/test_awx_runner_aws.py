"""identity.yml and activation.yml run through ansible-runner the way an AWX job runs them, against the emulator.

The private data directory is laid out as AWX lays it out for a job: `project/` is the working tree's copy of the
repository (its symlinks kept, as AWX's git checkout keeps them), `inventory/` a project-sourced directory inventory
(inventory/lab without its hosts file), `env/extravars` the job's extra variables and `env/envvars` what the
*Amazon Web Services* credential injects (plus, for the lab only, the emulator's endpoint and region). ansible-runner
runs without process isolation, as it does inside the EE: cwd is `project/`, so the project's ansible.cfg applies.
Asserted from outside: the runner's status, rc, events and stats (changes on the first run, none on the second), the
resources in the emulator (boto3), every task run from the project copy, and no activation code or secret key in
the job's stdout or job events.
"""

from __future__ import annotations

import configparser
import json
import os
import shutil
import subprocess
import uuid
from pathlib import Path

import boto3
import pytest
import yaml
from labtools import ROOT, C

ansible_runner = pytest.importorskip(
    "ansible_runner",
    reason="ansible-runner is not installed in this environment (requirements.txt pins it: make venv)",
)

BIN = ROOT / ".venv" / "bin"
NAME = f"awx{uuid.uuid4().hex[:6]}"
PARAMETER = f"/hybrid-onboard/{NAME}/activation"
CW_AGENT_PARAMETER = f"/hybrid-onboard/{NAME}/cloudwatch-agent-credentials"
# The job template's extra variables: a site of our own, so nothing here collides with the other tests.
EXTRA_VARS = {
    "hybrid_name": NAME,
    "hybrid_region": C.REGION,
    "ssm_activation_planned_nodes": 2,
    # IAM-user mode, so the identity job handles a secret access key of its own (kept in a SecureString).
    "aws_hybrid_identity_cw_agent_iam_user": True,
}
# AWX's defaults after which it puts ansible.cfg's collections_path (RunJob.build_env).
AWX_DEFAULT_COLLECTIONS_PATHS = ["~/.ansible/collections", "/usr/share/ansible/collections"]


def client(env: dict[str, str], service: str):
    return boto3.client(service, endpoint_url=env["AWS_ENDPOINT_URL"], region_name=C.REGION,
                        aws_access_key_id=C.ACCESS_KEY, aws_secret_access_key=C.SECRET_KEY)


def copy_working_tree(project: Path) -> None:
    """The repository's files as a checkout has them: tracked and untracked-but-not-ignored, from the working tree.

    Symlinks stay symlinks (collections/ansible_collections/hybrid/onboard links back to the root, ../../..).
    """
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"], cwd=ROOT,
                            capture_output=True, check=True).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source, target = ROOT / name, project / name
        if not os.path.lexists(source):  # deleted in the working tree, not yet in the index
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_symlink():
            target.symlink_to(os.readlink(source))
        else:
            shutil.copy2(source, target)


def awx_collections_path(private_data_dir: Path) -> str:
    """ANSIBLE_COLLECTIONS_PATH as AWX (22.7 and later) sets it for a job.

    AWX reads collections_path from the project's ansible.cfg and puts it in the job's environment, after the
    requirements_collections directory its project sync fills from collections/requirements.yml (/runner/ in the
    EE: the private data directory) and before its defaults. The environment variable then wins over ansible.cfg,
    so the checkout is the collection hybrid.onboard only through this value: `collections` stays relative, as
    ansible.cfg has it, and resolves against the job's cwd, the project directory. The directory is empty here,
    as it is when the sync does not download collections (the EE has them).
    """
    requirements = private_data_dir / "requirements_collections"
    requirements.mkdir(exist_ok=True)
    config = configparser.ConfigParser()
    config.read(private_data_dir / "project" / "ansible.cfg")
    paths = list(AWX_DEFAULT_COLLECTIONS_PATHS)
    configured = config.get("defaults", "collections_path", fallback="")
    if configured and any(path not in paths for path in configured.split(":")):
        paths = [configured, *paths]
    return ":".join([str(requirements), *paths])


@pytest.fixture(scope="module")
def private_data_dir(tmp_path_factory, aws_only) -> Path:
    root = tmp_path_factory.mktemp("awx-job")
    copy_working_tree(root / "project")
    assert (root / "project" / "collections" / "ansible_collections" / "hybrid" / "onboard").is_symlink()
    # A project-sourced inventory: the lab's group_vars and localhost, as inventory/lab/ is without `scripts/lab`.
    inventory = root / "inventory"
    shutil.copytree(ROOT / "inventory" / "lab" / "group_vars", inventory / "group_vars")
    shutil.copy2(ROOT / "inventory" / "lab" / "localhost.yml", inventory / "localhost.yml")
    env = root / "env"
    env.mkdir()
    (env / "extravars").write_text(yaml.safe_dump(EXTRA_VARS))
    envvars = {
        # The Amazon Web Services credential: access key and secret key.
        "AWS_ACCESS_KEY_ID": C.ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": C.SECRET_KEY,
        # Lab only (README: never on a real AWX): the emulator and its region.
        "AWS_ENDPOINT_URL": aws_only["AWS_ENDPOINT_URL"],
        "AWS_REGION": C.REGION,
        # What AWX puts there from the project's ansible.cfg (see awx_collections_path): the job finds the
        # collection hybrid.onboard through it, so the test must too.
        "ANSIBLE_COLLECTIONS_PATH": awx_collections_path(root),
    }
    (env / "envvars").write_text(yaml.safe_dump(envvars))
    for path in env.iterdir():
        path.chmod(0o600)
    return root


def run_job(private_data_dir: Path, playbook: str, ident: str, verbosity: int = 0):
    """One job: ansible_runner.run as AWX calls it (ident, no env files written, no process isolation).

    The runner starts from this process's environment, as it starts from the EE's: nothing of ours may leak into
    the job, so no ANSIBLE_* (make exports ANSIBLE_CONFIG) and no AWS_* (the credential brings them), and the
    venv's bin comes first on PATH, where the EE has ansible-playbook.
    """
    with pytest.MonkeyPatch.context() as patch:
        for key in list(os.environ):
            if key.startswith(("ANSIBLE_", "AWS_")):
                patch.delenv(key)
        patch.setenv("PATH", f"{BIN}:{os.environ.get('PATH', '')}")
        runner = ansible_runner.run(private_data_dir=str(private_data_dir), playbook=playbook, ident=ident,
                                    process_isolation=False, suppress_env_files=True, quiet=True,
                                    verbosity=verbosity, timeout=900)
    # As in the EE: ansible-playbook ran in the project directory, and only ansible.cfg there configured it.
    assert runner.config.cwd == str(private_data_dir / "project")
    assert "ANSIBLE_CONFIG" not in runner.config.env
    return runner


def stdout(runner) -> str:
    return runner.stdout.read()


def ok(runner):
    assert (runner.status, runner.rc) == ("successful", 0), stdout(runner)[-4000:]
    assert runner.stats is not None, "no playbook_on_stats event"
    return runner


def changed_tasks(runner, play: str, project: Path) -> int:
    """How many task events say `changed`, once the events show the play ran on localhost from the project copy.

    Every task_path must lie in the job's project directory (not in the repository): the collection was found
    through ANSIBLE_COLLECTIONS_PATH's relative `collections`, from the job's cwd. A no_log result is censored in
    its event (no `changed` key left), so the event's own stdout line says whether the task changed.
    """
    events = list(runner.events)
    plays = [e["event_data"]["play"] for e in events if e["event"] == "playbook_on_play_start"]
    assert plays == [play]
    tasks = [e for e in events if e["event"] in ("runner_on_ok", "runner_on_failed", "runner_on_skipped")]
    assert tasks and {e["event_data"]["host"] for e in tasks} == {"localhost"}
    paths = {e["event_data"]["task_path"].rsplit(":", 1)[0] for e in tasks if e["event_data"].get("task_path")}
    assert paths, "no task_path in the events"
    outside = {path for path in paths if not Path(path).resolve().is_relative_to(project)}
    assert not outside, f"tasks run from outside the job's project directory: {sorted(outside)[:5]}"
    return sum(1 for e in tasks if e["event"] == "runner_on_ok" and "changed: [localhost]" in e.get("stdout", ""))


def changed(runner) -> int:
    return runner.stats["changed"].get("localhost", 0)


@pytest.fixture(scope="module")
def identity_jobs(private_data_dir):
    first = ok(run_job(private_data_dir, "playbooks/identity.yml", "identity-1", verbosity=3))
    second = ok(run_job(private_data_dir, "playbooks/identity.yml", "identity-2"))
    return first, second


@pytest.fixture(scope="module")
def activation_jobs(private_data_dir, identity_jobs):
    first = ok(run_job(private_data_dir, "playbooks/activation.yml", "activation-1", verbosity=3))
    second = ok(run_job(private_data_dir, "playbooks/activation.yml", "activation-2"))
    return first, second


def stored(env: dict[str, str], name: str) -> dict:
    value = client(env, "ssm").get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"]
    return json.loads(value)


def test_identity_job_converges_then_changes_nothing(aws_only, private_data_dir, identity_jobs):
    first, second = identity_jobs
    project = (private_data_dir / "project").resolve()
    assert changed_tasks(first, "Identity phase", project) == changed(first) > 0
    assert changed_tasks(second, "Identity phase", project) == changed(second) == 0, stdout(second)[-4000:]

    iam = client(aws_only, "iam")
    role = iam.get_role(RoleName=f"{NAME}-ssm-hybrid")["Role"]
    assert role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {"Service": "ssm.amazonaws.com"}
    keys = iam.list_access_keys(UserName=f"{NAME}-cloudwatch-agent")["AccessKeyMetadata"]
    assert [k["AccessKeyId"] for k in keys] == [stored(aws_only, CW_AGENT_PARAMETER)["aws_access_key_id"]]


def test_activation_job_converges_then_changes_nothing(aws_only, private_data_dir, activation_jobs):
    first, second = activation_jobs
    project = (private_data_dir / "project").resolve()
    assert changed_tasks(first, "Hybrid activation phase", project) == changed(first) == 2  # activation, parameter
    assert changed_tasks(second, "Hybrid activation phase", project) == changed(second) == 0, stdout(second)[-4000:]

    parameter = client(aws_only, "ssm").get_parameter(Name=PARAMETER)["Parameter"]
    assert parameter["Type"] == "SecureString" and parameter["Version"] == 1
    value = stored(aws_only, PARAMETER)
    acts = client(aws_only, "ssm").describe_activations()["ActivationList"]
    ours = [a["ActivationId"] for a in acts if {"Key": "Name", "Value": NAME} in a.get("Tags", [])]
    assert ours == [value["id"]] and len(value["code"]) == 20


def test_no_activation_code_or_secret_key_in_the_job_output(aws_only, private_data_dir, identity_jobs,
                                                            activation_jobs):
    """stdout and job_events of every job (the first of each at verbosity 3, AWX's Debug) hold no secret.

    The artifacts' `command` file is left out for the credential's own secret key: ansible-runner records the
    job's environment there by design (AWX removes the private data directory after the job).
    """
    code = stored(aws_only, PARAMETER)["code"]
    cw_agent_secret = stored(aws_only, CW_AGENT_PARAMETER)["aws_secret_access_key"]
    artifacts = private_data_dir / "artifacts"
    files = [path for path in artifacts.rglob("*") if path.is_file()]
    job_events = [path for path in files if path.parent.name == "job_events"]
    assert {path.parts[-2] for path in files if path.name == "stdout"} == {
        "identity-1", "identity-2", "activation-1", "activation-2"}
    assert len(job_events) > 20, "too few job events to be trusted"
    for runner in (*identity_jobs, *activation_jobs):
        assert stdout(runner), "the runner's stdout is empty"
    for path in files:
        text = path.read_text(errors="replace")
        for secret, what in ((code, "activation code"), (cw_agent_secret, "CloudWatch agent secret key")):
            assert secret not in text, f"{what} in {path.relative_to(artifacts)}"
        if path.name != "command":
            assert C.SECRET_KEY not in text, f"the credential's secret key in {path.relative_to(artifacts)}"
