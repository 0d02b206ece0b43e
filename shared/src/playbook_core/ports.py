"""Every dependency the services need, as typing.Protocols; adapters implement them.

Atomicity is part of each method's contract (proved by tests/contract on every adapter), never a
leaked transaction object from a client library.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol, TypeVar

T = TypeVar("T")

FilterOp = Literal[
    "==", "!=", "<", "<=", ">", ">=", "in", "not-in", "array-contains", "array-contains-any"
]
Direction = Literal["asc", "desc"]


@dataclass(frozen=True)
class Increment:
    """Write sentinel: add `amount` to a numeric field (missing counts as 0)."""

    amount: int | float


@dataclass(frozen=True)
class DeleteField:
    """Write sentinel: remove the field."""


DELETE_FIELD = DeleteField()


@dataclass(frozen=True)
class Where:
    field: str  # dotted path into maps, e.g. "lastTouch.playbookId"
    op: FilterOp
    value: Any


@dataclass(frozen=True)
class OrderBy:
    field: str
    direction: Direction = "asc"


@dataclass(frozen=True)
class Doc:
    id: str
    data: dict[str, Any]


@dataclass(frozen=True)
class Page:
    docs: list[Doc]
    # Opaque cursor for the next page (None at the end); pass back as `start_after`.
    next_cursor: str | None


class Transaction(Protocol):
    """Reads first, then writes; the store retries the whole function on contention."""

    def get(self, collection: str, doc_id: str) -> dict[str, Any] | None: ...
    def get_many(self, collection: str, doc_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The documents that exist, by id, read in one round trip."""
        ...

    def create(self, collection: str, doc_id: str, data: Mapping[str, Any]) -> None: ...
    def set(self, collection: str, doc_id: str, data: Mapping[str, Any]) -> None: ...
    def update(self, collection: str, doc_id: str, changes: Mapping[str, Any]) -> None: ...
    def delete(self, collection: str, doc_id: str) -> None: ...


class DocumentStore(Protocol):
    """Firestore-shaped document storage.

    `collection` may be a subcollection path (`playbooks/pb_1/versions`). Values: None, bool, int,
    float, str, aware datetime, list, dict. Errors: AlreadyExists (create), NotFound (update),
    Unavailable (storage down).
    """

    def get(self, collection: str, doc_id: str) -> dict[str, Any] | None: ...
    def get_many(self, collection: str, doc_ids: Sequence[str]) -> dict[str, dict[str, Any]]: ...
    def create(self, collection: str, doc_id: str, data: Mapping[str, Any]) -> None: ...
    def create_all(self, documents: Sequence[tuple[str, str, Mapping[str, Any]]]) -> None:
        """Create every (collection, id, data) in one atomic write (one round trip).

        AlreadyExists, and nothing written, when any of them exists.
        """
        ...

    def set(
        self, collection: str, doc_id: str, data: Mapping[str, Any], *, merge: bool = False
    ) -> None: ...
    def update(self, collection: str, doc_id: str, changes: Mapping[str, Any]) -> None: ...
    def delete(self, collection: str, doc_id: str) -> None: ...
    def query(
        self,
        collection: str,
        where: Sequence[Where] = (),
        order_by: Sequence[OrderBy] = (),
        limit: int = 100,
        start_after: str | None = None,
    ) -> Page: ...
    def transaction(self, work: Callable[[Transaction], T]) -> T: ...
    def ping(self) -> None: ...


@dataclass(frozen=True)
class Message:
    message_id: str
    data: bytes
    attributes: dict[str, str]


class EventBus(Protocol):
    def publish(self, topic: str, data: bytes, attributes: Mapping[str, str]) -> str: ...
    def ping(self) -> None: ...


@dataclass(frozen=True)
class TaskRequest:
    queue: str
    name: str  # deterministic (domain.md: "t" + h(executionId, stepIndex, attempt)); dedup key
    url: str  # the HTTP target, e.g. the gateway or the deployed function URL
    body: dict[str, Any]
    schedule_time: datetime | None = None


@dataclass(frozen=True)
class QueueConfig:
    """A queue's retry policy for infrastructure failures (the handler answered non-2xx)."""

    name: str
    max_attempts: int = 20
    min_backoff_s: float = 5.0
    max_backoff_s: float = 300.0
    max_doublings: int = 16
    # Tasks of this queue running at once (Cloud Tasks' rate_limits.max_concurrent_dispatches);
    # None: the service default. Step queues are sharded by org so one org cannot fill them all.
    max_concurrent_dispatches: int | None = None


class TaskQueue(Protocol):
    def enqueue(self, task: TaskRequest) -> bool:
        """True when created; False when a task of that name exists or existed (not an error)."""
        ...

    def ping(self) -> None: ...


class Clock(Protocol):
    def now(self) -> datetime: ...


class IdFactory(Protocol):
    """The few random ids (`pb_…`, `man_…`); everything else is derived from content."""

    def random(self, prefix: str) -> str: ...


class TokenVerifier(Protocol):
    """Firebase ID token → verified claims; raises Unauthenticated."""

    def verify(self, token: str) -> dict[str, Any]: ...


class ServiceTokenVerifier(Protocol):
    """The OIDC ID token Cloud Tasks, Cloud Scheduler or Pub/Sub push attached → its claims.

    Raises Unauthenticated unless the token is valid now, issued by accounts.google.com and for
    `audience` (the called function's own URL); Forbidden when it names an `email` outside
    `callers` or an unverified one.
    """

    def verify(self, token: str, *, audience: str, callers: Collection[str]) -> dict[str, Any]: ...


@dataclass(frozen=True)
class HarnessReply:
    output: Any
    score: int
    issues: list[Any]
    remediation: str | None


class AgentHarness(Protocol):
    """Runs one agent task; raises Transient/Permanent provider errors (domain.md §11.3)."""

    def run(
        self, *, agent: str, task: str, payload: Mapping[str, Any], context: Mapping[str, Any],
        timeout_s: float,
    ) -> HarnessReply: ...  # fmt: skip


class Secrets(Protocol):
    """Secret values by reference; values never leave the server (domain.md §6.1)."""

    def put(self, name: str, value: str) -> str:
        """Store a new version under `name`; returns the reference to keep in documents."""
        ...

    def get(self, reference: str) -> str: ...

    def discard(self, reference: str) -> None:
        """Destroy one version written by a request that was then refused."""
        ...


@dataclass(frozen=True)
class EmailMessage:
    to: str
    subject: str
    text: str | None
    html: str | None
    custom_id: str  # the delivery id, so provider logs and our records join (domain.md §7.7)
    event_payload: str
    reply_to: str | None = None
    template_id: int | None = None
    variables: dict[str, Any] | None = None
    # Extra MIME headers, e.g. List-Unsubscribe and List-Unsubscribe-Post (RFC 8058, consent.md §4).
    headers: dict[str, str] | None = None


@dataclass(frozen=True)
class SentMessage:
    provider_message_id: str
    provider_extra: dict[str, Any]


class Mailer(Protocol):
    """Mailjet Send API v3.1; raises TransientProviderError / PermanentProviderError."""

    def send(self, message: EmailMessage) -> SentMessage: ...

    def find_sent(self, custom_id: str) -> SentMessage | None:
        """Crash recovery: the message already sent under this CustomID, if any."""
        ...


class SmsSender(Protocol):
    """Blackleaf; the provider dedupes on `client_reference` (domain.md §11.2)."""

    def send_sms(
        self, *, to: str, body: str, client_reference: str, org_id: str
    ) -> SentMessage: ...


class SlackNotifier(Protocol):
    def post(self, webhook_url: str, text: str) -> None: ...


@dataclass(frozen=True)
class OrdersPage:
    """One page of a store's orders, oldest update first, in the platform's webhook JSON shape.

    `wait_s`: the platform asked us to slow down (Shopify's cost bucket is empty, WooCommerce
    answered 429); ask for the same page again after that long.
    """

    orders: list[dict[str, Any]]
    next_cursor: str | None
    wait_s: float | None = None


class StoreOrders(Protocol):
    """Orders of a registered store read back through its own API (the catch-up pass)."""

    def orders_since(
        self,
        platform: Literal["shopify", "woocommerce"],
        address: str,
        credentials: Mapping[str, str],
        since: datetime,
        cursor: str | None,
    ) -> OrdersPage: ...
