#!/usr/bin/env python3
"""Keep every role's interface in one place: meta/argument_specs.yml.

    role_specs.py check            # fail when a role's argument_specs keys differ from defaults/main.yml,
                                   # a public variable lacks the role prefix, a required input has a default
                                   # or no description or is read unguarded by a default, or a README table
                                   # is stale
    role_specs.py readme           # (re)write the variables table of every role README from argument_specs

The README table sits between ``<!-- BEGIN ROLE VARIABLES -->`` and ``<!-- END ROLE VARIABLES -->``.

A required input (``required: true``) is what the caller must give: it has no default, neither in
defaults/main.yml nor in the spec. Defaults derived from it (``demo_sg: "{{ demo_name | default }}-sg"``) read it
through ``| default``: Ansible templates every option's value while it checks a role's arguments, and an
unguarded read of a missing input would stop the role with "'demo_name' is undefined" instead of the check's
"missing required arguments: demo_name, ..." naming all of them.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import yaml

BEGIN = "<!-- BEGIN ROLE VARIABLES -->"
END = "<!-- END ROLE VARIABLES -->"


def load_yaml(path: Path) -> dict:
    if not path.exists():
        return {}
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping at the top level")
    return data


def spec_options(role: Path) -> dict:
    """Options of the role's ``main`` entry point."""
    specs = load_yaml(role / "meta" / "argument_specs.yml").get("argument_specs", {})
    return (specs.get("main") or {}).get("options") or {}


def _cell(value) -> str:
    text = "" if value is None else str(value)
    return text.replace("|", "\\|").replace("\n", " ")


def variables_table(options: dict) -> str:
    lines = ["| Variable | Type | Default | Choices | Description |", "|---|---|---|---|---|"]
    for name in sorted(options):
        opt = options[name] or {}
        kind = opt.get("type", "str")
        if opt.get("elements"):
            kind = f"{kind} of {opt['elements']}"
        if opt.get("required"):
            default = "*required*"
        else:
            dumped = yaml.safe_dump(opt.get("default"), default_flow_style=True)
            default = f"`{dumped.strip().removesuffix('...').strip()}`"
        choices = ", ".join(f"`{c}`" for c in opt.get("choices", []))
        description = opt.get("description", "")
        if isinstance(description, list):
            description = " ".join(description)
        lines.append(f"| `{name}` | {kind} | {_cell(default)} | {_cell(choices)} | {_cell(description)} |")
    return "\n".join(lines)


def readme_with_table(text: str, table: str) -> str:
    block = f"{BEGIN}\n{table}\n{END}"
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        _table, tail = rest.split(END, 1)
        return head + block + tail
    return text.rstrip("\n") + "\n\n## Variables\n\n" + block + "\n"


def unguarded_reads(value, names: set[str]) -> list[str]:
    """The names of ``names`` that a default's text reads without ``| default`` right after them."""
    text = value if isinstance(value, str) else json.dumps(value)
    found = set()
    for name in names:
        for match in re.finditer(rf"(?<![\w.]){re.escape(name)}(?!\w)", text):
            if not re.match(r"\s*\|\s*default\b", text[match.end():]):
                found.add(name)
    return sorted(found)


def check_role(role: Path) -> list[str]:
    problems = []
    defaults = load_yaml(role / "defaults" / "main.yml")
    options = spec_options(role)
    if not (role / "meta" / "argument_specs.yml").exists():
        problems.append(f"{role.name}: meta/argument_specs.yml is missing")
    for key in sorted(set(defaults) - set(options)):
        problems.append(f"{role.name}: defaults/main.yml has '{key}' but meta/argument_specs.yml does not")
    for key in sorted(set(options) - set(defaults)):
        if not (options[key] or {}).get("required"):
            problems.append(f"{role.name}: meta/argument_specs.yml has '{key}' but defaults/main.yml does not")
    required = {key for key, opt in options.items() if (opt or {}).get("required")}
    for key in sorted(required):
        if key in defaults:
            problems.append(f"{role.name}: required input '{key}' must not be in defaults/main.yml (the caller "
                            "gives it)")
        if "default" in (options[key] or {}):
            problems.append(f"{role.name}: required input '{key}' must not have a default in meta/argument_specs.yml")
        if not (options[key] or {}).get("description"):
            problems.append(f"{role.name}: required input '{key}' needs a description in meta/argument_specs.yml")
    for source, values in (("defaults/main.yml", defaults),
                           ("meta/argument_specs.yml", {k: (o or {}).get("default") for k, o in options.items()})):
        for key in sorted(values):
            for name in unguarded_reads(values[key], required):
                problems.append(f"{role.name}: {source}: the default of '{key}' reads the required input '{name}' "
                                f"without | default (a missing '{name}' would stop the argument check as "
                                f"an undefined variable instead of naming every missing input)")
    for key in sorted(set(defaults) | set(options)):
        if not key.startswith(role.name + "_"):
            problems.append(f"{role.name}: public variable '{key}' must start with '{role.name}_'")
    readme = role / "README.md"
    if not readme.exists():
        problems.append(f"{role.name}: README.md is missing (run scripts/role_specs.py readme)")
    elif readme_with_table(readme.read_text(), variables_table(options)) != readme.read_text():
        problems.append(f"{role.name}: README.md variables table is out of date (run scripts/role_specs.py readme)")
    return problems


def roles_in(roles_dir: Path) -> list[Path]:
    return sorted(p for p in roles_dir.iterdir() if p.is_dir() and (p / "tasks").is_dir()) if roles_dir.is_dir() else []


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["check", "readme"])
    parser.add_argument("--roles", default=str(Path(__file__).resolve().parents[1] / "roles"))
    args = parser.parse_args(argv)
    roles = roles_in(Path(args.roles))
    if args.action == "readme":
        for role in roles:
            readme = role / "README.md"
            text = readme.read_text() if readme.exists() else f"# Role `{role.name}`\n"
            readme.write_text(readme_with_table(text, variables_table(spec_options(role))))
        print(f"role_specs: wrote the variables table of {len(roles)} role README(s)")
        return 0
    problems = [p for role in roles for p in check_role(role)]
    for problem in problems:
        print(f"role_specs: {problem}", file=sys.stderr)
    print(f"role_specs: {len(roles)} role(s) checked, {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
