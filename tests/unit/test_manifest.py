import ast
from pathlib import Path

import functions_framework
import pytest

from playbook_core.runtime.manifest import load_manifest

ROOT = Path(__file__).parents[2]
MAIN = ROOT / "functions" / "main.py"


def registered_functions() -> set[str]:
    tree = ast.parse(MAIN.read_text())
    names = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            for decorator in node.decorator_list:
                if isinstance(decorator, ast.Attribute) and decorator.attr in (
                    "http",
                    "cloud_event",
                ):
                    names.add(node.name)
    return names


def test_every_registered_function_has_a_manifest_entry_and_back():
    manifest = load_manifest()
    assert {f.name for f in manifest.functions} == registered_functions()


@pytest.mark.parametrize("function", load_manifest().functions, ids=lambda f: f.name)
def test_every_manifest_entry_builds_with_functions_framework(function):
    app = functions_framework.create_app(function.name, str(MAIN), function.signature)
    assert app is not None
