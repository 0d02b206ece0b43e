"""Rules no linter checks for us: tests assert something, nothing evaluates text, YAML is loaded safely."""

import ast
from pathlib import Path

ROOT = Path(__file__).parents[2]
PACKAGE = ROOT / "shared" / "src" / "playbook_core"
CODE_DIRS = [PACKAGE, ROOT / "functions", ROOT / "emulators"]
UNSAFE_YAML = {"load", "unsafe_load", "full_load", "load_all", "unsafe_load_all", "full_load_all"}


def python_files(*folders: Path) -> list[Path]:
    """Our Python files: not the venv's, nor those npm installs (emulators/firebase/node_modules)."""
    installed = {".venv", "node_modules"}
    return sorted(
        p for folder in folders for p in folder.rglob("*.py") if not installed & set(p.parts)
    )


def asserts_something(function: ast.FunctionDef) -> bool:
    for node in ast.walk(function):
        if isinstance(node, ast.Assert):
            return True
        if isinstance(node, ast.Call):
            target = node.func
            name = target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", "")
            if name in ("raises", "fail", "skip") or name.startswith("assert_"):
                return True
    return False


def silent_tests(path: Path) -> list[str]:
    return [
        f"{path.relative_to(ROOT)}::{node.name}"
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.FunctionDef)
        and node.name.startswith("test_")
        and not asserts_something(node)
    ]


def test_every_test_function_asserts_something():
    assert [name for path in python_files(ROOT / "tests") for name in silent_tests(path)] == []


def dangerous_calls(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Name) and func.id in ("eval", "exec", "compile", "__import__"):
            found.append(f"{path.name}:{node.lineno} {func.id}")
        if (
            isinstance(func, ast.Attribute)
            and isinstance(func.value, ast.Name)
            and func.value.id == "yaml"
            and func.attr in UNSAFE_YAML
        ):
            found.append(f"{path.name}:{node.lineno} yaml.{func.attr}")
    return found


def test_no_eval_exec_compile_or_unsafe_yaml_anywhere():
    found = [call for path in python_files(*CODE_DIRS) for call in dangerous_calls(path)]
    assert found == []


def test_the_scanner_catches_eval_and_unsafe_yaml(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("import yaml\neval('1')\nyaml.load('a')\nyaml.safe_load('a')\n")
    assert dangerous_calls(bad) == ["bad.py:2 eval", "bad.py:3 yaml.load"]
