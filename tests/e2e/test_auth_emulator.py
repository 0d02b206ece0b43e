"""The real Firebase Auth emulator, started by `make dev`, and the API of the same stack (issue #12).

`python -m emulators dev` (what `make dev` runs) in a private state dir on free ports. A user signs
up through the emulator's REST API (the calls the Firebase JS SDK makes), gets `role`/`orgId`
custom claims through its admin endpoint (`Authorization: Bearer owner`, as the Admin SDK does
against the emulator), signs in again for an ID token that carries them, and calls the API with
it. Without node the emulator cannot run and the module skips; with node, a missing install fails
(`make test` installs it first).
"""

import base64
import json
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest

from emulators import auth_emulator, processes
from playbook_core.testing import eventually
from tests.openapi_conformance import CONFORMING

pytestmark = pytest.mark.stack

ROOT = Path(__file__).parents[2]
PROJECT = "demo-playbooks"
ORG = "org_demo_dispensary"  # the demo org `make dev` seeds
API_KEY = "fake-api-key"  # the emulator takes any key; the JS SDK sends the app config's
READY = "auth emulator ready on http://"


class Dev:
    """`make dev`'s process, its output and stack.json, and clients for the emulator and the API."""

    def __init__(self, state_dir):
        self.state_dir, self.out = state_dir, state_dir / "dev.out"
        env = {**os.environ, "PLAYBOOKS_GATEWAY_PORT": "0", "PLAYBOOKS_AUTH_PORT": "0"}
        env.pop("PLAYBOOKS_AUTH_EMULATOR", None)  # the default, as `make dev` has it
        with self.out.open("w") as out:
            self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
                [sys.executable, "-m", "emulators", "dev", "--state-dir", str(state_dir)],
                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, text=True,
            )  # fmt: skip

    def output(self):
        return self.out.read_text()

    def wait_for(self, text, timeout):
        def seen():
            assert self.process.poll() is None, f"make dev exited:\n{self.output()[-3000:]}"
            return text in self.output()

        try:
            eventually(seen, timeout=timeout, interval=0.5)
        except AssertionError as exc:
            raise AssertionError(f"{exc}; make dev said:\n{self.output()[-3000:]}") from None

    def start(self):
        self.wait_for("serving until Ctrl-C", timeout=120)
        self.state = json.loads((self.state_dir / "stack.json").read_text())
        # Announced by `make dev` once the emulator answers (up does not wait for it).
        self.wait_for(READY, timeout=auth_emulator.READY_TIMEOUT_S)
        self.auth = httpx.Client(base_url=f"http://{self.state['auth']}", timeout=30)
        self.api = httpx.Client(
            base_url=f"{self.state['gateway']}/playbooks_api/v1",
            timeout=30,
            trust_env=False,
            event_hooks=CONFORMING,  # every answer is held to the OpenAPI document
        )

    def stop(self):
        for client in (getattr(self, "auth", None), getattr(self, "api", None)):
            if client is not None:
                client.close()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


@pytest.fixture(scope="module")
def dev(tmp_path_factory):
    found = auth_emulator.detect()
    if not found.node:
        pytest.skip("node is not on PATH: the Auth emulator (the Firebase CLI) needs Node")
    if not found.installed:  # `make test` installs it first (make firebase-tools)
        pytest.fail(
            "node is here, so the Auth emulator must run, but firebase-tools is not installed "
            "from the current emulators/firebase/package-lock.json: run `make firebase-tools`"
        )
    running = Dev(tmp_path_factory.mktemp("auth-dev"))
    try:
        running.start()
        yield running
    finally:
        running.stop()


def identity_toolkit(dev, method, body, **headers):
    response = dev.auth.post(
        f"/identitytoolkit.googleapis.com/v1/{method}", params={"key": API_KEY}, json=body,
        headers=headers,
    )  # fmt: skip
    assert response.status_code == 200, response.text
    return response.json()


def sign_up(dev):
    """A new email/password user, as `createUserWithEmailAndPassword` makes it: (uid, password)."""
    email, password = f"{uuid.uuid4().hex[:12]}@example.com", f"pw-{uuid.uuid4().hex}"
    body = {"email": email, "password": password, "returnSecureToken": True}
    user = identity_toolkit(dev, "accounts:signUp", body)
    return user, password


def set_claims(dev, uid, claims):
    """Custom claims as the Admin SDK's setCustomUserClaims sets them on the emulator."""
    body = {"localId": uid, "customAttributes": json.dumps(claims)}
    identity_toolkit(dev, f"projects/{PROJECT}/accounts:update", body, Authorization="Bearer owner")


def sign_in(dev, user, password):
    """`signInWithEmailAndPassword`: a fresh ID token, with the claims set meanwhile."""
    body = {"email": user["email"], "password": password, "returnSecureToken": True}
    return identity_toolkit(dev, "accounts:signInWithPassword", body)


def decode(token):
    return [json.loads(base64.urlsafe_b64decode(part + "==")) for part in token.split(".")[:2]]


def playbooks(dev, id_token, org=ORG):
    return dev.api.get(f"/orgs/{org}/playbooks", headers={"Authorization": f"Bearer {id_token}"})


def test_make_dev_runs_the_firebase_cli_auth_emulator_and_points_the_api_at_it(dev):
    auth_pid, gateway_pid = dev.state["pids"]["auth"], dev.state["pids"]["gateway"]
    command = Path(f"/proc/{auth_pid}/cmdline").read_bytes().split(b"\0")
    assert command[1:5] == [str(auth_emulator.CLI).encode(), b"emulators:start", b"--only", b"auth"]
    assert dev.auth.get("/").json()["authEmulator"]["ready"] is True
    environ = Path(f"/proc/{gateway_pid}/environ").read_bytes().split(b"\0")
    assert f"FIREBASE_AUTH_EMULATOR_HOST={dev.state['auth']}".encode() in environ
    config = json.loads((dev.state_dir / "firebase" / "firebase.json").read_text())
    assert config["emulators"]["auth"] == {
        "host": "127.0.0.1", "port": int(dev.state["auth"].rsplit(":", 1)[1]),
    }  # fmt: skip


def test_a_user_with_role_and_org_claims_reads_its_org_and_no_other(dev):
    user, password = sign_up(dev)
    set_claims(dev, user["localId"], {"role": "dispensary_admin", "orgId": ORG})
    signed_in = sign_in(dev, user, password)
    header, claims = decode(signed_in["idToken"])
    assert header == {"alg": "none", "typ": "JWT"}
    assert signed_in["idToken"].endswith(".")  # no signature
    assert (claims["iss"], claims["aud"]) == (f"https://securetoken.google.com/{PROJECT}", PROJECT)
    assert (claims["sub"], claims["role"], claims["orgId"]) == (
        user["localId"], "dispensary_admin", ORG,
    )  # fmt: skip

    own = playbooks(dev, signed_in["idToken"])
    assert own.status_code == 200, own.text
    assert len(own.json()["playbooks"]) > 0  # the demo org's seeded playbooks
    other = playbooks(dev, signed_in["idToken"], org="org_someone_else")
    assert other.status_code == 403, other.text
    assert "does not belong to that organization" in other.json()["detail"]


def test_a_refreshed_token_carries_the_claims_as_get_id_token_true_does(dev):
    user, _ = sign_up(dev)
    set_claims(dev, user["localId"], {"role": "dispensary_staff", "orgId": ORG})
    assert playbooks(dev, user["idToken"]).status_code == 403  # minted before the claims
    refreshed = dev.auth.post(
        "/securetoken.googleapis.com/v1/token", params={"key": API_KEY},
        data={"grant_type": "refresh_token", "refresh_token": user["refreshToken"]},
    )  # fmt: skip
    assert refreshed.status_code == 200, refreshed.text
    assert playbooks(dev, refreshed.json()["id_token"]).status_code == 200


def test_a_user_without_claims_is_forbidden(dev):
    user, password = sign_up(dev)
    token = sign_in(dev, user, password)["idToken"]
    assert "role" not in decode(token)[1]
    response = playbooks(dev, token)
    assert response.status_code == 403, response.text
    assert response.headers["content-type"].startswith("application/problem+json")


def test_a_tampered_emulator_token_is_refused(dev):
    user, password = sign_up(dev)
    set_claims(dev, user["localId"], {"role": "dispensary_admin", "orgId": ORG})
    header, payload, _ = sign_in(dev, user, password)["idToken"].split(".")
    assert playbooks(dev, f"{header}.{payload}.c2ln").status_code == 401  # a signature added
    claims = {**decode(f"{header}.{payload}")[1], "aud": "demo-other"}
    other = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    assert playbooks(dev, f"{header}.{other}.").status_code == 401  # another project's token


def test_no_password_or_token_reaches_a_file_of_the_stack_and_dev_stops_everything(dev):
    user, password = sign_up(dev)
    set_claims(dev, user["localId"], {"role": "dispensary_admin", "orgId": ORG})
    signed_in = sign_in(dev, user, password)
    assert playbooks(dev, signed_in["idToken"]).status_code == 200
    secrets = {
        "password": password, "ID token": signed_in["idToken"],
        "refresh token": signed_in["refreshToken"],
    }  # fmt: skip

    assert dev.stop() == 0, dev.output()[-3000:]
    assert not [pid for pid in dev.state["pids"].values() if processes.alive(pid)]
    assert not (dev.state_dir / "firebase" / "hub-demo-playbooks.json").exists()
    files = [path for path in dev.state_dir.rglob("*") if path.is_file()]
    assert dev.state_dir / "logs" / "auth.log" in files
    leaks = [
        f"{name} in {path.relative_to(dev.state_dir)}"
        for path in files
        for name, value in secrets.items()
        if value.encode() in path.read_bytes()
    ]
    assert not leaks
