"""The deploy artifact holds everything the code opens at run time, and nothing comes from the repo.

It is built outside the repo and run from the fresh virtualenv of its own requirements, so a file
the package forgot (a manifest, a catalog, a rule pack) fails here, not on the first deploy.
"""

from __future__ import annotations

import json
import subprocess
import zipfile
from pathlib import Path

import pytest

from tests.deployed.conftest import ROOT, package

# Run inside the artifact: every file opened while the code loads its data, then the API's own
# contract served through functions-framework as the buildpack would.
PROBE = """
import json, os, sys
opened = []
sys.addaudithook(
    lambda event, args: opened.append(os.fsdecode(args[0]))
    if event == "open" and isinstance(args[0], (str, bytes)) else None
)
import functions_framework, main
from playbook_core import catalog, compliance_rules
from playbook_core.runtime.manifest import load_manifest

functions = load_manifest().functions
for entry in catalog.registry():
    catalog.system_playbook(entry.id)
for entry in catalog.templates():
    catalog.template(entry.id)
compliance_rules.packs(); compliance_rules.area_codes(); compliance_rules.state_zones()
client = functions_framework.create_app("playbooks_api", "main.py").test_client()
answer = client.get("/v1/openapi.json")
assert answer.status_code == 200, answer.status_code
print(json.dumps({"functions": len(functions), "opened": opened}))
"""


def run_probe(source: Path, venv: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": f"{venv / 'bin'}:/usr/bin:/bin", "HOME": str(tmp_path),
        "PLAYBOOKS_BACKEND": "embedded", "PLAYBOOKS_DATA_DIR": str(tmp_path / "data"),
    }  # fmt: skip
    return subprocess.run(  # noqa: S603 - our own probe in our own virtualenv
        [str(venv / "bin" / "python"), "-c", PROBE],
        cwd=source, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def test_the_artifact_reads_only_itself_and_its_requirements(artifact, runtime_venv, tmp_path):
    probe = run_probe(artifact, runtime_venv, tmp_path)
    assert probe.returncode == 0, probe.stderr[-2000:]
    result = json.loads(probe.stdout.splitlines()[-1])
    assert result["functions"] >= 10
    opened = [Path(path).resolve() for path in result["opened"]]
    from_repo = [p for p in opened if p.is_relative_to(ROOT) and not p.is_relative_to(runtime_venv)]
    assert from_repo == []
    data = {p.name for p in opened if p.is_relative_to(artifact)}
    assert {"manifest.yaml", "openapi.json", "registry.yaml", "templates.yaml"} <= data


@pytest.mark.parametrize(
    "missing",
    ["manifest.yaml", "playbook_core/runtime/openapi.json", "playbook_core/catalog/registry.yaml"],
)
def test_an_artifact_without_a_file_the_code_opens_fails(artifact, runtime_venv, tmp_path, missing):
    broken = tmp_path / "functions"
    subprocess.run(["cp", "-r", str(artifact), str(broken)], check=True)  # noqa: S603, S607
    (broken / missing).unlink()
    probe = run_probe(broken, runtime_venv, tmp_path)
    assert probe.returncode != 0
    # A missing data file ends the load, or the route that serves it answers 500.
    assert "FileNotFoundError" in probe.stderr or "AssertionError: 500" in probe.stderr


def test_the_zip_is_the_directory_byte_for_byte_and_reproducible(tmp_path):
    first_dir, first_zip = package.build(tmp_path / "a")
    _, second_zip = package.build(tmp_path / "b")
    assert first_zip.read_bytes() == second_zip.read_bytes()
    with zipfile.ZipFile(first_zip) as bundle:
        names = sorted(bundle.namelist())
        assert all(bundle.read(name) == (first_dir / name).read_bytes() for name in names)
    files = sorted(p.relative_to(first_dir).as_posix() for p in first_dir.rglob("*") if p.is_file())
    assert names == files
    assert {"main.py", "requirements.txt", "manifest.yaml"} <= set(names)
    assert not [name for name in names if "__pycache__" in name or name.endswith(".pyc")]
    shipped = {
        p.relative_to(ROOT / "shared" / "src").as_posix()
        for p in (ROOT / "shared" / "src" / "playbook_core").rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
    }
    assert shipped <= set(names)
