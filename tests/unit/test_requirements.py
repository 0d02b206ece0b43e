import importlib.util
from pathlib import Path

ROOT = Path(__file__).parents[2]


def load_generator():
    spec = importlib.util.spec_from_file_location(
        "pin_requirements", ROOT / "shared" / "tools" / "pin_requirements.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_function_requirements_match_the_project_pins():
    expected = load_generator().render()
    assert (ROOT / "functions" / "requirements.txt").read_text() == expected, (
        "run `make requirements`"
    )


def test_requirements_pin_the_runtime_libraries():
    text = (ROOT / "functions" / "requirements.txt").read_text()
    for name in ("pydantic==", "pyyaml==", "functions-framework==", "google-cloud-firestore=="):
        assert name in text
    assert "pytest" not in text
