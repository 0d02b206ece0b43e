"""The in-repo Secret Manager emulator, driven only through the official google-cloud-secret-manager
client, and the SecretManagerSecrets adapter against it."""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import google_crc32c
import grpc
import pytest
from google.api_core import exceptions
from google.cloud import secretmanager
from google.cloud.secretmanager_v1.services.secret_manager_service.transports import (
    SecretManagerServiceGrpcTransport,
)

from emulators.secret_manager import MAX_PAYLOAD_BYTES, start_secret_manager_emulator
from playbook_core.adapters.secrets import CACHE_SECONDS, SecretManagerSecrets
from playbook_core.domain.errors import NotFound, Unavailable
from playbook_core.domain.secret_names import secret_name_of
from tests.conftest import assert_serves_until_sigterm

PROJECT = "demo-playbooks"
PARENT = f"projects/{PROJECT}"
State = secretmanager.SecretVersion.State
REPLICATED = {"replication": {"automatic": {}}}


def _client(address):
    channel = grpc.insecure_channel(address)
    transport = SecretManagerServiceGrpcTransport(channel=channel)
    return secretmanager.SecretManagerServiceClient(transport=transport)


@pytest.fixture(scope="module")
def emulator():
    running = start_secret_manager_emulator()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def client(emulator):
    secrets = _client(emulator.address)
    yield secrets
    secrets.transport.close()


def _new_secret(client, secret_id=None):
    return client.create_secret(
        parent=PARENT,
        secret_id=secret_id or f"s-{uuid.uuid4().hex[:12]}",
        secret=secretmanager.Secret(
            replication=secretmanager.Replication(automatic=secretmanager.Replication.Automatic())
        ),
    )


@pytest.fixture
def secret(client):
    return _new_secret(client)


def _add(client, secret, data, **payload):
    return client.add_secret_version(
        parent=secret.name, payload=secretmanager.SecretPayload(data=data, **payload)
    )


def _access(client, name):
    return client.access_secret_version(name=name)


# --- the emulator, through the official client ------------------------------------------------


def test_secret_lifecycle(client):
    secret_id = f"life-{uuid.uuid4().hex[:8]}"
    created = _new_secret(client, secret_id)
    assert created.name == f"{PARENT}/secrets/{secret_id}"
    assert created.create_time is not None
    assert created.etag.startswith('"')  # quoted, as Secret Manager's etags are
    assert created.etag.endswith('"')
    assert "automatic" in created.replication
    with pytest.raises(exceptions.AlreadyExists):
        _new_secret(client, secret_id)

    assert client.get_secret(name=created.name) == created
    assert created.name in [s.name for s in client.list_secrets(parent=PARENT)]

    client.delete_secret(name=created.name)
    with pytest.raises(exceptions.NotFound):
        client.get_secret(name=created.name)
    with pytest.raises(exceptions.NotFound):
        client.delete_secret(name=created.name)


def test_a_secret_needs_a_replication_policy(client):
    with pytest.raises(exceptions.InvalidArgument):
        client.create_secret(parent=PARENT, secret_id="no-replication", secret={})


def test_versions_are_numbered_per_secret_and_read_by_number_or_latest(client, secret):
    other = _new_secret(client)
    added = [_add(client, secret, f"value-{n}".encode()) for n in (1, 2, 3)]
    assert [v.name for v in added] == [f"{secret.name}/versions/{n}" for n in (1, 2, 3)]
    assert {v.state for v in added} == {State.ENABLED}
    assert not added[0].client_specified_payload_checksum
    assert _add(client, other, b"x").name == f"{other.name}/versions/1"  # numbering is per secret

    first = _access(client, f"{secret.name}/versions/1")
    assert first.name == f"{secret.name}/versions/1"
    assert first.payload.data == b"value-1"
    assert first.payload.data_crc32c == google_crc32c.value(
        b"value-1"
    )  # generated when the client sent none

    latest = _access(client, f"{secret.name}/versions/latest")
    assert latest.name == f"{secret.name}/versions/3"  # resolved, not echoed
    assert latest.payload.data == b"value-3"
    assert client.get_secret_version(name=f"{secret.name}/versions/latest") == added[2]


def test_missing_secrets_and_versions_are_not_found(client, secret):
    missing = f"{PARENT}/secrets/never-{uuid.uuid4().hex[:8]}"
    with pytest.raises(exceptions.NotFound):
        _add(client, secretmanager.Secret(name=missing), b"x")
    with pytest.raises(exceptions.NotFound):
        _access(client, f"{missing}/versions/1")
    with pytest.raises(exceptions.NotFound):
        _access(client, f"{secret.name}/versions/latest")  # no version yet
    _add(client, secret, b"x")
    for number in ("0", "2"):
        with pytest.raises(exceptions.NotFound):
            _access(client, f"{secret.name}/versions/{number}")
    with pytest.raises(exceptions.NotFound):
        client.list_secret_versions(parent=missing)


def test_versions_list_newest_first_in_pages(client, secret):
    for n in range(1, 6):
        _add(client, secret, str(n).encode())
    pager = client.list_secret_versions(request={"parent": secret.name, "page_size": 2})
    pages = list(pager.pages)
    assert [len(page.versions) for page in pages] == [2, 2, 1]
    assert [page.total_size for page in pages] == [5, 5, 5]
    names = [v.name for page in pages for v in page.versions]
    assert names == [f"{secret.name}/versions/{n}" for n in (5, 4, 3, 2, 1)]
    with pytest.raises(exceptions.MethodNotImplemented):  # not silently ignored
        list(
            client.list_secret_versions(request={"parent": secret.name, "filter": "state:ENABLED"})
        )


def test_a_disabled_version_is_refused_until_enabled(client, secret):
    _add(client, secret, b"old")
    newest = _add(client, secret, b"new")
    disabled = client.disable_secret_version(name=newest.name)
    assert disabled.state == State.DISABLED
    with pytest.raises(exceptions.FailedPrecondition, match="DISABLED"):
        _access(client, newest.name)
    # `latest` is the newest version whatever its state, as in Secret Manager: no fallback to 1.
    with pytest.raises(exceptions.FailedPrecondition):
        _access(client, f"{secret.name}/versions/latest")
    assert _access(client, f"{secret.name}/versions/1").payload.data == b"old"

    again = client.disable_secret_version(name=newest.name)  # a no-op that still moves the etag
    assert again.state == State.DISABLED
    assert again.etag != disabled.etag
    assert client.enable_secret_version(name=newest.name).state == State.ENABLED
    assert _access(client, f"{secret.name}/versions/latest").payload.data == b"new"


def test_a_destroyed_version_is_gone_for_good(client, secret):
    version = _add(client, secret, b"doomed")
    client.disable_secret_version(name=version.name)  # destroy works from DISABLED too
    destroyed = client.destroy_secret_version(name=version.name)
    assert destroyed.state == State.DESTROYED
    assert destroyed.destroy_time is not None
    with pytest.raises(exceptions.FailedPrecondition, match="DESTROYED"):
        _access(client, version.name)
    for leave in (client.enable_secret_version, client.disable_secret_version):
        with pytest.raises(exceptions.FailedPrecondition):
            leave(name=version.name)
    with pytest.raises(exceptions.FailedPrecondition):
        client.destroy_secret_version(name=version.name)
    listed = list(client.list_secret_versions(parent=secret.name))
    assert [(v.name, v.state) for v in listed] == [(version.name, State.DESTROYED)]


def test_a_stale_etag_is_refused(client, secret):
    version = _add(client, secret, b"x")
    changed = client.disable_secret_version(request={"name": version.name, "etag": version.etag})
    with pytest.raises(exceptions.FailedPrecondition):  # the etag before the change
        client.enable_secret_version(request={"name": version.name, "etag": version.etag})
    enabled = client.enable_secret_version(request={"name": version.name, "etag": changed.etag})
    assert enabled.state == State.ENABLED
    with pytest.raises(exceptions.FailedPrecondition):
        client.delete_secret(request={"name": secret.name, "etag": '"stale"'})
    client.delete_secret(request={"name": secret.name, "etag": secret.etag})
    with pytest.raises(exceptions.NotFound):
        client.get_secret(name=secret.name)


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.create_secret(parent=PARENT, secret_id="dot.ted", secret=REPLICATED),
        lambda c: c.create_secret(parent=PARENT, secret_id="x" * 256, secret=REPLICATED),
        lambda c: c.create_secret(parent=PARENT, secret_id="sl/ash", secret=REPLICATED),
        lambda c: c.create_secret(
            parent=f"{PARENT}/locations/us", secret_id="regional", secret=REPLICATED
        ),
        lambda c: c.get_secret(name=f"{PARENT}/secret/typo"),
        lambda c: c.delete_secret(name=f"{PARENT}/secrets/a/b"),
        lambda c: c.add_secret_version(parent=f"{PARENT}/secrets/bad!", payload={"data": b"x"}),
        lambda c: c.access_secret_version(name=f"{PARENT}/secrets/a/versions/first"),
        lambda c: c.access_secret_version(name=f"{PARENT}/secrets/a"),
        lambda c: c.get_secret_version(name=f"{PARENT}/secrets/a/versions/-1"),
        lambda c: c.disable_secret_version(name=f"{PARENT}/secrets/a/versions/"),
        lambda c: c.enable_secret_version(name="projects//secrets/a/versions/1"),
        lambda c: c.destroy_secret_version(name=f"{PARENT}/secrets/a b/versions/1"),
        lambda c: list(c.list_secret_versions(parent=f"{PARENT}/secrets/")),
        lambda c: list(c.list_secrets(parent="project/demo-playbooks")),
    ],
)
def test_malformed_names_are_invalid_arguments(client, call):
    with pytest.raises(exceptions.InvalidArgument):
        call(client)


def test_the_longest_secret_id_is_accepted(client):
    secret_id = "a" * 255
    assert _new_secret(client, secret_id).name == f"{PARENT}/secrets/{secret_id}"


def test_payload_checksum_must_match_and_is_never_echoed(client, secret):
    data = b"sensitive-payload-value"
    with pytest.raises(exceptions.InvalidArgument) as refused:
        _add(client, secret, data, data_crc32c=google_crc32c.value(data) ^ 1)
    assert "sensitive-payload-value" not in str(refused.value)
    assert list(client.list_secret_versions(parent=secret.name)) == []  # nothing stored

    checked = _add(client, secret, data, data_crc32c=google_crc32c.value(data))
    assert checked.client_specified_payload_checksum
    assert _access(client, checked.name).payload.data_crc32c == google_crc32c.value(data)


def test_payload_is_limited_to_64_kib(client, secret):
    assert _add(client, secret, b"a" * MAX_PAYLOAD_BYTES).name.endswith("/versions/1")
    with pytest.raises(exceptions.InvalidArgument):
        _add(client, secret, b"a" * (MAX_PAYLOAD_BYTES + 1))


def test_concurrent_adds_get_distinct_consecutive_numbers(client, secret):
    with ThreadPoolExecutor(max_workers=8) as pool:
        names = list(pool.map(lambda n: _add(client, secret, str(n).encode()).name, range(40)))
    assert sorted(int(name.rsplit("/", 1)[1]) for name in names) == list(range(1, 41))


def test_calls_not_emulated_are_unimplemented(client, secret):
    with pytest.raises(exceptions.MethodNotImplemented):
        client.update_secret(secret={"name": secret.name}, update_mask={"paths": ["labels"]})


def test_process_mode_prints_ready_then_serves_until_sigterm():
    def use(address):
        process_client = _client(address)
        secret = _new_secret(process_client)
        version = _add(process_client, secret, b"from-a-process")
        assert _access(process_client, version.name).payload.data == b"from-a-process"
        process_client.transport.close()

    assert_serves_until_sigterm("emulators.secret_manager", use=use)


# --- SecretManagerSecrets against the emulator ------------------------------------------------


class SteppedClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


@pytest.fixture
def name():
    return f"webhook-{uuid.uuid4().hex}"


@pytest.fixture
def vault(emulator):
    vault = SecretManagerSecrets(PROJECT, emulator.address)
    yield vault
    vault.client().transport.close()


@pytest.fixture
def fresh_vault(emulator):
    """A second instance: same server, empty cache."""
    vault = SecretManagerSecrets(PROJECT, emulator.address)
    yield vault
    vault.client().transport.close()


def test_put_then_get_round_trips_by_version_reference(vault, name):
    reference = vault.put(name, "s3cret-ünïcode")
    assert reference == f"{PARENT}/secrets/{name}/versions/1"
    assert secret_name_of(reference) == name  # a reference the domain accepts as this secret's
    assert vault.get(reference) == "s3cret-ünïcode"


def test_put_twice_adds_version_two_and_keeps_version_one(vault, client, name):
    first, second = vault.put(name, "one"), vault.put(name, "two")
    assert second == f"{PARENT}/secrets/{name}/versions/2"
    assert (vault.get(first), vault.get(second)) == ("one", "two")
    assert client.get_secret_version(name=first).state.name == "ENABLED"


def test_missing_references_are_not_found(vault, name):
    vault.put(name, "value")
    for reference in (
        f"{PARENT}/secrets/{name}/versions/9",
        f"{PARENT}/secrets/never-{uuid.uuid4().hex}/versions/1",
        f"{PARENT}/secrets/never-{uuid.uuid4().hex}/versions/latest",
    ):
        with pytest.raises(NotFound):
            vault.get(reference)


def test_a_disabled_or_destroyed_version_reads_as_not_found(vault, fresh_vault, client, name):
    disabled, destroyed = vault.put(name, "a"), vault.put(name, "b")
    client.disable_secret_version(name=disabled)
    client.destroy_secret_version(name=destroyed)
    for reference in (disabled, destroyed):
        with pytest.raises(NotFound):  # Secret Manager says FAILED_PRECONDITION: the value is gone
            fresh_vault.get(reference)


def test_values_are_cached_per_reference_for_five_minutes(emulator, client, name):
    clock = SteppedClock()
    vault = SecretManagerSecrets(PROJECT, emulator.address, monotonic=clock)
    reference = vault.put(name, "cached")
    assert vault.get(reference) == "cached"
    client.destroy_secret_version(name=reference)  # behind the adapter's back

    clock.now += CACHE_SECONDS - 1
    assert vault.get(reference) == "cached"  # no call to Secret Manager within the 5 minutes
    clock.now += 1
    with pytest.raises(NotFound):
        vault.get(reference)
    vault.client().transport.close()


def test_discard_destroys_the_version_and_drops_it_from_the_cache(vault, client, name):
    kept, discarded = vault.put(name, "kept"), vault.put(name, "discarded")
    assert vault.get(discarded) == "discarded"  # now cached
    vault.discard(discarded)
    assert client.get_secret_version(name=discarded).state == State.DESTROYED
    with pytest.raises(NotFound):
        vault.get(discarded)
    vault.discard(discarded)  # again: Secret Manager refuses a second destroy; discard shrugs
    vault.discard(f"{PARENT}/secrets/never-{uuid.uuid4().hex}/versions/1")
    assert vault.get(kept) == "kept"


def _chain(error):
    """Every exception in the cause/context chain, for checking what a log line could show."""
    seen = []
    while error is not None and error not in seen:
        seen.append(error)
        error = error.__cause__ or error.__context__
    return seen


def test_refused_or_unknown_references_never_show_the_value(vault, fresh_vault, client, name):
    value = f"do-not-leak-{uuid.uuid4().hex}"
    reference = vault.put(name, value)
    client.disable_secret_version(name=reference)
    failures = []
    for failing in (
        lambda: fresh_vault.get(reference),  # disabled
        lambda: fresh_vault.get(reference.replace("/versions/1", "/versions/2")),  # unknown
        lambda: fresh_vault.get(reference.replace("/versions/1", "/versions/one")),  # malformed
        lambda: vault.put("not/a-valid-id", value),  # refused on the way in
        lambda: vault.put(name, value + "x" * MAX_PAYLOAD_BYTES),  # refused: too large
    ):
        with pytest.raises((NotFound, Unavailable)) as raised:
            failing()
        failures.append(raised.value)
    shown = [text for f in failures for e in _chain(f) for text in (str(e), repr(e))]
    assert shown  # the check looked at something
    assert not [text for text in shown if value in text]


@pytest.mark.parametrize(
    "extra",
    [
        {"rotation": {"rotation_period": {"seconds": 86400}}},
        {"ttl": {"seconds": 3600}},
        {"version_aliases": {"current": 1}},
        {"topics": [{"name": "projects/demo-playbooks/topics/t"}]},
    ],
    ids=["rotation", "ttl", "alias", "topics"],
)
def test_settings_the_emulator_would_not_act_on_are_refused(client, extra):
    secret = {"replication": {"automatic": {}}, **extra}
    with pytest.raises(exceptions.MethodNotImplemented):
        client.create_secret(
            request={
                "parent": PARENT,
                "secret_id": f"unemulated-{uuid.uuid4().hex}",
                "secret": secret,
            }
        )


class _Stalling(grpc.GenericRpcHandler):
    """Takes every call and never answers; notes how long each caller said it would wait."""

    def __init__(self):
        self.deadlines = []

    def service(self, _call):
        def stall(request, context):
            self.deadlines.append(context.time_remaining())
            while context.is_active():  # until the caller gives up
                threading.Event().wait(0.05)
            return b""

        return grpc.unary_unary_rpc_method_handler(stall)


def test_a_stalled_secret_manager_is_unavailable_within_the_call_deadline():
    stalling = _Stalling()
    # Enough workers that a retry never queues behind a stall that has not yet noticed its caller left.
    server = grpc.server(ThreadPoolExecutor(max_workers=16), handlers=[stalling])
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    vault = SecretManagerSecrets(PROJECT, f"127.0.0.1:{port}", timeout_s=0.5)
    try:
        for call in (
            lambda: vault.get(f"{PARENT}/secrets/s/versions/1"),
            lambda: vault.put("s", "value"),
            lambda: vault.discard(f"{PARENT}/secrets/s/versions/1"),
        ):
            with pytest.raises(Unavailable):
                call()
    finally:
        vault.client().transport.close()
        server.stop(grace=None)
    # Each call told the server it would wait about half a second, not the client's 60 s default. The
    # wire format rounds the timeout up, and a retry picked up by a busy server may be past its
    # deadline already, so the check is a loose upper bound.
    assert len(stalling.deadlines) >= 3
    assert all(remaining is not None and remaining < 1 for remaining in stalling.deadlines), (
        stalling.deadlines
    )
