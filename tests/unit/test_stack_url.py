"""`python -m emulators url`: the README's examples read the API's address from the stack."""

import json

from emulators.__main__ import main


def test_it_prints_the_gateway_address_the_running_stack_recorded(tmp_path, capsys):
    (tmp_path / "stack.json").write_text(json.dumps({"gateway": "http://127.0.0.1:54321"}))
    assert main(["url", "--state-dir", str(tmp_path)]) == 0
    assert capsys.readouterr().out == "http://127.0.0.1:54321/playbooks_api\n"
    assert main(["url", "webhook_shopify", "--state-dir", str(tmp_path)]) == 0
    assert capsys.readouterr().out == "http://127.0.0.1:54321/webhook_shopify\n"


def test_no_stack_or_an_unknown_function_is_an_error_not_a_guess(tmp_path, capsys):
    assert main(["url", "--state-dir", str(tmp_path)]) == 1
    assert "make up" in capsys.readouterr().err
    (tmp_path / "stack.json").write_text(json.dumps({"gateway": "http://127.0.0.1:54321"}))
    assert main(["url", "playbook_api", "--state-dir", str(tmp_path)]) == 2
    assert capsys.readouterr().out == ""


def test_auth_names_the_auth_emulator_when_the_stack_runs_one(tmp_path, capsys):
    state = {"gateway": "http://127.0.0.1:54321", "auth": "127.0.0.1:9099"}
    (tmp_path / "stack.json").write_text(json.dumps(state))
    assert main(["url", "auth", "--state-dir", str(tmp_path)]) == 0
    assert capsys.readouterr().out == "http://127.0.0.1:9099\n"
    (tmp_path / "stack.json").write_text(json.dumps({**state, "auth": None}))
    assert main(["url", "auth", "--state-dir", str(tmp_path)]) == 1
