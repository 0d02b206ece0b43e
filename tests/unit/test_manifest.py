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


def test_health_answers_through_the_deployed_entry_point():
    client = functions_framework.create_app("playbooks_api", str(MAIN), "http").test_client()
    response = client.get("/v1/health")
    assert response.status_code == 200
    assert response.get_json()["status"] == "ok"


def test_unknown_route_is_problem_json():
    client = functions_framework.create_app("playbooks_api", str(MAIN), "http").test_client()
    response = client.get("/v1/nothing-here")
    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"
