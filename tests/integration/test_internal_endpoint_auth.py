"""Internal entry points accept only their callers' OIDC tokens (defense in depth on top of IAM).

`execute_step` (Cloud Tasks), `cron_playbooks` (Cloud Scheduler, and Cloud Tasks for calendar
sweeps) and the Pub/Sub push targets `on_event_published`/`on_order_event`/`on_event_dead_lettered`
each verify the bearer token: for the function's own URL, issued by accounts.google.com, valid
now, naming one of its callers' service accounts. A refused call answers 401/403 and changes nothing.

Locally the tokens are the emulators' unsigned ones (PLAYBOOKS_LOCAL_OIDC); the deployed verifier
is google-auth's, exercised here with our own RSA key behind a local certificate URL. The last
part goes through the real callers: our Cloud Tasks and Cloud Scheduler emulators, the in-process
bus, and the official Pub/Sub emulator with the stack's push relay.
"""

import base64
import functools
import json
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import functions_framework
import pytest
from google.auth import crypt
from google.auth import jwt as google_jwt
from werkzeug.serving import make_server

from emulators import pubsub_push
from emulators.cloud_scheduler import start_scheduler_emulator
from emulators.cloud_tasks import start_tasks_emulator
from emulators.gateway import create_gateway
from emulators.google_keys import CertsServer, load_signer, write_key
from playbook_core.adapters.cloud_tasks import CloudTasksQueue
from playbook_core.adapters.embedded import EmbeddedStore
from playbook_core.adapters.inprocess import InProcessBus, InProcessTaskQueue
from playbook_core.adapters.pubsub import PubsubBus
from playbook_core.adapters.scheduler import SchedulerJobs
from playbook_core.adapters.service_tokens import (
    GoogleServiceTokens,
    LocalServiceTokens,
    OidcToken,
    function_audience,
    mint_unsigned,
)
from playbook_core.config import GOOGLE_OIDC_CERTS_URL, ConfigError, Settings, load_settings
from playbook_core.domain.attribution import attribution_id
from playbook_core.domain.collections import (
    ATTRIBUTIONS,
    EVENT_LOG,
    EXECUTIONS,
    ORGANIZATIONS,
    SETTINGS,
)
from playbook_core.domain.envelope import Customer, EventEnvelope, Source
from playbook_core.domain.errors import Forbidden, Unauthenticated, Unavailable
from playbook_core.domain.loading import load_text
from playbook_core.ports import QueueConfig, TaskRequest
from playbook_core.runtime import bootstrap
from playbook_core.service.authoring import playbooks
from playbook_core.service.authoring.playbooks import Authoring
from playbook_core.testing import FrozenClock, RecordingServer, eventually
from tests.conftest import assert_serves_until_sigterm

MAIN = str(Path(__file__).parents[2] / "functions" / "main.py")
ORG = "org_a"
CREATED = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)  # 05:00 in New York
DUE = datetime(2026, 11, 24, 12, 0, 30, tzinfo=UTC)  # just after the daily 07:00 slot
TASK_HEADERS = {
    "X-CloudTasks-QueueName": "playbook-steps",
    "X-CloudTasks-TaskName": "t0123",
    "X-CloudTasks-TaskRetryCount": "0",
    "X-CloudTasks-TaskExecutionCount": "0",
    "X-CloudTasks-TaskETA": "1795000000",
}
DAILY = """\
name: Scheduled
agent: craig
triggers:
  - {id: morning, type: schedule, frequency: daily}
steps:
  - {id: hello, action: notify, params: {channel: dashboard, to: "role:admin", message: Hi}}
"""


@pytest.fixture(scope="module")
def sink():
    """Where the tick's step tasks land: answers 200, so nothing is retried."""
    server = RecordingServer().start()
    yield server
    server.stop()


def build_app(base_url, **settings):
    """The embedded app as bootstrap builds it: its own step tasks carry the tasks identity."""
    chosen = {"backend": "embedded", "local_oidc": True, "functions_base_url": base_url, **settings}
    config = Settings(**chosen)
    store = EmbeddedStore(":memory:")
    store.set(ORGANIZATIONS, ORG, {"orgId": ORG})  # a registered org: dispatch runs its events
    queue = InProcessTaskQueue(
        service_account_email=config.invoker("cloud_tasks"), audience_base=base_url
    )
    queue.create_queue(QueueConfig("playbook-steps"))
    app = bootstrap.App(config, store, InProcessBus(), queue, FrozenClock(CREATED))
    bootstrap.use(app)
    return app


def close(app):
    bootstrap.use(None)
    app.bus.close()
    app.queue.close()
    app.store.close()


@pytest.fixture
def app(sink):
    installed = build_app(sink.url)
    yield installed
    close(installed)


# --- what each entry point does when it accepts the call ------------------------------------


def create_due_playbook(app):
    playbooks.create_playbook(
        org_id=ORG, validated=load_text(DAILY.encode()), actor="uid_1", source={"kind": "user"},
        reason="create", authoring=Authoring(store=app.store, clock=app.clock, ids=app.ids), status="active",
    )  # fmt: skip
    app.clock.current = DUE


def pubsub_push_body(envelope):
    message = {
        "data": base64.b64encode(envelope.encode()).decode(),
        "attributes": envelope.attributes(),
        "messageId": "42",
        "publishTime": "2026-11-24T00:00:00Z",
    }
    return {"message": message, "subscription": "projects/demo-playbooks/subscriptions/s"}


def event(name, event_id, **data):
    return EventEnvelope(
        event_id=event_id, org_id=ORG, name=name, occurred_at=CREATED, received_at=CREATED,
        source=Source(kind="shopify", ref="shop.example.com"),
        customer=Customer(email="ann@example.com"), data=data,
    )  # fmt: skip


ORDER = event(
    "order.created", "ord_1", orderId="1001", orderSource="shopify",
    orderAt=CREATED.isoformat(), total="80.00", totalMinor=8000, currency="USD",
)  # fmt: skip


@dataclass(frozen=True)
class EntryPoint:
    name: str
    signature: str
    callers: tuple[str, ...]  # accepted identities (Settings.invoker keys)
    path: str = "/"

    def prepare(self, app):
        if self.name == "execute_step":  # a step task whose org is forged: the run fails
            app.store.create(EXECUTIONS, "ev_1", {"id": "ev_1", "orgId": ORG, "status": "queued"})
        elif self.name == "cron_playbooks":
            create_due_playbook(app)
        elif self.name == "on_order_event":
            app.store.set(SETTINGS, ORG, {"orgId": ORG, "timezone": "UTC"})

    def call(self, headers):
        client = functions_framework.create_app(self.name, MAIN, self.signature).test_client()
        if self.name == "execute_step":
            body = {"executionId": "ev_1", "stepIndex": 0, "attempt": 1, "orgId": "org_b"}
            return client.post(self.path, json=body, headers={**TASK_HEADERS, **headers})
        if self.name == "cron_playbooks":
            return client.post(self.path, json={}, headers=headers)
        envelope = ORDER if self.name == "on_order_event" else event("order.created", "shp_1")
        return client.post(self.path, json=pubsub_push_body(envelope), headers=headers)

    def changed(self, app):
        """Whether the call did its work (a refused one must leave everything as it was)."""
        if self.name == "execute_step":
            return app.store.get(EXECUTIONS, "ev_1")["status"] != "queued"
        if self.name == "cron_playbooks":
            started = app.store.query(EXECUTIONS).docs
            return bool(started) or bool(app.queue.enqueued)
        if self.name in ("on_event_published", "on_event_dead_lettered"):
            return bool(app.store.query(EVENT_LOG).docs)
        return app.store.get(ATTRIBUTIONS, attribution_id(ORG, "shopify", "1001")) is not None


ENTRY_POINTS = [
    EntryPoint("execute_step", "http", ("cloud_tasks",)),
    EntryPoint("cron_playbooks", "http", ("cloud_scheduler", "cloud_tasks"), "/tick"),
    EntryPoint("on_event_published", "cloudevent", ("pubsub_push",)),
    EntryPoint("on_order_event", "cloudevent", ("pubsub_push",)),
    EntryPoint("on_event_dead_lettered", "cloudevent", ("pubsub_push",)),
]
BY_NAME = {entry.name: entry for entry in ENTRY_POINTS}


# --- tokens -----------------------------------------------------------------------------------


def b64(value):
    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


def unsigned(claims, alg="none", signature=""):
    return f"{b64({'alg': alg, 'typ': 'JWT'})}.{b64(claims)}.{signature}"


def claims_for(app, function, caller, **changes):
    """What Google puts in the caller's token, with `changes` (None drops a claim)."""
    now, email = int(time.time()), app.settings.invoker(caller)
    claims = {
        "iss": "https://accounts.google.com", "aud": app.settings.function_url(function),
        "azp": email, "sub": email, "email": email, "email_verified": True,
        "iat": now, "nbf": now, "exp": now + 3600,
    }  # fmt: skip
    claims.update(changes)
    return {key: value for key, value in claims.items() if value is not None}


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def the_right_token(app, entry, caller=None):
    """Minted exactly as the emulators and the in-process bus and queue mint it."""
    identity = OidcToken(
        app.settings.invoker(caller or entry.callers[0]), app.settings.function_url(entry.name)
    )
    return {"Authorization": identity.authorization("http://ignored/", time.time())}


def wrong_caller(entry):
    return "pubsub_push" if "pubsub_push" not in entry.callers else "cloud_tasks"


def now(offset=0):
    return int(time.time()) + offset


REFUSALS = {  # case → the status it gets
    "no Authorization header": 401,
    "not a bearer token": 401,
    "garbage": 401,
    "three garbage parts": 401,
    "another function's audience": 401,
    "the task URL as audience": 401,
    "another issuer": 401,
    "expired": 401,
    "nbf in the future": 401,
    "issued in the future": 401,
    "no exp": 401,
    "no iat": 401,
    "a signature the local verifier cannot check": 401,
    "another caller's service account": 403,
    "an unknown service account": 403,
    "an unverified email": 403,
    "no email": 403,
}


def refused_headers(app, entry, case):
    url = app.settings.function_url(entry.name)

    def token(caller=entry.callers[0], alg="none", signature="", **changes):
        return bearer(unsigned(claims_for(app, entry.name, caller, **changes), alg, signature))

    cases = {
        "no Authorization header": dict,
        "not a bearer token": lambda: {"Authorization": "Basic dXNlcjpwYXNz"},
        "garbage": lambda: bearer("not-a-jwt"),
        "three garbage parts": lambda: bearer("a.b.c"),
        "another function's audience": lambda: token(aud=app.settings.function_url("x")),
        "the task URL as audience": lambda: token(aud=url + "/"),
        "another issuer": lambda: token(iss="https://securetoken.google.com/demo-playbooks"),
        "expired": lambda: token(iat=now(-7200), nbf=now(-7200), exp=now(-3600)),
        "nbf in the future": lambda: token(nbf=now(600)),
        "issued in the future": lambda: token(iat=now(600)),
        "no exp": lambda: token(exp=None),
        "no iat": lambda: token(iat=None),
        "a signature the local verifier cannot check": lambda: token(alg="RS256", signature="c2ln"),
        "another caller's service account": lambda: token(caller=wrong_caller(entry)),
        "an unknown service account": lambda: token(email="x@evil.example"),
        "an unverified email": lambda: token(email_verified=False),
        "no email": lambda: token(email=None),
    }
    return cases[case]()


# --- every entry point, locally (unsigned emulator tokens) ------------------------------------


@pytest.mark.parametrize("entry", ENTRY_POINTS, ids=lambda e: e.name)
@pytest.mark.parametrize("refusal", list(REFUSALS))
def test_a_refused_call_answers_401_or_403_and_changes_nothing(app, entry, refusal):
    entry.prepare(app)

    response = entry.call(refused_headers(app, entry, refusal))

    assert response.status_code == REFUSALS[refusal], response.data
    assert response.mimetype == "application/problem+json"
    assert not entry.changed(app)


@pytest.mark.parametrize(
    ("entry", "caller"),
    [(entry, caller) for entry in ENTRY_POINTS for caller in entry.callers],
    ids=lambda value: getattr(value, "name", value),
)
def test_the_callers_token_is_accepted_and_the_call_does_its_work(app, entry, caller):
    entry.prepare(app)

    response = entry.call(the_right_token(app, entry, caller))

    assert response.status_code == 200, response.data
    assert entry.changed(app)


def test_the_token_is_checked_before_the_body_is_read(app):
    # Accepted, a malformed step task is acknowledged (200, bad-request); unauthenticated, it
    # never gets that far.
    client = functions_framework.create_app("execute_step", MAIN, "http").test_client()
    refused = client.post("/", data=b"{not json", headers=TASK_HEADERS)
    accepted = client.post(
        "/",
        data=b"{not json",
        headers={**TASK_HEADERS, **the_right_token(app, BY_NAME["execute_step"])},
    )
    assert refused.status_code == 401
    assert (accepted.status_code, accepted.get_json()["error"]) == (200, "bad-request")


# --- the deployed verifier: google-auth against (our own) Google-style certificates -----------


class Certs:
    """Google-style certificates (`emulators.google_keys`) for a key of this module's own."""

    def __init__(self, folder):
        key = self.key_file = write_key(folder / "google.pem")
        self.signer = load_signer(key)
        self._server = CertsServer(key.read_bytes()).start()
        self.url = self._server.oidc_certs_url
        self.other_key = write_key(folder / "other.pem")

    @property
    def fetches(self):
        return self._server.fetches

    def sign(self, claims, key_file=None, kid="ours"):
        """Signed by our key, or by another key (`key_file`) under our key's id or `kid`."""
        signer = self.signer
        if key_file is not None:
            named = self.signer.key_id if kid == "ours" else kid
            signer = crypt.RSASigner.from_string(key_file.read_bytes(), key_id=named)
        return google_jwt.encode(signer, claims).decode()

    def stop(self):
        self._server.stop()


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    served = Certs(tmp_path_factory.mktemp("keys"))
    yield served
    served.stop()


def test_deployed_settings_choose_google_auth_and_refuse_the_emulator_flag(monkeypatch):
    # Off the platform too, unsigned tokens need the explicit flag (fail closed).
    assert isinstance(bootstrap._service_token_verifier(Settings()), GoogleServiceTokens)
    local = bootstrap._service_token_verifier(Settings(local_oidc=True))
    assert isinstance(local, LocalServiceTokens)
    monkeypatch.setenv("K_SERVICE", "execute_step")
    verifier = bootstrap._service_token_verifier(load_settings())
    assert isinstance(verifier, GoogleServiceTokens)
    assert verifier._certs_url == GOOGLE_OIDC_CERTS_URL
    monkeypatch.setenv("PLAYBOOKS_LOCAL_OIDC", "1")
    with pytest.raises(ConfigError, match="PLAYBOOKS_LOCAL_OIDC"):
        load_settings()


def test_deployed_settings_name_terraforms_caller_accounts(monkeypatch):
    monkeypatch.setenv("K_SERVICE", "cron_playbooks")
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "prod-1")
    monkeypatch.setenv(
        "PLAYBOOKS_FUNCTIONS_BASE_URL", "https://us-central1-prod-1.cloudfunctions.net"
    )
    monkeypatch.setenv("PLAYBOOKS_SCHEDULER_INVOKER", "cron@prod-1.iam.gserviceaccount.com")
    settings = load_settings()
    assert settings.invoker("cloud_scheduler") == "cron@prod-1.iam.gserviceaccount.com"
    assert settings.invoker("cloud_tasks") == "pb-cloud-tasks@prod-1.iam.gserviceaccount.com"
    assert settings.function_url("cron_playbooks") == (
        "https://us-central1-prod-1.cloudfunctions.net/cron_playbooks"
    )


AUDIENCE = "https://us-central1-prod-1.cloudfunctions.net/execute_step"
CALLER = "pb-cloud-tasks@prod-1.iam.gserviceaccount.com"


def google_claims(**changes):
    now = int(time.time())
    claims = {
        "iss": "https://accounts.google.com", "aud": AUDIENCE, "azp": CALLER, "sub": "1234",
        "email": CALLER, "email_verified": True, "iat": now, "exp": now + 3600,
    }  # fmt: skip
    claims.update(changes)
    return claims


def test_google_auth_accepts_a_signed_token_of_the_caller_and_caches_the_keys(certs):
    verifier = GoogleServiceTokens(certs.url)
    before = certs.fetches
    for _ in range(3):
        claims = verifier.verify(certs.sign(google_claims()), audience=AUDIENCE, callers={CALLER})
        assert claims["email"] == CALLER
    assert certs.fetches - before == 1


@pytest.mark.parametrize(
    ("token", "refused"),
    [
        (lambda _certs: mint_unsigned(CALLER, AUDIENCE, time.time()), Unauthenticated),
        (lambda c: c.sign(google_claims(), c.key_file, kid=None), Unauthenticated),
        (lambda c: c.sign(google_claims(), c.other_key), Unauthenticated),
        (lambda c: c.sign(google_claims(aud=AUDIENCE + "x")), Unauthenticated),
        (lambda c: c.sign(google_claims(iss="https://evil.example")), Unauthenticated),
        (lambda c: c.sign(google_claims(iat=now(-7200), exp=now(-3600))), Unauthenticated),
        (lambda c: c.sign(google_claims(email="x@evil.example")), Forbidden),
        (lambda c: c.sign(google_claims(email_verified=False)), Forbidden),
        (lambda _certs: "garbage", Unauthenticated),
    ],
    ids=[
        "unsigned", "no kid", "another key", "audience", "issuer", "expired", "email", "unverified",
        "garbage",
    ],
)  # fmt: skip
def test_google_auth_refuses(certs, token, refused):
    with pytest.raises(refused):
        GoogleServiceTokens(certs.url).verify(token(certs), audience=AUDIENCE, callers={CALLER})


def test_a_new_google_key_is_fetched_for_at_most_every_30_s(tmp_path):
    """Keys published just before their first use are accepted within 30 s, not after the
    5-minute cache; made-up key ids cannot make an instance fetch more often than that."""
    server = CertsServer(write_key(tmp_path / "current.pem").read_bytes()).start()
    clock = [1000.0]
    try:
        verifier = GoogleServiceTokens(server.oidc_certs_url, clock=lambda: clock[0])
        current = load_signer(tmp_path / "current.pem")
        verify = functools.partial(verifier.verify, audience=AUDIENCE, callers={CALLER})
        assert verify(google_jwt.encode(current, google_claims()).decode())["email"] == CALLER
        server.publish(write_key(tmp_path / "next.pem").read_bytes())
        rotated = google_jwt.encode(load_signer(tmp_path / "next.pem"), google_claims()).decode()
        made_up = google_jwt.encode(
            crypt.RSASigner.from_string((tmp_path / "next.pem").read_bytes(), key_id="made-up"),
            google_claims(),
        ).decode()  # fmt: skip
        fetched = server.fetches

        with pytest.raises(Unauthenticated):  # the keys were fetched a moment ago
            verify(rotated)
        assert server.fetches == fetched
        clock[0] += 31
        assert verify(rotated)["email"] == CALLER
        assert server.fetches == fetched + 1
        for _ in range(5):
            with pytest.raises(Unauthenticated):
                verify(made_up)
        clock[0] += 31
        for _ in range(5):
            with pytest.raises(Unauthenticated):
                verify(made_up)
        assert server.fetches == fetched + 2  # one per 30 s, however many tokens
        assert verify(google_jwt.encode(current, google_claims()).decode())["email"] == CALLER
    finally:
        server.stop()


def test_a_failed_fetch_for_an_unknown_key_keeps_the_keys_we_had(tmp_path):
    """A made-up key id while Google's key endpoint is down must not turn every call into a 503."""
    server = CertsServer(write_key(tmp_path / "current.pem").read_bytes()).start()
    clock = [1000.0]
    verifier = GoogleServiceTokens(server.oidc_certs_url, clock=lambda: clock[0])
    verify = functools.partial(verifier.verify, audience=AUDIENCE, callers={CALLER})
    current = google_jwt.encode(load_signer(tmp_path / "current.pem"), google_claims()).decode()
    made_up = google_jwt.encode(
        crypt.RSASigner.from_string((tmp_path / "current.pem").read_bytes(), key_id="made-up"),
        google_claims(),
    ).decode()  # fmt: skip
    assert verify(current)["email"] == CALLER
    server.stop()  # Google's endpoint is unreachable from now on
    clock[0] += 31

    with pytest.raises(Unauthenticated):  # the fetch it asks for fails; the kept keys lack it
        verify(made_up)
    assert verify(current)["email"] == CALLER  # the kept keys still serve
    clock[0] += 300  # past what the kept keys were good for
    with pytest.raises(Unavailable):
        verify(current)


def test_unreachable_google_keys_are_a_503_not_a_verdict_on_the_caller(certs):
    with pytest.raises(Unavailable):
        GoogleServiceTokens("http://127.0.0.1:9/certs").verify(
            certs.sign(google_claims()), audience=AUDIENCE, callers={CALLER}
        )


def test_execute_step_in_deployed_mode_accepts_only_google_signed_tokens(certs):
    installed = build_app("https://us-central1-prod-1.cloudfunctions.net", project="prod-1")
    try:
        installed.caller_tokens = GoogleServiceTokens(certs.url)  # what deployed mode builds
        entry = BY_NAME["execute_step"]
        entry.prepare(installed)
        assert entry.call(the_right_token(installed, entry)).status_code == 401
        assert not entry.changed(installed)
        signed = certs.sign(google_claims(email=installed.settings.invoker("cloud_tasks")))
        assert entry.call(bearer(signed)).status_code == 200
        assert entry.changed(installed)
    finally:
        close(installed)


# --- through the real callers -----------------------------------------------------------------


@pytest.fixture(scope="module")
def gateway():
    """Every function behind the local gateway, over HTTP, as the stack serves them."""
    server = make_server("127.0.0.1", 0, create_gateway(), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.port}"
    server.shutdown()
    thread.join()


@pytest.fixture
def served(gateway):
    installed = build_app(gateway)
    yield installed
    close(installed)


PROJECT, REGION = "demo-playbooks", "us-central1"


@pytest.fixture(scope="module")
def our_emulators():
    tasks, scheduler = start_tasks_emulator(), start_scheduler_emulator()
    yield {"tasks": tasks.address, "scheduler": scheduler.address}
    tasks.stop()
    scheduler.stop()


def test_function_audience_is_the_function_url_under_the_base():
    base = "https://us-central1-p.cloudfunctions.net"
    assert function_audience(f"{base}/execute_step/", base) == f"{base}/execute_step"
    assert function_audience(f"{base}/cron_playbooks/sweep", base + "/") == f"{base}/cron_playbooks"
    assert function_audience("https://elsewhere.example/x", base) is None
    assert function_audience(f"{base}/", base) is None
    assert function_audience(f"{base}/execute_step/", None) is None


def test_cloud_tasks_emulator_tokens_reach_execute_step(served, our_emulators, gateway):
    entry = BY_NAME["execute_step"]
    entry.prepare(served)
    queue = CloudTasksQueue(
        PROJECT, REGION, our_emulators["tasks"], served.settings.invoker("cloud_tasks"),
        audience_base=gateway,
    )  # fmt: skip
    name = f"steps-{time.time_ns()}"
    queue.ensure_queue(QueueConfig(name, max_attempts=1))
    body = {"executionId": "ev_1", "stepIndex": 0, "attempt": 1, "orgId": "org_b"}
    queue.enqueue(TaskRequest(name, "t1", f"{gateway}/execute_step/", body))
    eventually(lambda: entry.changed(served))
    assert served.store.get(EXECUTIONS, "ev_1")["statusReason"] == "tenant_mismatch"


def test_a_task_without_oidc_token_is_refused_by_execute_step(served, our_emulators, gateway):
    entry = BY_NAME["execute_step"]
    entry.prepare(served)
    queue = CloudTasksQueue(PROJECT, REGION, our_emulators["tasks"])  # no service account
    name = f"steps-{time.time_ns()}"
    queue.ensure_queue(QueueConfig(name, max_attempts=1))
    body = {"executionId": "ev_1", "stepIndex": 0, "attempt": 1, "orgId": "org_b"}
    queue.enqueue(TaskRequest(name, "t1", f"{gateway}/execute_step/", body))
    task = queue.client().get_task  # the emulator records the attempt's answer on the task
    path = f"{queue.queue_path(name)}/tasks/t1"

    def answered():
        try:
            return task(name=path).last_attempt.response_status.message
        except Exception:  # noqa: BLE001 - gone: the single attempt ended
            return "gone"

    eventually(lambda: answered() in {"HTTP 401", "gone"})
    assert not entry.changed(served)


def test_cloud_scheduler_emulator_tokens_reach_cron_playbooks(served, our_emulators, gateway):
    entry = BY_NAME["cron_playbooks"]
    entry.prepare(served)
    jobs = SchedulerJobs(
        PROJECT, REGION, our_emulators["scheduler"], served.settings.invoker("cloud_scheduler")
    )
    job = f"tick-{time.time_ns()}"
    jobs.ensure_http_job(
        job, "0 0 1 1 *", "UTC", f"{gateway}/cron_playbooks/tick", body=b"{}",
        headers={"Content-Type": "application/json"}, audience=f"{gateway}/cron_playbooks",
    )  # fmt: skip
    jobs.run(job)
    eventually(lambda: entry.changed(served))
    assert served.store.query(EXECUTIONS).docs


def test_a_scheduler_token_for_the_job_url_is_refused(served, our_emulators, gateway):
    # Cloud Scheduler's default audience is the job URL (`…/cron_playbooks/tick`): not ours.
    entry = BY_NAME["cron_playbooks"]
    entry.prepare(served)
    jobs = SchedulerJobs(
        PROJECT, REGION, our_emulators["scheduler"], served.settings.invoker("cloud_scheduler")
    )
    job = f"tick-{time.time_ns()}"
    jobs.ensure_http_job(job, "0 0 1 1 *", "UTC", f"{gateway}/cron_playbooks/tick", body=b"{}")
    jobs.run(job)
    status = jobs.client().get_job
    eventually(lambda: status(name=jobs.job_path(job)).status.message == "HTTP 401")
    assert not entry.changed(served)


def test_in_process_bus_push_tokens_reach_on_event_published(served, gateway):
    entry = BY_NAME["on_event_published"]
    url = f"{gateway}/on_event_published/"
    oidc = OidcToken(
        served.settings.invoker("pubsub_push"), served.settings.function_url(entry.name)
    )
    served.bus.subscribe("playbook-events", url, oidc=oidc)
    envelope = event("order.created", "shp_9")
    served.bus.publish("playbook-events", envelope.encode(), envelope.attributes())
    served.bus.drain()
    [logged] = served.store.query(EVENT_LOG).docs
    assert logged.data["outcome"] == "no_listeners"


def test_in_process_queue_tokens_reach_execute_step(gateway):
    installed = build_app(gateway)
    queue = InProcessTaskQueue(
        service_account_email=installed.settings.invoker("cloud_tasks"), audience_base=gateway
    )
    try:
        queue.create_queue(QueueConfig("playbook-steps", max_attempts=1))
        entry = BY_NAME["execute_step"]
        entry.prepare(installed)
        body = {"executionId": "ev_1", "stepIndex": 0, "attempt": 1, "orgId": "org_b"}
        queue.enqueue(TaskRequest("playbook-steps", "t1", f"{gateway}/execute_step/", body))
        queue.drain()
        assert entry.changed(installed)
    finally:
        queue.close()
        close(installed)


@pytest.mark.emulator
def test_the_pubsub_emulator_sends_no_token_so_the_stack_relays_it(emulator_env):
    """The official emulator ignores push_config.oidc_token; the relay attaches the token."""
    recorder = RecordingServer().start()
    relay = pubsub_push.PushRelay(emulator_env["pubsub"].host).start()
    bus = PubsubBus(PROJECT)
    try:
        unique = time.time_ns()
        topic = f"auth-{unique}"
        oidc = OidcToken("pb-pubsub-push@demo-playbooks.iam.gserviceaccount.com", "https://aud/fn")
        direct, relayed = f"{recorder.url}/direct/", f"{recorder.url}/relayed/"
        bus.ensure_push_subscription(topic, f"direct-{unique}", direct, oidc=oidc)
        bus.ensure_push_subscription(
            topic, f"relayed-{unique}", pubsub_push.relay_url(relay.url, relayed), oidc=oidc
        )
        bus.publish(topic, b'{"n": 1}', {"orgId": ORG})
        requests = eventually(lambda: recorder.requests if len(recorder.requests) >= 2 else None)
        by_path = {request.path: request for request in requests}
        assert "Authorization" not in by_path["/direct/"].headers
        token = by_path["/relayed/"].headers["Authorization"].removeprefix("Bearer ")
        claims = LocalServiceTokens().verify(
            token, audience="https://aud/fn", callers={oidc.service_account_email}
        )
        assert claims["iss"] == "https://accounts.google.com"
        assert json.loads(by_path["/relayed/"].body) == json.loads(by_path["/direct/"].body) | {
            "subscription": f"projects/{PROJECT}/subscriptions/relayed-{unique}"
        }
    finally:
        bus.close()
        relay.stop()
        recorder.stop()


@pytest.mark.emulator
def test_a_refused_push_is_not_acked_and_the_relay_passes_the_status_back(emulator_env):
    recorder = RecordingServer(status=401).start()
    relay = pubsub_push.PushRelay(emulator_env["pubsub"].host).start()
    bus = PubsubBus(PROJECT)
    try:
        unique = time.time_ns()
        oidc = OidcToken("pb-pubsub-push@demo-playbooks.iam.gserviceaccount.com")
        endpoint = pubsub_push.relay_url(relay.url, f"{recorder.url}/fn/")
        bus.ensure_push_subscription(f"nack-{unique}", f"nack-{unique}", endpoint, oidc=oidc)
        bus.publish(f"nack-{unique}", b"{}", {"orgId": ORG})
        # Not acknowledged: the emulator pushes the same message again.
        again = eventually(lambda: recorder.requests[1:], timeout=30)[0]
        assert json.loads(again.body)["message"] == json.loads(recorder.requests[0].body)["message"]
    finally:
        bus.close()
        relay.stop()
        recorder.stop()


def test_the_tasks_emulator_started_with_a_signing_key_attaches_tokens_google_auth_accepts(
    certs, recorder, tmp_path
):
    key = tmp_path / "google.pem"
    key.write_bytes(certs.key_file.read_bytes())

    def use(address):
        queue = CloudTasksQueue(PROJECT, REGION, address, CALLER, audience_base=recorder.url)
        queue.ensure_queue(QueueConfig("signed", max_attempts=1))
        queue.enqueue(TaskRequest("signed", "t1", f"{recorder.url}/execute_step/", {"a": 1}))
        (request,) = eventually(lambda: recorder.requests)
        token = request.headers["Authorization"].removeprefix("Bearer ")
        audience = f"{recorder.url}/execute_step"
        claims = GoogleServiceTokens(certs.url).verify(token, audience=audience, callers={CALLER})
        assert claims["email"] == CALLER

    assert_serves_until_sigterm("emulators.cloud_tasks", "--signing-key", str(key), use=use)
