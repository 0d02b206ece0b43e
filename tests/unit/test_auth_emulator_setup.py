"""How the stack would start the Firebase CLI's Auth emulator: switch, config, command, environment.

The emulator itself runs in tests/e2e/test_auth_emulator.py; this is what surrounds it.
"""

import json
import sys
from pathlib import Path

import pytest

from emulators import auth_emulator
from emulators.auth_emulator import AuthEmulatorError, Availability

ROOT = Path(__file__).parents[2]
PRESENT = Availability(node="/usr/bin/node", npm=None, installed=True)
INSTALLABLE = Availability(node="/usr/bin/node", npm="/usr/bin/npm", installed=False)
NO_NODE = Availability(node=None, npm="/usr/bin/npm", installed=True)
NOT_INSTALLED = Availability(node="/usr/bin/node", npm=None, installed=False)


@pytest.mark.parametrize(
    ("switch", "found", "started"),
    [
        (None, PRESENT, True),
        ("auto", PRESENT, True),
        ("", PRESENT, True),
        ("on", PRESENT, True),
        ("auto", INSTALLABLE, True),  # the part installs it first
        ("on", INSTALLABLE, True),
        ("off", PRESENT, False),
        ("auto", NO_NODE, False),
        ("auto", NOT_INSTALLED, False),
        ("off", NO_NODE, False),
    ],
)
def test_auto_starts_it_where_it_can_run_and_off_never(switch, found, started):
    environ = {} if switch is None else {auth_emulator.SWITCH: switch}
    assert auth_emulator.wanted(found, environ) is started


@pytest.mark.parametrize(
    ("found", "reason"),
    [(NO_NODE, "node is not on PATH"), (NOT_INSTALLED, "npm is not on PATH")],
)
def test_on_without_node_or_the_cli_is_an_error_naming_what_is_missing(found, reason):
    with pytest.raises(AuthEmulatorError, match=reason):
        auth_emulator.wanted(found, {auth_emulator.SWITCH: "on"})


def test_a_misspelt_switch_is_an_error():
    with pytest.raises(AuthEmulatorError, match="auto, on or off"):
        auth_emulator.wanted(PRESENT, {auth_emulator.SWITCH: "yes"})


def test_the_config_names_the_auth_emulator_alone_on_the_chosen_port(tmp_path):
    config = auth_emulator.write_config(tmp_path / "firebase", 19099)
    assert json.loads(config.read_text()) == {
        "emulators": {
            "auth": {"host": "127.0.0.1", "port": 19099},
            "ui": {"enabled": False},
            "singleProjectMode": True,
        }
    }


def test_the_part_is_niced_serve_which_becomes_the_pinned_cli_for_auth_alone(tmp_path):
    config = tmp_path / "firebase.json"
    part = auth_emulator.part_command(config, "demo-playbooks")
    start = part.index(sys.executable)
    assert part[:start] in ([], [part[0], "-n", str(auth_emulator.NICENESS)])
    assert part[start:] == [
        sys.executable, "-u", "-m", "emulators.auth_emulator", "serve",
        "--config", str(config), "--project", "demo-playbooks",
    ]  # fmt: skip
    assert auth_emulator.cli_command("/usr/bin/node", config, "demo-playbooks") == [
        "/usr/bin/node", str(auth_emulator.CLI), "emulators:start", "--only", "auth",
        "--project", "demo-playbooks", "--config", str(config),
    ]  # fmt: skip


def test_the_cli_fetches_nothing_and_shares_no_login_or_emulator_address(tmp_path):
    shell = {
        "PATH": "/usr/bin", "HOME": "/root", "GOOGLE_APPLICATION_CREDENTIALS": "/k.json",
        "FIREBASE_TOKEN": "1//t", "FIRESTORE_EMULATOR_HOST": "127.0.0.1:8085",
        "FIREBASE_AUTH_EMULATOR_HOST": "127.0.0.1:9099", "PUBSUB_EMULATOR_HOST": "x:1",
    }  # fmt: skip
    env = auth_emulator.environment(shell, tmp_path)
    assert env == {
        "PATH": "/usr/bin", "HOME": "/root", "NO_UPDATE_NOTIFIER": "1", "CI": "true",
        "XDG_CONFIG_HOME": str(tmp_path / "config"), "TMPDIR": str(tmp_path),
    }  # fmt: skip


def test_the_pinned_cli_is_the_one_the_lockfile_names():
    package = json.loads((auth_emulator.PACKAGE_DIR / "package.json").read_text())
    lock = json.loads((auth_emulator.PACKAGE_DIR / "package-lock.json").read_text())
    pinned = package["dependencies"]["firebase-tools"]
    assert pinned[0].isdigit()  # an exact version, no range
    assert lock["packages"]["node_modules/firebase-tools"]["version"] == pinned
    assert auth_emulator.CLI.relative_to(auth_emulator.PACKAGE_DIR) == Path(
        "node_modules/firebase-tools/lib/bin/firebase.js"
    )


def test_the_install_is_current_only_for_the_package_files_it_was_made_from(tmp_path, monkeypatch):
    package = tmp_path / "firebase"
    cli = package / "node_modules" / "firebase-tools" / "lib" / "bin" / "firebase.js"
    pinned = (package / "package.json", package / "package-lock.json")
    monkeypatch.setattr(auth_emulator, "PINNED", pinned)
    monkeypatch.setattr(auth_emulator, "CLI", cli)
    monkeypatch.setattr(auth_emulator, "STAMP", package / "node_modules" / ".installed")
    cli.parent.mkdir(parents=True)
    for path in pinned:
        path.write_text("{}")
    assert not auth_emulator.current()  # no stamp: never installed by us
    cli.write_text("")
    (package / "node_modules" / ".installed").write_text(auth_emulator.fingerprint() + "\n")
    assert auth_emulator.current()
    pinned[1].write_text('{"lockfileVersion": 3}')  # a new lock: install again
    assert not auth_emulator.current()


def test_firebase_json_declares_auth_on_the_port_the_stack_prefers():
    # `firebase emulators:start` with it and `make dev` both put Auth where the dashboard's
    # connectAuthEmulator looks; rules and indexes: tests/unit/test_infra.py.
    emulators = json.loads((ROOT / "firebase.json").read_text())["emulators"]
    assert {name: emulators[name]["port"] for name in ("auth", "firestore", "pubsub")} == {
        "auth": auth_emulator.DEFAULT_PORT, "firestore": 8085, "pubsub": 8086,
    }  # fmt: skip
    assert {emulators[name]["host"] for name in ("auth", "firestore", "pubsub")} == {"127.0.0.1"}
    assert emulators["ui"] == {"enabled": False}  # the UI is a download: unreachable here
