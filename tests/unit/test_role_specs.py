"""Unit tests for scripts/role_specs.py (argument_specs vs defaults, README tables)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("role_specs", ROOT / "scripts" / "role_specs.py")
role_specs = importlib.util.module_from_spec(spec)
spec.loader.exec_module(role_specs)


def make_role(tmp_path: Path, name: str, defaults: str, specs: str, readme: str | None = None) -> Path:
    role = tmp_path / name
    (role / "tasks").mkdir(parents=True)
    (role / "tasks" / "main.yml").write_text("---\n[]\n")
    (role / "defaults").mkdir()
    (role / "defaults" / "main.yml").write_text(defaults)
    (role / "meta").mkdir()
    (role / "meta" / "argument_specs.yml").write_text(specs)
    if readme is not None:
        (role / "README.md").write_text(readme)
    return role


SPECS = """---
argument_specs:
  main:
    options:
      demo_port:
        type: int
        default: 443
        description: TCP port | probed.
      demo_mode:
        type: str
        default: fast
        choices: [fast, slow]
        description: How.
"""


def test_matching_role_passes_after_readme_generation(tmp_path):
    make_role(tmp_path, "demo", "---\ndemo_port: 443\ndemo_mode: fast\n", SPECS, "# Role demo\n\nIntro.\n")
    assert role_specs.main(["check", "--roles", str(tmp_path)]) == 1  # README table missing
    assert role_specs.main(["readme", "--roles", str(tmp_path)]) == 0
    assert role_specs.main(["check", "--roles", str(tmp_path)]) == 0
    text = (tmp_path / "demo" / "README.md").read_text()
    assert text.startswith("# Role demo\n\nIntro.")
    assert "| `demo_mode` | str | `fast` | `fast`, `slow` | How. |" in text
    assert "TCP port \\| probed." in text


@pytest.mark.parametrize(
    "defaults, expected",
    [
        ("---\ndemo_port: 443\n", "meta/argument_specs.yml has 'demo_mode' but defaults/main.yml does not"),
        ("---\ndemo_port: 443\ndemo_mode: fast\ndemo_extra: 1\n", "defaults/main.yml has 'demo_extra'"),
        ("---\ndemo_port: 443\ndemo_mode: fast\nport: 1\n", "'port' must start with 'demo_'"),
    ],
)
def test_mismatches_are_reported(tmp_path, capsys, defaults, expected):
    make_role(tmp_path, "demo", defaults, SPECS)
    role_specs.main(["readme", "--roles", str(tmp_path)])
    assert role_specs.main(["check", "--roles", str(tmp_path)]) == 1
    assert expected in capsys.readouterr().err


def test_stale_readme_is_reported(tmp_path, capsys):
    make_role(tmp_path, "demo", "---\ndemo_port: 443\ndemo_mode: fast\n", SPECS)
    role_specs.main(["readme", "--roles", str(tmp_path)])
    readme = tmp_path / "demo" / "README.md"
    readme.write_text(readme.read_text().replace("How.", "Old text."))
    assert role_specs.main(["check", "--roles", str(tmp_path)]) == 1
    assert "out of date" in capsys.readouterr().err


REQUIRED_SPECS = """---
argument_specs:
  main:
    options:
      demo_name:
        type: str
        required: true
        description: Site name.
      demo_sg:
        type: str
        default: "{{ demo_name | default }}-sg"
        description: Security group.
"""


def test_a_required_input_has_no_default_and_derived_defaults_read_it_guarded(tmp_path):
    make_role(tmp_path, "demo", "---\ndemo_sg: \"{{ demo_name | default }}-sg\"\n", REQUIRED_SPECS, "# Role demo\n")
    assert role_specs.main(["readme", "--roles", str(tmp_path)]) == 0
    assert role_specs.main(["check", "--roles", str(tmp_path)]) == 0
    assert "| `demo_name` | str | *required* |  | Site name. |" in (tmp_path / "demo" / "README.md").read_text()


@pytest.mark.parametrize(
    "defaults, specs, expected",
    [
        ("---\ndemo_name: x\ndemo_sg: \"{{ demo_name | default }}-sg\"\n", REQUIRED_SPECS,
         "required input 'demo_name' must not be in defaults/main.yml"),
        ("---\ndemo_sg: \"{{ demo_name | default }}-sg\"\n",
         REQUIRED_SPECS.replace("        required: true\n", "        required: true\n        default: x\n"),
         "required input 'demo_name' must not have a default in meta/argument_specs.yml"),
        ("---\ndemo_sg: \"{{ demo_name | default }}-sg\"\n",
         REQUIRED_SPECS.replace("        description: Site name.\n", ""),
         "required input 'demo_name' needs a description"),
        ("---\ndemo_sg: \"{{ demo_name }}-sg\"\n", REQUIRED_SPECS,
         "defaults/main.yml: the default of 'demo_sg' reads the required input 'demo_name' without | default"),
        ("---\ndemo_sg: \"{{ demo_name | default }}-sg\"\n",
         REQUIRED_SPECS.replace("{{ demo_name | default }}", "{{ demo_name ~ '' }}"),
         "meta/argument_specs.yml: the default of 'demo_sg' reads the required input 'demo_name' without"),
    ],
)
def test_required_input_rules_are_reported(tmp_path, capsys, defaults, specs, expected):
    make_role(tmp_path, "demo", defaults, specs)
    role_specs.main(["readme", "--roles", str(tmp_path)])
    assert role_specs.main(["check", "--roles", str(tmp_path)]) == 1
    assert expected in capsys.readouterr().err


def test_guarded_reads_are_told_from_unguarded_ones():
    names = {"demo_name"}
    assert role_specs.unguarded_reads("{{ demo_name | default }}-x", names) == []
    assert role_specs.unguarded_reads("{{ demo_name|default }}", names) == []
    assert role_specs.unguarded_reads(["/a/{{ demo_name }}/b"], names) == ["demo_name"]
    assert role_specs.unguarded_reads("{{ demo_name_long }} {{ x.demo_name }}", names) == []
