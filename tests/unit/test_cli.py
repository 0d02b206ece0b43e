import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from playbook_core.cli import main

DATA = Path(__file__).parents[1] / "data" / "playbooks"


def test_validate_reports_file_line_column_path_message_and_exits_1(capsys):
    files = sorted(str(p) for p in DATA.glob("invalid_*.yaml"))
    assert main(["validate", *files]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        f"{files[0]}:6:4: <document>: YAML syntax error: expected <block end>, but found '<block mapping start>' [yaml_syntax]",
        f"{files[1]}:5:5: steps[0].script: unknown field [unknown_field]",
        f"{files[2]}:6:11: steps[0].params.to: filters are not allowed in placeholders [invalid_template]",
        f"{files[3]}:7:13: steps[0].params.task: this text looks like code and is not allowed in a playbook [forbidden_construct]",
    ]


def test_validate_prints_ok_and_exits_0_for_a_valid_file(capsys):
    path = str(DATA / "post_purchase_example.yaml")
    assert main(["validate", path]) == 0
    assert capsys.readouterr().out == f"{path}: OK\n"


def test_validate_prints_warnings_without_failing(tmp_path, capsys):
    draft = tmp_path / "draft.yaml"
    draft.write_text("name: Draft\nagent: craig\nstatus: active\n")
    assert main(["validate", str(draft)]) == 0
    out = capsys.readouterr().out
    assert (
        f"{draft}:3:1: warning: status: 'status' is managed by the server and was ignored [ignored_field]"
        in out
    )
    assert out.endswith(f"{draft}: OK\n")


def test_validate_a_missing_file_is_an_error(tmp_path, capsys):
    assert main(["validate", str(tmp_path / "nope.yaml")]) == 1
    assert "[unreadable]" in capsys.readouterr().out


def test_schema_is_a_json_schema_of_the_document(capsys):
    assert main(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema["$schema"].endswith("2020-12/schema")
    assert {"name", "agent", "triggers", "steps", "maxRetries"} <= set(schema["properties"])
    assert schema["additionalProperties"] is False


@pytest.mark.parametrize(
    ("tier", "count"),
    [("scout", 3), ("pro", 11), ("growth", 17), ("empire", 22), ("enterprise", 22)],
)
def test_catalog_lists_ids_per_tier(tier, count, capsys):
    assert main(["catalog", "--tier", tier]) == 0
    ids = capsys.readouterr().out.split()
    assert len(ids) == count
    if tier == "empire":
        assert "weekly-competitive-snapshot" not in ids
        assert "tier-upgrade-nudge" not in ids


def test_catalog_unknown_tier_is_a_usage_error(capsys):
    assert main(["catalog", "--tier", "platinum"]) == 2
    assert "unknown tier" in capsys.readouterr().err


def test_console_script_is_installed_in_the_venv():
    script = shutil.which("playbooks", path=str(Path(sys.executable).parent))
    assert script is not None
    result = subprocess.run(  # noqa: S603 - the venv's own console script
        [script, "catalog", "--tier", "empire"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0
    assert len(result.stdout.split()) == 22
