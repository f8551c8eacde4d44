"""Dependencies point one way, HTTP → service → engine: what each layer's modules import, read from their
source with `ast` (imports inside functions included), so a wrong-way import fails here before it is run."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import whisper_api

PACKAGE = Path(whisper_api.__file__).parent


def imported_modules(path: Path) -> set[str]:
    """Every module `path` imports, as absolute dotted names."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the importing module's package
                base = path.relative_to(PACKAGE.parent).with_suffix("").parts[: -node.level]
                names.add(".".join((*base, node.module or "")).rstrip("."))
            else:
                assert node.module is not None
                names.add(node.module)
            if node.module == "whisper_api":  # `from whisper_api import http` names a subpackage
                names.update(f"whisper_api.{alias.name}" for alias in node.names)
    return names


def package_imports(path: Path) -> set[str]:
    return {name for name in imported_modules(path) if name.split(".")[0] == "whisper_api"}


def within(name: str, layer: str) -> bool:
    return name == f"whisper_api.{layer}" or name.startswith(f"whisper_api.{layer}.")


LAYERS = {
    "engine": ("http", "service", "jobs", "wyoming"),
    "service": ("http", "wyoming"),
    "jobs": ("http", "wyoming"),
    "audio": ("http", "engine", "jobs", "service", "wyoming"),
    # Home Assistant's protocol is a front door beside HTTP, on the same service.
    "wyoming": ("http", "jobs"),
}


@pytest.mark.parametrize(
    ("layer", "above"), [(layer, above) for layer, forbidden in LAYERS.items() for above in forbidden]
)
def test_a_layer_imports_nothing_from_the_layers_above_it(layer: str, above: str) -> None:
    wrong_way = {
        f"{path.relative_to(PACKAGE)} imports {name}"
        for path in sorted((PACKAGE / layer).rglob("*.py"))
        for name in package_imports(path)
        if within(name, above)
    }
    assert not wrong_way


def test_the_binding_imports_nothing_of_the_package_but_itself() -> None:
    outside = {
        f"{path.relative_to(PACKAGE)} imports {name}"
        for path in sorted((PACKAGE / "binding").rglob("*.py"))
        for name in package_imports(path)
        if not within(name, "binding")
    }
    assert not outside


def test_only_the_engine_imports_the_binding() -> None:
    wrong_way = {
        f"{path.relative_to(PACKAGE)} imports {name}"
        for path in sorted(PACKAGE.rglob("*.py"))
        if path.parent.name not in ("engine", "binding")
        for name in package_imports(path)
        if within(name, "binding")
    }
    assert not wrong_way


def test_whisper_cpp_is_reached_only_through_the_binding() -> None:
    """pywhispercpp's extension module is nobody's import: the wheel only supplies libwhisper."""
    importers = {
        str(path.relative_to(PACKAGE))
        for path in sorted(PACKAGE.rglob("*.py"))
        if any(name.split(".")[0] in ("_pywhispercpp", "pywhispercpp") for name in imported_modules(path))
    }
    assert not importers


def test_the_error_categories_import_nothing_of_the_package() -> None:
    assert package_imports(PACKAGE / "errors.py") == set()


def test_the_http_error_map_imports_only_the_error_categories_from_outside_http() -> None:
    outside = {name for name in package_imports(PACKAGE / "http" / "errors.py") if not within(name, "http")}
    assert outside == {"whisper_api.errors"}


def test_the_http_routes_import_nothing_of_the_engine() -> None:
    wrong_way = {
        f"{path.relative_to(PACKAGE)} imports {name}"
        for path in sorted((PACKAGE / "http" / "routes").rglob("*.py"))
        for name in package_imports(path)
        if within(name, "engine")
    }
    assert not wrong_way


def test_the_job_worker_imports_nothing_of_the_http_layer() -> None:
    assert not {name for name in package_imports(PACKAGE / "cli" / "worker.py") if within(name, "http")}


def test_the_job_worker_process_loads_no_litestar() -> None:
    """What the worker module pulls in, transitively, as a fresh interpreter sees it."""
    probe = "import sys, whisper_api.cli.worker; print('litestar' in sys.modules)"
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == "False"
