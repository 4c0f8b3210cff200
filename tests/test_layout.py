"""The shape of the code (docs/architecture.md, "Where code lives"): every import inside the package
resolves, no domain package imports the Kedro wiring in `pipelines/`, and every folder the docs name
exists."""

from __future__ import annotations

import ast
import importlib.util
import re
from pathlib import Path

from tests.conftest import PROJECT_ROOT

PACKAGE = PROJECT_ROOT / "src" / "animation_lora"
# the Kedro glue may look at the pipelines; nothing else may
WIRING = {"pipelines", "pipeline_registry", "settings", "hooks", "__main__"}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module name) of every `import`/`from … import` in a file, function-level ones too."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = importlib.util.resolve_name("." * node.level + (node.module or ""), package) \
                if node.level else node.module
            found.append((node.lineno, base))
            found += [(node.lineno, f"{base}.{a.name}") for a in node.names]  # a submodule, or a name
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
    return found


def sources() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "demo/base" not in p.as_posix())


def test_every_import_inside_the_package_resolves():
    missing = []
    for path in sources():
        for line, name in imports(path):
            if not name.startswith("animation_lora"):
                continue
            parent, _, leaf = name.rpartition(".")
            if importlib.util.find_spec(name) if _is_module(name) else _has_name(parent, leaf):
                continue
            missing.append(f"{path.relative_to(PACKAGE)}:{line}: {name}")
    assert not missing, "imports that do not resolve:\n" + "\n".join(missing)


def _is_module(name: str) -> bool:
    return (PACKAGE.parent / name.replace(".", "/")).with_suffix(".py").exists() or \
        (PACKAGE.parent / name.replace(".", "/") / "__init__.py").exists()


def _has_name(module: str, name: str) -> bool:
    """`from module import name`: the module defines (or imports) `name` (every module has `__doc__` …)."""
    if name.startswith("__") and name.endswith("__"):
        return _is_module(module)
    if not _is_module(module):
        return False
    path = PACKAGE.parent / module.replace(".", "/")
    path = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
    return re.search(rf"(^|[\s,(]){re.escape(name)}\b", path.read_text(), re.M) is not None


def test_no_domain_package_imports_the_pipelines():
    arrows = []
    for path in sources():
        top = path.relative_to(PACKAGE).with_suffix("").parts[0]
        if top in WIRING:
            continue
        arrows += [f"{path.relative_to(PACKAGE)}:{line} imports {name}" for line, name in imports(path)
                   if name.startswith("animation_lora.pipelines")]
    assert not arrows, "arrows up into pipelines/:\n" + "\n".join(arrows)


def test_the_folders_the_architecture_docs_name_exist():
    text = (PROJECT_ROOT / "docs" / "architecture.md").read_text()
    block = text.split("## Where code lives", 1)[1].split("```")[1]
    named = re.findall(r"^  ([a-z_]+)(/|\.py)", block, re.M)
    assert len(named) >= 10, "the layout block lists the package's folders and modules"
    for name, kind in named:
        assert (PACKAGE / (name + kind.rstrip("/"))).exists(), f"docs/architecture.md names {name}{kind}"
    on_disk = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert on_disk <= {name for name, kind in named if kind == "/"}, "every package is in the docs' layout"
