"""docs/design.md names every module, and the layers point down."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "src" / "safe_pip"
DESIGN = (ROOT / "docs" / "design.md").read_text(encoding="utf-8")


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if p.name != "__init__.py")


def _named(module: Path) -> bool:
    relative = module.relative_to(PACKAGE)
    if len(relative.parts) == 1:
        return f"`{relative.name}`" in DESIGN
    # a module of a subpackage: the package's row names it by its stem
    package = f"`{relative.parts[0]}/`"
    rows = [line for line in DESIGN.splitlines() if line.startswith(f"| {package}")]
    return any(f"`{relative.stem}`" in row for row in rows)


def test_every_module_is_in_design_md() -> None:
    missing = [str(m.relative_to(PACKAGE)) for m in _modules() if not _named(m)]
    assert not missing, f"add a row to docs/design.md's module table for: {missing}"


def _imports(module: Path) -> set[str]:
    tree = ast.parse(module.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def test_only_the_cli_imports_command_modules() -> None:
    command = re.compile(r"^safe_pip\.commands(\.|$)")
    offenders = [
        str(m.relative_to(PACKAGE))
        for m in _modules()
        if m.parent.name != "commands"
        and m.name != "cli.py"
        and any(command.match(name) for name in _imports(m))
    ]
    assert offenders == []


def test_the_check_sees_a_missing_module() -> None:
    assert not _named(PACKAGE / "no_such_module.py")
    assert not _named(PACKAGE / "audit" / "no_such_part.py")
    assert _named(PACKAGE / "decide.py")
    assert _named(PACKAGE / "audit" / "reader.py")
