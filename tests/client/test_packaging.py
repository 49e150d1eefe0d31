"""The player installs and imports without torch, FastAPI or the server-side latentcast packages."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement

import latentcast_client

DISTRIBUTION = "latentcast-client"
FORBIDDEN_DISTRIBUTIONS = {"torch", "fastapi", "starlette", "uvicorn", "latentcast"}
FORBIDDEN_IMPORTS = ("torch", "fastapi", "starlette", "uvicorn", "latentcast.models", "latentcast.server")
PACKAGE_DIR = Path(latentcast_client.__file__).parent


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def runtime_requirements(distribution: str) -> list[str]:
    """Names of the distributions ``distribution`` needs on this platform, without optional extras."""
    names = []
    for line in importlib.metadata.requires(distribution) or []:
        requirement = Requirement(line)
        if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
            names.append(normalize(requirement.name))
    return names


def dependency_closure(distribution: str) -> set[str]:
    found: set[str] = set()
    pending = [distribution]
    while pending:
        for name in runtime_requirements(pending.pop()):
            if name not in found:
                found.add(name)
                pending.append(name)
    return found


def imported_modules(path: Path) -> set[str]:
    modules = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules.add(node.module)
            modules.update(f"{node.module}.{alias.name}" for alias in node.names)
    return modules


def is_forbidden(module: str) -> bool:
    return any(module == name or module.startswith(name + ".") for name in FORBIDDEN_IMPORTS)


def test_dependencies_exclude_server_stack():
    closure = dependency_closure(DISTRIBUTION)
    assert "onnxruntime" in closure
    assert closure & FORBIDDEN_DISTRIBUTIONS == set()


def test_closure_follows_transitive_requirements():
    # httpx needs httpcore, which the client does not declare itself.
    assert "httpcore" in dependency_closure(DISTRIBUTION)


@pytest.mark.parametrize("path", sorted(PACKAGE_DIR.glob("*.py")), ids=lambda path: path.name)
def test_module_imports_no_server_code(path):
    forbidden = sorted(module for module in imported_modules(path) if is_forbidden(module))
    assert forbidden == []


def test_import_check_detects_forbidden(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("import torch.nn\nfrom latentcast.models import codec\nfrom latentcast import server\n")
    assert sorted(filter(is_forbidden, imported_modules(sample))) == [
        "latentcast.models", "latentcast.models.codec", "latentcast.server", "torch.nn",
    ]


def test_import_loads_no_server_modules():
    code = (
        "import sys, latentcast_client, latentcast_client.cli\n"
        "loaded = sorted(name for name in sys.modules if name.split('.')[0] in "
        "('torch', 'fastapi', 'starlette', 'uvicorn') or name.startswith(('latentcast.models', 'latentcast.server')))\n"
        "print(','.join(loaded))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert result.stdout.strip() == ""


def test_console_script_declared():
    scripts = importlib.metadata.entry_points(group="console_scripts")
    assert [entry.value for entry in scripts if entry.name == "latentcast-client"] == ["latentcast_client.cli:main"]
