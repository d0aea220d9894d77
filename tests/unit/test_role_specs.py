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
