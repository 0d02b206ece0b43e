"""Google API client failures as domain errors, for the adapters that classify them alike.

Cloud Tasks and Cloud Scheduler share the rule (architecture.md §4): a refused request never
succeeds on retry, so it is our bug; any other client failure may pass, so it is `Unavailable`.
Only what a missing resource means differs, so each adapter says that. Firestore and Pub/Sub keep
their own rules: Firestore maps conflicts and unwraps `transactional`'s ValueError, and Pub/Sub
retries a known list of transient failures and calls every other one permanent.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from google.api_core import exceptions as gexc

from playbook_core.domain import errors

# A bad name, URL, body or permission: the same request fails the same way every time.
REFUSED = (gexc.InvalidArgument, gexc.FailedPrecondition, gexc.PermissionDenied)


@contextmanager
def translated(
    service: str, what: str, not_found: Callable[[str], errors.PlaybooksError]
) -> Iterator[None]:
    """Client failures as domain errors; the cause keeps the client's detail for logs.

    `service` names the API in the detail, `what` the resource; `not_found(what)` is the error
    for a missing resource.
    """
    try:
        yield
    except errors.PlaybooksError:
        raise
    except gexc.NotFound as exc:
        raise not_found(what) from exc
    except REFUSED as exc:
        raise errors.PlaybooksError(f"{service} refused {what} ({type(exc).__name__})") from exc
    except gexc.GoogleAPIError as exc:  # service down or overloaded: retry later
        raise errors.Unavailable(f"{service} unavailable ({type(exc).__name__})") from exc
