"""Secret Manager stand-in: Google ships no emulator, so we serve the real gRPC API, in memory.

Global secrets only (`projects/P/secrets/ID`); names keep the project as given, where the real
service answers with the project number. Not emulated (the call fails, never silently passes):
UpdateSecret, IAM, rotation, version aliases, regional secrets and list filters.
"""

from __future__ import annotations

import re
import secrets
import threading
from dataclasses import dataclass, field
from typing import NoReturn

import google_crc32c  # Secret Manager checks payloads with CRC-32C
import grpc  # type: ignore[import-untyped]  # grpcio ships no type information
from google.cloud import secretmanager_v1

from emulators import grpc_server as gs

SM = secretmanager_v1
SERVICE = "google.cloud.secretmanager.v1.SecretManagerService"
RPCS: gs.RpcTable = {
    "ListSecrets": (SM.ListSecretsRequest, SM.ListSecretsResponse),
    "CreateSecret": (SM.CreateSecretRequest, SM.Secret),
    "AddSecretVersion": (SM.AddSecretVersionRequest, SM.SecretVersion),
    "GetSecret": (SM.GetSecretRequest, SM.Secret),
    "DeleteSecret": (SM.DeleteSecretRequest, None),
    "ListSecretVersions": (SM.ListSecretVersionsRequest, SM.ListSecretVersionsResponse),
    "GetSecretVersion": (SM.GetSecretVersionRequest, SM.SecretVersion),
    "AccessSecretVersion": (SM.AccessSecretVersionRequest, SM.AccessSecretVersionResponse),
    "DisableSecretVersion": (SM.DisableSecretVersionRequest, SM.SecretVersion),
    "EnableSecretVersion": (SM.EnableSecretVersionRequest, SM.SecretVersion),
    "DestroySecretVersion": (SM.DestroySecretVersionRequest, SM.SecretVersion),
}
_PROJECT = re.compile(r"projects/[^/]+")
_SECRET_ID = re.compile(r"[A-Za-z0-9_-]{1,255}")
_SECRET = re.compile(r"projects/[^/]+/secrets/[A-Za-z0-9_-]{1,255}")
_VERSION = re.compile(
    r"(projects/[^/]+/secrets/[A-Za-z0-9_-]{1,255})/versions/([0-9]{1,19}|latest)"
)
MAX_PAYLOAD_BYTES = 65536  # "Must be no larger than 64KiB"
_Code = grpc.StatusCode
_Version = SM.SecretVersion
# proto-plus enums derive from an untyped base, so mypy sees their members as plain ints;
# calling the enum class yields values typed as the enum.
_ENABLED = _Version.State(_Version.State.ENABLED)
_DISABLED = _Version.State(_Version.State.DISABLED)
_DESTROYED = _Version.State(_Version.State.DESTROYED)


def _etag() -> str:
    return f'"{secrets.token_hex(7)}"'  # quoted, as AIP-154 and Secret Manager's etags are


@dataclass(eq=False)
class _StoredVersion:
    meta: secretmanager_v1.SecretVersion
    data: bytes | None  # None once destroyed
    checksum: int


@dataclass(eq=False)
class _StoredSecret:
    secret: secretmanager_v1.Secret
    versions: list[_StoredVersion] = field(default_factory=list)  # versions[n - 1] is version n


class SecretManagerService:
    def __init__(self, *, clock: gs.Clock = gs.utc_now) -> None:
        self._clock = clock
        self._secrets: dict[str, _StoredSecret] = {}  # insertion order = creation order
        self._lock = threading.Lock()

    def generic_handler(self) -> grpc.GenericRpcHandler:
        return gs.service_handler(SERVICE, self, RPCS)

    def start(self) -> None:
        """No threads of its own: everything happens inside the rpcs."""

    def close(self) -> None:
        """Nothing to release: the state lives and dies with the process."""

    # --- secrets ------------------------------------------------------------------------------

    def create_secret(
        self, request: SM.CreateSecretRequest, context: grpc.ServicerContext
    ) -> SM.Secret:
        if not _PROJECT.fullmatch(request.parent):
            gs.abort(context, _Code.INVALID_ARGUMENT, "parent must be projects/PROJECT")
        if not _SECRET_ID.fullmatch(request.secret_id):
            gs.abort(context, _Code.INVALID_ARGUMENT, "secret_id must match [A-Za-z0-9_-]{1,255}")
        replication = SM.Replication.pb(request.secret.replication)
        if replication.WhichOneof("replication") is None:
            gs.abort(context, _Code.INVALID_ARGUMENT, "secret.replication is required")
        given = SM.Secret.pb(request.secret)
        unemulated = [f for f in _UNEMULATED if given.HasField(f)] + _unemulated_maps(given)
        if unemulated:  # kept but never acted on would hide a rotation or expiry that never comes
            gs.abort(context, _Code.UNIMPLEMENTED, f"not emulated: {', '.join(unemulated)}")
        secret = SM.Secret(request.secret)
        secret.name = f"{request.parent}/secrets/{request.secret_id}"
        secret.create_time = self._clock()
        secret.etag = _etag()
        with self._lock:
            if secret.name in self._secrets:
                gs.abort(context, _Code.ALREADY_EXISTS, f"Secret [{secret.name}] already exists.")
            self._secrets[secret.name] = _StoredSecret(secret)
            return SM.Secret(secret)

    def get_secret(self, request: SM.GetSecretRequest, context: grpc.ServicerContext) -> SM.Secret:
        with self._lock:
            return SM.Secret(self._secret(request.name, context).secret)

    def list_secrets(
        self, request: SM.ListSecretsRequest, context: grpc.ServicerContext
    ) -> SM.ListSecretsResponse:
        if not _PROJECT.fullmatch(request.parent):
            gs.abort(context, _Code.INVALID_ARGUMENT, "parent must be projects/PROJECT")
        _refuse_filter(request.filter, context)
        with self._lock:
            newest_first = [
                stored.secret
                for name, stored in reversed(self._secrets.items())
                if name.startswith(request.parent + "/secrets/")
            ]
            shown, token = gs.page(newest_first, request.page_size, request.page_token, context)
            return SM.ListSecretsResponse(
                secrets=shown, next_page_token=token, total_size=len(newest_first)
            )

    def delete_secret(self, request: SM.DeleteSecretRequest, context: grpc.ServicerContext) -> None:
        with self._lock:
            stored = self._secret(request.name, context)
            _check_etag(request.etag, stored.secret.etag, context)
            del self._secrets[request.name]  # its versions and their data go with it

    # --- versions -----------------------------------------------------------------------------

    def add_secret_version(
        self, request: SM.AddSecretVersionRequest, context: grpc.ServicerContext
    ) -> SM.SecretVersion:
        data = request.payload.data
        if len(data) > MAX_PAYLOAD_BYTES:
            gs.abort(context, _Code.INVALID_ARGUMENT, f"payload exceeds {MAX_PAYLOAD_BYTES} bytes")
        checksum = google_crc32c.value(data)
        client_checksum = "data_crc32c" in request.payload
        if client_checksum and request.payload.data_crc32c != checksum:
            # Never echo the data: error messages end up in logs.
            gs.abort(context, _Code.INVALID_ARGUMENT, "payload.data_crc32c does not match the data")
        with self._lock:
            stored = self._secret(request.parent, context)
            meta = SM.SecretVersion(
                name=f"{request.parent}/versions/{len(stored.versions) + 1}",
                create_time=self._clock(),
                state=_ENABLED,
                etag=_etag(),
                client_specified_payload_checksum=client_checksum,
            )
            stored.versions.append(_StoredVersion(meta, data, checksum))
            return SM.SecretVersion(meta)

    def get_secret_version(
        self, request: SM.GetSecretVersionRequest, context: grpc.ServicerContext
    ) -> SM.SecretVersion:
        with self._lock:
            return SM.SecretVersion(self._version(request.name, context).meta)

    def list_secret_versions(
        self, request: SM.ListSecretVersionsRequest, context: grpc.ServicerContext
    ) -> SM.ListSecretVersionsResponse:
        _refuse_filter(request.filter, context)
        with self._lock:
            newest_first = [
                v.meta for v in reversed(self._secret(request.parent, context).versions)
            ]
            shown, token = gs.page(newest_first, request.page_size, request.page_token, context)
            return SM.ListSecretVersionsResponse(
                versions=shown, next_page_token=token, total_size=len(newest_first)
            )

    def access_secret_version(
        self, request: SM.AccessSecretVersionRequest, context: grpc.ServicerContext
    ) -> SM.AccessSecretVersionResponse:
        with self._lock:
            version = self._version(request.name, context)
            # `latest` is the newest version whatever its state: a disabled one is refused, as
            # Google refuses it, rather than falling back to an older enabled version.
            if version.meta.state != _ENABLED or version.data is None:
                _refuse_state(version, context)
            payload = SM.SecretPayload(data=version.data, data_crc32c=version.checksum)
            return SM.AccessSecretVersionResponse(name=version.meta.name, payload=payload)

    def disable_secret_version(
        self, request: SM.DisableSecretVersionRequest, context: grpc.ServicerContext
    ) -> SM.SecretVersion:
        return self._change_state(request.name, request.etag, _DISABLED, context)

    def enable_secret_version(
        self, request: SM.EnableSecretVersionRequest, context: grpc.ServicerContext
    ) -> SM.SecretVersion:
        return self._change_state(request.name, request.etag, _ENABLED, context)

    def destroy_secret_version(
        self, request: SM.DestroySecretVersionRequest, context: grpc.ServicerContext
    ) -> SM.SecretVersion:
        return self._change_state(request.name, request.etag, _DESTROYED, context)

    # --- state (call with the lock held) ------------------------------------------------------

    def _secret(self, name: str, context: grpc.ServicerContext) -> _StoredSecret:
        if not _SECRET.fullmatch(name):
            gs.abort(context, _Code.INVALID_ARGUMENT, "secret name must be projects/P/secrets/ID")
        stored = self._secrets.get(name)
        if stored is None:
            gs.abort(context, _Code.NOT_FOUND, f"Secret [{name}] not found.")
        return stored

    def _version(self, name: str, context: grpc.ServicerContext) -> _StoredVersion:
        """The named version; `latest` is the most recently created one, as in Secret Manager."""
        match = _VERSION.fullmatch(name)
        if match is None:
            gs.abort(
                context,
                _Code.INVALID_ARGUMENT,
                "version name must be projects/P/secrets/ID/versions/NUMBER or .../latest",
            )
        secret_name, number = match.groups()
        versions = self._secret(secret_name, context).versions
        if number == "latest":
            if not versions:
                gs.abort(context, _Code.NOT_FOUND, f"Secret [{secret_name}] has no versions.")
            return versions[-1]
        if not 1 <= int(number) <= len(versions):
            gs.abort(context, _Code.NOT_FOUND, f"Secret Version [{name}] not found.")
        return versions[int(number) - 1]

    def _change_state(
        self,
        name: str,
        etag: str,
        target: secretmanager_v1.SecretVersion.State,
        context: grpc.ServicerContext,
    ) -> SM.SecretVersion:
        with self._lock:
            version = self._version(name, context)
            _check_etag(etag, version.meta.etag, context)
            if version.meta.state == _DESTROYED:  # a version never leaves DESTROYED
                _refuse_state(version, context)
            version.meta.state = target
            version.meta.etag = _etag()  # even an enable of an enabled version: intent changed
            if target == _DESTROYED:
                version.data = None
                version.meta.destroy_time = self._clock()
            return SM.SecretVersion(version.meta)


def _refuse_state(version: _StoredVersion, context: grpc.ServicerContext) -> NoReturn:
    state = _Version.State(version.meta.state).name
    message = f"Secret Version [{version.meta.name}] is in {state} state."
    gs.abort(context, _Code.FAILED_PRECONDITION, message)


def _check_etag(given: str, current: str, context: grpc.ServicerContext) -> None:
    """An etag, when sent, must be the current one (FAILED_PRECONDITION, Secret Manager's code)."""
    if given and given != current:
        gs.abort(context, _Code.FAILED_PRECONDITION, f"etag {given} is not the current one")


_UNEMULATED = (
    "rotation",
    "ttl",
    "expire_time",
    "version_destroy_ttl",
    "customer_managed_encryption",
)


def _unemulated_maps(secret: object) -> list[str]:
    """Repeated and map fields set on a Secret that the emulator would not act on."""
    found = []
    if getattr(secret, "topics", None):
        found.append("topics")
    if getattr(secret, "version_aliases", None):
        found.append("version_aliases")
    return found


def _refuse_filter(expression: str, context: grpc.ServicerContext) -> None:
    if expression:  # listing everything instead would hide a filter bug
        gs.abort(context, _Code.UNIMPLEMENTED, "list filters are not emulated")


def start_secret_manager_emulator(
    host: str = "127.0.0.1", port: int = 0, clock: gs.Clock = gs.utc_now
) -> gs.RunningEmulator:
    """Serve Secret Manager on host:port (0 = a free port); `.stop()` ends the server."""
    return gs.serve([SecretManagerService(clock=clock)], host, port)


def main(argv: list[str] | None = None) -> None:
    parser = gs.command_line("In-repo Secret Manager emulator (gRPC)")
    args = parser.parse_args(argv)  # --signing-key is shared with the other emulators, unused here
    emulator = start_secret_manager_emulator(args.host, args.port)
    gs.run_until_signalled(emulator.address, emulator.stop)


if __name__ == "__main__":
    main()
