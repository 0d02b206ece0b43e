"""Send-time freshness (domain.md §7.4, §7.10): is the product a guarded send promotes in stock?

Pure: the service reads the product's `inventory` documents (every variant and location the
org's sync wrote) and this judges them. Only proof makes a product unavailable: no level at all,
or a read cut short, is "unknown", and an unknown product does not stop a send.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from typing import Any, Literal

from playbook_core.domain.changes import orgs_of, quantity
from playbook_core.domain.doc_fields import text
from playbook_core.domain.ids import MAX_PATH_ID

Availability = Literal["available", "unavailable", "unknown"]
# A numeric id a sync may have stored as a number; int64 bounds what Firestore can hold.
_WHOLE_NUMBER = re.compile(r"0|[1-9][0-9]{0,17}")


def product_id_of(rendered: Any) -> str | None:
    """The rendered `guard.inStock` as a product id: text or a whole number, else None."""
    if isinstance(rendered, int) and not isinstance(rendered, bool):
        return str(rendered)
    if not isinstance(rendered, str):
        return None  # an object, a list or a flag names no product
    product = rendered.strip()
    return product if 0 < len(product) <= MAX_PATH_ID else None


def stored_forms(product_id: str) -> list[str | int]:
    """Every value a `productId` field may hold for this id: syncs store numeric ids as numbers."""
    forms: list[str | int] = [product_id]
    if _WHOLE_NUMBER.fullmatch(product_id):
        forms.append(int(product_id))
    return forms


def stands_for(doc_id: str, doc: Mapping[str, Any], *, org_id: str, product_id: str) -> bool:
    """The doc is the org's and is this product's: its `productId`, else its own id (§5.1)."""
    return org_id in orgs_of(doc_id, doc) and (text(doc.get("productId")) or doc_id) == product_id


def availability(
    docs: Iterable[tuple[str, Mapping[str, Any]]],
    *,
    org_id: str,
    product_id: str,
    complete: bool,
) -> Availability:
    """Available if any level of the product is above 0; unavailable if every one was read.

    `complete`: no read was cut short. A doc without a quantity says nothing about stock.
    """
    levels = [
        level
        for doc_id, doc in docs
        if stands_for(doc_id, doc, org_id=org_id, product_id=product_id)
        and (level := quantity(doc)) is not None
        and math.isfinite(level)  # "NaN" or "inf" in a POS field is no stock level
    ]
    if any(level > 0 for level in levels):
        return "available"
    return "unavailable" if levels and complete else "unknown"
