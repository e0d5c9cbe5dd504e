"""The architecture, checked by reading the code: layers that import only downward, plugins on the public API.

Every ``lmu/*.py`` is parsed with ``ast``; every import (at module level and inside functions, ``import_module``
calls with a literal name included) that points at another core module must point at a lower layer of
``lmu._architecture.LAYERS``. The package itself (``__init__``, ``__main__``) is the top and is exempt.
"""

import ast
import pathlib
import sys

import pytest

from lmu._architecture import LAYERS, layer_of

ROOT = pathlib.Path(__file__).resolve().parent.parent
CORE = ROOT / "lmu"
PLUGINS = ROOT / "plugins"
PACKAGE = "<the lmu package>"  # importing ``lmu`` itself from inside the core points at the top
FRAMEWORKS = ("torch", "tensorflow", "keras", "keras_lmu", "nengo", "nengo_dl", "nengo_loihi", "matplotlib", "h5py",
              "tqdm")


def core_modules():
    return sorted(p.stem for p in CORE.glob("*.py") if p.stem not in ("__init__", "__main__"))


def lmu_imports(path: pathlib.Path) -> list[tuple[int, str]]:
    """``(line, core module)`` for every import of a core module in a file (``PACKAGE`` for ``lmu`` itself)."""
    core = set(core_modules())
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1 and node.module:
                found.append((node.lineno, node.module.split(".")[0]))
            elif node.level == 1 or node.module == "lmu":
                found += [(node.lineno, a.name if a.name in core else PACKAGE) for a in node.names]
            elif node.module and node.module.startswith("lmu."):
                found.append((node.lineno, node.module.split(".")[1]))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "lmu":
                    found.append((node.lineno, PACKAGE))
                elif alias.name.startswith("lmu."):
                    found.append((node.lineno, alias.name.split(".")[1]))
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) == \
                "import_module" and node.args and isinstance(node.args[0], ast.Constant):
            name = str(node.args[0].value)
            if name.startswith("lmu.") or name.startswith("."):
                found.append((node.lineno, name.lstrip(".").removeprefix("lmu.").split(".")[0]))
    return found


def framework_imports(path: pathlib.Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
            [node.module] if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module else []
        found += [(node.lineno, n) for n in names if n.split(".")[0] in FRAMEWORKS]
    return found


def test_every_core_module_has_a_layer():
    placed = {m for _, modules in LAYERS for m in modules}
    assert sorted(placed) == core_modules(), "lmu._architecture.LAYERS and lmu/*.py list different modules"


@pytest.mark.parametrize("module", core_modules())
def test_imports_point_down_only(module):
    level = layer_of(module)
    wrong = []
    for line, target in lmu_imports(CORE / f"{module}.py"):
        if target == module:
            continue
        if target == PACKAGE or layer_of(target) >= level:
            where = "the lmu package (the top)" if target == PACKAGE else \
                f"lmu.{target} (layer {layer_of(target)}: {LAYERS[layer_of(target)][0]})"
            wrong.append(f"lmu/{module}.py:{line} imports {where}")
    assert not wrong, f"lmu.{module} is in layer {level} ({LAYERS[level][0]}); imports may only point lower:\n" + \
        "\n".join(wrong)


@pytest.mark.parametrize("module", core_modules())
def test_the_core_imports_no_framework_at_module_level(module):
    tree = ast.parse((CORE / f"{module}.py").read_text())
    top = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    names = [a.name for n in top if isinstance(n, ast.Import) for a in n.names] + \
        [n.module for n in top if isinstance(n, ast.ImportFrom) and n.level == 0 and n.module]
    assert not [n for n in names if n.split(".")[0] in FRAMEWORKS]


def test_the_checker_sees_imports_inside_functions(tmp_path):
    """The test above could pass by reading too little: show that it finds an upward import in a function."""
    source = tmp_path / "spec.py"
    source.write_text("def f():\n    from .registry import build\n    import lmu.testing\n"
                      "    importlib.import_module('lmu.cli')\n    from lmu import backends\n")
    targets = sorted(t for _, t in lmu_imports(source))
    assert targets == sorted(["registry", "testing", "cli", PACKAGE])


def plugin_files():
    return sorted(PLUGINS.glob("*/*.py"))


@pytest.mark.parametrize("path", plugin_files(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_plugins_use_the_public_api_for_the_contract(path):
    tree = ast.parse(path.read_text())
    private = [(n.lineno, n.module) for n in ast.walk(tree)
               if isinstance(n, ast.ImportFrom) and n.module in ("lmu.registry", "lmu.reference")]
    assert not private, f"{path.name} imports the contract from {private}: use `import lmu` / `lmu.Backend`"


def test_plugin_entry_modules_import_no_framework():
    """What the registry loads (each plugin's __init__ and backend module) imports no framework at all."""
    for package in sorted(p for p in PLUGINS.iterdir() if (p / "__init__.py").exists()):
        for name in ("__init__.py", "backend.py"):
            found = framework_imports(package / name)
            tree = ast.parse((package / name).read_text())
            top = {n.lineno for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))}
            assert not [f for f in found if f[0] in top], f"{package.name}/{name} imports {found} at import time"


def _raises_of_builtins(path: pathlib.Path) -> list[str]:
    """``raise <builtin exception>(...)`` statements, except the AttributeError of a module ``__getattr__``."""
    import builtins

    found = []
    tree = ast.parse(path.read_text())
    allowed = set()
    for fn in (n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "__getattr__"):
        allowed |= {id(r) for r in ast.walk(fn) if isinstance(r, ast.Raise)}
    for node in ast.walk(tree):
        if not isinstance(node, ast.Raise) or node.exc is None or id(node) in allowed:
            continue
        target = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
        name = target.id if isinstance(target, ast.Name) else None
        error = getattr(builtins, name, None) if name else None
        if isinstance(error, type) and issubclass(error, BaseException):
            found.append(f"{path.relative_to(ROOT)}:{node.lineno} raises {name}")
    return found


@pytest.mark.parametrize("path", sorted(CORE.glob("*.py")) + plugin_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_error_raised_is_an_lmu_error(path):
    """errors.py says every error lmu raises is an lmu.LMUError: no ``raise ValueError(...)`` anywhere."""
    assert not _raises_of_builtins(path)


if __name__ == "__main__":  # pragma: no cover - prints the import graph, for the design page and closing notes
    for name in core_modules():
        deps = sorted({t for _, t in lmu_imports(CORE / f"{name}.py")} - {name})
        print(f"{name:14s} layer {layer_of(name)}  -> {', '.join(deps) or '-'}")
    sys.exit(0)
