"""Dependency rule of architecture.md §4, checked on the source, so a shortcut fails here and not in review."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parents[2] / "shared" / "src" / "playbook_core"

DOMAIN_FORBIDDEN_MODULES = (
    "os", "time", "uuid", "random", "socket", "subprocess", "google", "grpc", "httpx", "flask",
    "functions_framework", "playbook_core.adapters", "playbook_core.runtime",
    "playbook_core.service", "playbook_core.config",
)  # fmt: skip
SERVICE_FORBIDDEN_MODULES = (
    "google", "grpc", "httpx", "flask", "functions_framework", "playbook_core.adapters",
    "playbook_core.runtime", "playbook_core.config",
)  # fmt: skip
ADAPTER_FORBIDDEN_MODULES = (
    "playbook_core.service",
    "playbook_core.runtime",
    "playbook_core.config",
)
# Adapters are chosen in one place: bootstrap wires them, the CLI mints local tokens with one.
ADAPTER_IMPORTERS = {"runtime/bootstrap.py", "cli.py"}
CLOCK_CALLS = {
    ("datetime", "now"),
    ("datetime", "utcnow"),
    ("date", "today"),
    ("time", "time"),
    ("uuid", "uuid4"),
}


def modules(folder: str) -> list[Path]:
    return sorted((PACKAGE / folder).rglob("*.py"))


def imported(tree: ast.AST) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def violations(path: Path, forbidden: tuple[str, ...]) -> list[str]:
    tree = ast.parse(path.read_text())
    return sorted(
        name
        for name in imported(tree)
        if any(name == f or name.startswith(f + ".") for f in forbidden)
    )


@pytest.mark.parametrize("path", modules("domain"), ids=lambda p: p.name)
def test_domain_imports_nothing_impure(path):
    assert violations(path, DOMAIN_FORBIDDEN_MODULES) == []


@pytest.mark.parametrize("path", modules("domain"), ids=lambda p: p.name)
def test_domain_never_reads_the_clock_or_makes_random_ids(path):
    tree = ast.parse(path.read_text())
    calls = {
        (node.func.value.id, node.func.attr)
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and isinstance(node.func.value, ast.Name)
    }
    assert calls & CLOCK_CALLS == set()


@pytest.mark.parametrize("path", modules("service"), ids=lambda p: p.name)
def test_services_reach_the_world_only_through_ports(path):
    assert violations(path, SERVICE_FORBIDDEN_MODULES) == []


@pytest.mark.parametrize("path", modules("adapters"), ids=lambda p: p.name)
def test_adapters_know_ports_and_domain_but_no_use_case_or_glue(path):
    assert violations(path, ADAPTER_FORBIDDEN_MODULES) == []


def test_only_bootstrap_and_the_cli_import_adapters():
    importers = {
        path.relative_to(PACKAGE).as_posix()
        for path in PACKAGE.rglob("*.py")
        if path.parent.name != "adapters" and violations(path, ("playbook_core.adapters",))
    }
    assert importers <= ADAPTER_IMPORTERS
    assert "runtime/bootstrap.py" in importers  # the scan sees the one place that must import them


def test_only_config_reads_the_environment():
    readers = []
    for path in PACKAGE.rglob("*.py"):
        text = path.read_text()
        if (
            "os.environ" in text or "os.getenv" in text or "getenv(" in text
        ) and path.name != "config.py":
            readers.append(path.relative_to(PACKAGE).as_posix())
    assert readers == []


def test_the_checker_catches_a_forbidden_import(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("import os\nfrom google.cloud import firestore\n")
    assert violations(bad, DOMAIN_FORBIDDEN_MODULES) == ["google.cloud", "os"]
