"""A stand-in whose request log masks credentials: `GET /__requests` is no way to read them."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from emulators.standin_core import Provider, Recorder, Request
from emulators.standin_server import StandIn

if TYPE_CHECKING:
    from collections.abc import Iterable

MASK = "[redacted]"


class MaskingRecorder(Recorder):
    """Records each request with the named headers and query parameters replaced by MASK."""

    def __init__(self, headers: Iterable[str], params: Iterable[str]) -> None:
        super().__init__()
        self._headers = frozenset(name.lower() for name in headers)
        self._params = frozenset(params)

    def add(self, request: Request) -> str:
        return super().add(
            dataclasses.replace(
                request,
                headers=_masked(request.headers, self._headers),
                query=_masked(request.query, self._params),
            )
        )


def _masked(values: Any, names: frozenset[str]) -> dict[str, str]:
    return {key: MASK if key in names else value for key, value in values.items()}


class MaskingStandIn(StandIn):
    """A `StandIn` recording through a `MaskingRecorder`; the provider still sees everything."""

    def __init__(
        self,
        provider: Provider,
        *,
        masked_headers: Iterable[str],
        masked_params: Iterable[str] = (),
        host: str = "127.0.0.1",
        port: int = 0,
        timeout_sleep_s: float | None = None,
    ) -> None:
        super().__init__(provider, host=host, port=port, timeout_sleep_s=timeout_sleep_s)
        # Swapped before the URL is handed out, so no request reaches the unmasked recorder.
        self.recorder = MaskingRecorder(masked_headers, masked_params)
