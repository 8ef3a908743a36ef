"""Render each role's README.md from its meta/argument_specs.yml (`make role-docs`).

The specification is what Ansible checks every input against before a role runs, so the reference
is generated from it rather than kept by hand; tests/test_role_docs.py fails when a README is stale.

    python ansible/render_role_docs.py            # rewrite ansible/roles/*/README.md
    python ansible/render_role_docs.py --check    # exit 1 and name the stale files
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import yaml

ROLES_DIR = Path(__file__).resolve().parent / "roles"
HEADER = ("<!-- Generated from meta/argument_specs.yml by ansible/render_role_docs.py (make role-docs)."
          " Edit the spec, not this file. -->")
COLUMNS = ("type", "required", "default", "choices", "description")


def _yaml_value(value) -> str:
    """A value as one would write it in an inventory (YAML flow style)."""
    text = yaml.safe_dump(value, default_flow_style=True, width=10_000, allow_unicode=True).strip()
    return text.removesuffix("\n...").removesuffix("...").strip()


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _code(text: str) -> str:
    return f"`{text}`" if text else ""


def _type(opt: dict) -> str:
    kind = opt.get("type", "str")
    return f"{kind} of {opt['elements']}" if kind == "list" and "elements" in opt else kind


def _default(opt: dict, inherited: str | None = None) -> str:
    if opt.get("required"):
        return "—"
    if "default" not in opt or opt["default"] is None:
        return f"`{inherited}`" if inherited else "unset"
    return _code(_yaml_value(opt["default"]))


def _description(opt: dict) -> str:
    text = opt.get("description", "")
    if isinstance(text, list):
        text = " ".join(text)
    if opt.get("no_log"):
        text += " Secret: `no_log`, never shown in output."
    return _cell(text)


def _nested_title(name: str, opt: dict) -> str:
    return f"Keys of each entry of `{name}`" if opt.get("type") == "list" else f"Keys of `{name}`"


def _anchor(title: str) -> str:
    """GitHub's heading anchor: lower case, punctuation but - and _ dropped, spaces to -."""
    return re.sub(r"[^\w\- ]", "", title.lower()).replace(" ", "-")


def _table(options: dict, first: str, inherit_from: dict | None = None, prefix: str = "") -> list[str]:
    """One row per option. A nested key without a default falls back to the role variable
    PREFIX + key when the role has one (celery_worker_instances[].pool -> celery_worker_pool)."""
    inherit_from = inherit_from or {}
    lines = [f"| {first} | " + " | ".join(COLUMNS) + " |", "|" + "---|" * (len(COLUMNS) + 1)]
    for name, opt in options.items():
        description = _description(opt)
        if opt.get("options"):
            description += f" Keys: [below](#{_anchor(_nested_title(name, opt))})."
        choices = ", ".join(_code(_yaml_value(c)) for c in opt.get("choices", []))
        default = _default(opt, prefix + name if prefix + name in inherit_from else None)
        required = "yes" if opt.get("required") else "no"
        lines.append(f"| `{name}` | {_type(opt)} | {required} | {default} | {choices} | {description.strip()} |")
    return lines


def _nested(options: dict, heading: str, role_options: dict, prefix: str) -> list[str]:
    lines: list[str] = []
    for name, opt in options.items():
        if not opt.get("options"):
            continue
        lines += ["", f"{heading} {_nested_title(name, opt)}", ""]
        lines += _table(opt["options"], "key", role_options, prefix)
        lines += _nested(opt["options"], heading + "#", role_options, prefix)
    return lines


def render(role_dir: Path) -> str:
    spec = yaml.safe_load((role_dir / "meta" / "argument_specs.yml").read_text())["argument_specs"]
    meta = yaml.safe_load((role_dir / "meta" / "main.yml").read_text()) or {}
    description = (meta.get("galaxy_info") or {}).get("description", "")
    lines = [HEADER, f"# Role `{role_dir.name}`", ""]
    if description:
        lines += [_cell(description) + ".", ""]
    lines += ["Every input is checked against `meta/argument_specs.yml` before the role changes anything;",
              "the defaults are in [`defaults/main.yml`](defaults/main.yml). *unset*: no default; the",
              "description says what applies then. A variable name as a key's default: an entry without",
              "that key takes the value of that role variable."]
    # An entry point that takes main's options (a YAML alias) gets one line, not a second table.
    shared = [entry for entry, body in spec.items()
              if entry != "main" and "main" in spec and body.get("options") == spec["main"].get("options")]
    for entry in shared:
        summary = spec[entry].get("short_description")
        line = f"Entry point `{entry}` (`tasks_from: {entry}`) takes the same variables."
        lines += ["", _cell(f"{line} {summary}." if summary else line)]
    spec = {entry: body for entry, body in spec.items() if entry not in shared}
    for entry, body in spec.items():
        title = "Variables" if entry == "main" and len(spec) == 1 else f"Entry point `{entry}`"
        lines += ["", f"## {title}", ""]
        if body.get("short_description"):
            lines += [_cell(body["short_description"]) + ".", ""]
        options = body.get("options") or {}
        lines += _table(options, "variable")
        lines += _nested(options, "###", options, f"{role_dir.name}_")
    return "\n".join(lines) + "\n"


def roles() -> list[Path]:
    return sorted(p for p in ROLES_DIR.iterdir() if (p / "meta" / "argument_specs.yml").exists())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a README is stale")
    args = parser.parse_args(argv)
    stale = []
    for role_dir in roles():
        readme, text = role_dir / "README.md", render(role_dir)
        if readme.exists() and readme.read_text() == text:
            continue
        stale.append(readme)
        if not args.check:
            readme.write_text(text)
    for path in stale:
        print(f"{'stale' if args.check else 'wrote'}: {path.relative_to(ROLES_DIR.parent.parent)}")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
