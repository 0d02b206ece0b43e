"""A guarded send's product, re-read at send time (domain.md §7.4): in stock, sold out, unknown."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from playbook_core.domain import templating
from playbook_core.domain.collections import INVENTORY
from playbook_core.domain.ids import is_path_id
from playbook_core.domain.playbook import SendEmailStep, SendSmsStep
from playbook_core.domain.stock import Availability, availability, product_id_of, stored_forms
from playbook_core.logging import event
from playbook_core.ports import DocumentStore, Page, Where
from playbook_core.service.execution.actions import ActionContext
from playbook_core.service.execution.deliveries import Unsendable

# One product's levels (variants × locations) per org field; a fuller page reads as "unknown".
LEVELS_PER_FIELD = 100
_ORG_FIELDS = ("orgId", "brandId", "retailerId")  # whichever the org's sync fills (§5.1)
_log = logging.getLogger("playbooks.sends")


@dataclass(frozen=True)
class ProductCheck:
    product_id: str
    availability: Availability

    @property
    def unavailable(self) -> bool:
        return self.availability == "unavailable"

    def stored(self) -> dict[str, Any]:
        """On the delivery and in a dry run's trace: which product was judged, and how."""
        return {"productId": self.product_id, "availability": self.availability}


def guarded_product(step: SendEmailStep | SendSmsStep, ctx: ActionContext) -> str | None:
    """The product the step's guard names, rendered strictly like its params; None: unguarded.

    Raises Unsendable when it names no product: the step fails rather than send a promotion
    nobody checked, or skip as sold out a product nobody named.
    """
    if step.guard is None:
        return None
    try:
        rendered = templating.render(step.guard.in_stock, ctx.render)
    except templating.UnresolvedVariable as missing:
        raise Unsendable("unresolved_variable", f"no value for {{{{ {missing.path} }}}}") from None
    product = product_id_of(rendered)
    if product is None:
        shown = templating.stringify(rendered)[:80]
        raise Unsendable("invalid_product", f"guard.inStock gave '{shown}', which names no product")
    return product


def check_product(store: DocumentStore, *, org_id: str, product_id: str) -> ProductCheck:
    """The product's inventory docs, read now; stops at the first proof that it is in stock."""
    found: dict[str, dict[str, Any]] = {}
    complete = True

    def judged() -> Availability:
        return availability(found.items(), org_id=org_id, product_id=product_id, complete=complete)

    for field in _ORG_FIELDS:
        page = _levels(store, field, org_id, product_id)
        found.update((doc.id, doc.data) for doc in page.docs)
        complete = complete and page.next_cursor is None
        if judged() == "available":
            return ProductCheck(product_id, "available")
    if product_id not in found and is_path_id(product_id):
        # A doc that names no productId stands for the product by its own id (§5.1).
        own = store.get(INVENTORY, product_id)
        if own is not None:
            found[product_id] = own
    verdict = judged()
    if verdict == "unknown":
        # Sent anyway (nothing proves it sold out); this line is how a wrong guard shows.
        event(_log, logging.WARNING, "guarded send: no stock level for its product",
              orgId=org_id, productId=product_id, complete=complete)  # fmt: skip
    return ProductCheck(product_id, verdict)


def _levels(store: DocumentStore, field: str, org_id: str, product_id: str) -> Page:
    forms = stored_forms(product_id)
    if field == "brandId":
        where = [Where("brandId", "==", org_id), Where("productId", "in", forms)]
    elif field == "retailerId":
        where = [Where("retailerId", "==", org_id), Where("productId", "in", forms)]
    else:
        where = [Where("orgId", "==", org_id), Where("productId", "in", forms)]
    return store.query(INVENTORY, where, limit=LEVELS_PER_FIELD)
