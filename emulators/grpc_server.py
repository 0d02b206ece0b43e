"""Shared plumbing of the in-repo emulators: gRPC serving, process mode and HTTP pushes."""

from __future__ import annotations

import argparse
import re
import signal
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from types import FrameType
from typing import Any, NoReturn, Protocol, TypeVar

import grpc  # type: ignore[import-untyped]  # grpcio ships no type information
import httpx
from google.auth import crypt
from google.protobuf import empty_pb2

# rpc name -> (proto-plus request type, proto-plus response type or None for google.protobuf.Empty)
RpcTable = Mapping[str, tuple[Any, Any | None]]
_Item = TypeVar("_Item")
_SNAKE = re.compile(r"(?<!^)(?=[A-Z])")  # CreateQueue -> create_queue
_MAX_PAGE = 1000  # the real services cap list pages at 1000 entries


def _empty(_message: object) -> bytes:
    return bytes(empty_pb2.Empty().SerializeToString())


def service_handler(service: str, impl: object, rpcs: RpcTable) -> grpc.GenericRpcHandler:
    """One generic handler serving `impl.<snake_case rpc>(request, context)` for every rpc.

    No protoc and no generated stubs: the client libraries' proto-plus classes (de)serialize.
    """
    handlers = {
        rpc: grpc.unary_unary_rpc_method_handler(
            getattr(impl, _SNAKE.sub("_", rpc).lower()),
            request_deserializer=request.deserialize,
            response_serializer=response.serialize if response is not None else _empty,
        )
        for rpc, (request, response) in rpcs.items()
    }
    return grpc.method_handlers_generic_handler(service, handlers)


def abort(context: grpc.ServicerContext, code: grpc.StatusCode, message: str) -> NoReturn:
    """Fail the call; the official client raises the matching google.api_core exception."""
    context.abort(code, message)
    raise AssertionError("unreachable: ServicerContext.abort raises")  # pragma: no cover


def page(
    items: Sequence[_Item], page_size: int, page_token: str, context: grpc.ServicerContext
) -> tuple[list[_Item], str]:
    """Slice a sorted listing; the token is the next offset, which is enough for an emulator."""
    try:
        start = int(page_token or "0")
    except ValueError:
        abort(context, grpc.StatusCode.INVALID_ARGUMENT, f"bad page_token {page_token!r}")
    size = min(page_size or _MAX_PAGE, _MAX_PAGE)
    end = start + size
    return list(items[start:end]), str(end) if end < len(items) else ""


class EmulatedService(Protocol):
    def generic_handler(self) -> grpc.GenericRpcHandler: ...
    def start(self) -> None: ...
    def close(self) -> None: ...


@dataclass
class RunningEmulator:
    """Handle on a serving gRPC server and the services (with their threads) behind it."""

    server: grpc.Server
    host: str
    port: int
    services: tuple[EmulatedService, ...]
    executor: ThreadPoolExecutor

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def stop(self, grace: float = 1.0) -> None:
        self.server.stop(grace).wait()
        self.executor.shutdown(wait=False)  # grpc.Server.stop leaves its executor to the owner
        for service in self.services:
            service.close()


def serve(
    services: Sequence[EmulatedService], host: str = "127.0.0.1", port: int = 0
) -> RunningEmulator:
    """Serve one or more services on one port (port 0 picks a free one) and start their threads."""
    # SO_REUSEPORT (gRPC's default on Linux) would let a second server silently share a port that
    # another checkout's emulator already holds; we want that bind to fail instead.
    executor = ThreadPoolExecutor(max_workers=16, thread_name_prefix="grpc-rpc")
    server = grpc.server(executor, options=[("grpc.so_reuseport", 0)])
    server.add_generic_rpc_handlers([service.generic_handler() for service in services])
    try:
        bound = server.add_insecure_port(f"{host}:{port}")  # RuntimeError when the port is taken
    except RuntimeError:
        for service in services:
            service.close()
        executor.shutdown(wait=False)
        raise
    for service in services:
        service.start()
    server.start()
    return RunningEmulator(server, host, bound, tuple(services), executor)


def command_line(description: str) -> argparse.ArgumentParser:
    """The arguments every gRPC emulator takes: --host, and --port (0 picks a free one)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--signing-key", help="sign OIDC tokens with this RSA key (PEM)")
    return parser


def signer_from(path: str | None) -> crypt.Signer | None:
    """`--signing-key`: tokens signed as Google would (deployed-shape tests); absent: unsigned."""
    if path is None:
        return None
    from emulators.google_keys import load_signer  # noqa: PLC0415 - cryptography only when asked

    return load_signer(path)


def run_until_signalled(address: str, stop: Callable[[], None]) -> None:
    """Process mode: announce readiness on stdout, serve until SIGTERM/SIGINT, then stop cleanly.

    The stack's process runner waits for the `ready <address>` line (the emulators, the push relay).
    """
    stopping = threading.Event()

    def _on_signal(_signum: int, _frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    print(f"ready {address}", flush=True)
    stopping.wait()
    stop()


@dataclass(frozen=True)
class HttpCall:
    method: str
    url: str
    headers: dict[str, str]
    body: bytes
    timeout: float
    follow_redirects: bool = False


@dataclass(frozen=True)
class HttpOutcome:
    """What a push produced: the HTTP status (None when no answer) and its google.rpc code."""

    status: int | None
    rpc_code: int
    reason: str

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


# google.rpc.Code for HTTP statuses, as Google's APIs map them (google/rpc/code.proto).
_RPC_CODE_BY_STATUS = {400: 3, 401: 16, 403: 7, 404: 5, 409: 10, 429: 8, 499: 1, 501: 12, 503: 14}
_DEADLINE_EXCEEDED, _UNAVAILABLE, _UNKNOWN = 4, 14, 2


def rpc_code_for_http(status: int) -> int:
    if 200 <= status < 300:
        return 0
    if status == 504:
        return _DEADLINE_EXCEEDED
    if status in _RPC_CODE_BY_STATUS:
        return _RPC_CODE_BY_STATUS[status]
    if 400 <= status < 500:
        return 9  # FAILED_PRECONDITION
    return 13 if status >= 500 else _UNKNOWN  # INTERNAL, or UNKNOWN for 1xx/3xx


def send_http(client: httpx.Client, call: HttpCall) -> HttpOutcome:
    """Push one request; every failure becomes an outcome, because a dispatcher must not die."""
    try:
        response = client.request(
            call.method,
            call.url,
            headers=call.headers,
            content=call.body or None,
            timeout=call.timeout,
            follow_redirects=call.follow_redirects,
        )
    except httpx.TimeoutException:
        return HttpOutcome(None, _DEADLINE_EXCEEDED, "deadline exceeded")
    except Exception as exc:
        return HttpOutcome(None, _UNAVAILABLE, f"no response: {type(exc).__name__}")
    status = response.status_code
    return HttpOutcome(status, rpc_code_for_http(status), f"HTTP {status}")


def http_method(enum_name: str) -> str:
    """HTTP verb for a HttpMethod enum member's name; unspecified means POST in both APIs."""
    return "POST" if enum_name == "HTTP_METHOD_UNSPECIFIED" else enum_name


def push_headers(user: Mapping[str, str], body: bytes, fixed: Mapping[str, str]) -> dict[str, str]:
    """User headers minus the ones Google computes, a default Content-Type, then the fixed ones."""
    computed = {"host", "content-length", "user-agent"} | {name.lower() for name in fixed}
    headers = {k: v for k, v in user.items() if k.lower() not in computed}
    if body and not any(k.lower() == "content-type" for k in headers):
        headers["Content-Type"] = "application/octet-stream"
    headers.update(fixed)
    return headers


def rfc3339(moment: datetime) -> str:
    """UTC "Zulu" form, the one Google puts in time headers."""
    text = moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{text}.{moment.microsecond:06d}Z" if moment.microsecond else f"{text}Z"


def utc_now() -> datetime:
    return datetime.now(UTC)


Clock = Callable[[], datetime]
