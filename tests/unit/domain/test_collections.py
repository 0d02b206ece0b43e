"""domain/collections.py is the one list of collections, and the files that cannot import it agree.

infra/firestore.rules and infra/firestore.indexes.json name collections as text; these tests hold
them to the Python constants (the rules' behaviour itself is tested on the emulator in
tests/integration/test_firestore_rules.py).
"""

import json
import re
from pathlib import Path

import pytest

from playbook_core.domain import collections
from playbook_core.domain.collections import (
    APPROVAL_CLAIMS,
    APPROVALS,
    CLIENT_READABLE,
    CONSENT_RECORDS,
    EXECUTIONS,
    PLAYBOOKS,
    RETAINED,
    STEPS,
    VERSIONS,
    approval_claims_path,
    step_doc_id,
    steps_path,
    versions_path,
)
from playbook_core.runtime.manifest import FirestoreTrigger, load_manifest

ROOT = Path(__file__).parents[3]
RULES = ROOT / "infra" / "firestore.rules"
INDEXES = ROOT / "infra" / "firestore.indexes.json"
DOMAIN_MD = ROOT / "docs" / "domain.md"
CONSENT_MD = ROOT / "docs" / "consent.md"
NAMES = {
    value for name, value in vars(collections).items() if name.isupper() and isinstance(value, str)
}
SUBCOLLECTIONS = {VERSIONS, STEPS, APPROVAL_CLAIMS}


def rule_blocks(text: str) -> list[tuple[str, ...]]:
    """The collection path of every `match` block, parents included: ("playbooks",) and so on.

    Document ids (`{playbookId}`) are left out; a wildcard where a collection is named
    (`{document=**}`, `{sub}`) shows up as "*".
    """
    text = re.sub(r"//[^\n]*", "", text)
    depth, stack, found = 0, [], []
    for token in re.finditer(r"\bmatch\s+(\S+)\s*\{|[{}]", text):
        if token.group(1) is not None:
            depth += 1
            segments = [s for s in token.group(1).strip("/").split("/") if s]
            names = tuple("*" if s.startswith("{") else s for s in segments[::2])
            parent = stack[-1][1] if stack else ()
            path = (*parent, *names)
            stack.append((depth, path))
            found.append(path)
        elif token.group(0) == "{":
            depth += 1
        else:
            if stack and stack[-1][0] == depth:
                stack.pop()
            depth -= 1
    root = ("databases", "documents")
    assert found[0] == root, "the rules open with match /databases/{database}/documents"
    return [path[len(root) :] for path in found[1:]]


def retention_table(text: str) -> dict[str, str]:
    """domain.md §2.1: collection group (a subcollection by its last segment) → retention cell."""
    section = text.split("### 2.1 ", 1)[1].split("\n### ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    found = {}
    for row in rows:
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", row)[1:-1]]
        path = re.match(r"`([^`]+)`", cells[0]).group(1)
        found[path.rsplit("/", 1)[-1]] = cells[-1]
    return found


@pytest.fixture(scope="module")
def blocks() -> list[tuple[str, ...]]:
    return rule_blocks(RULES.read_text(encoding="utf-8"))


def test_each_collection_is_named_once():
    values = [v for n, v in vars(collections).items() if n.isupper() and isinstance(v, str)]
    assert len(values) == len(set(values))


def test_paths_below_a_document():
    assert versions_path("pb_1") == f"{PLAYBOOKS}/pb_1/versions"
    assert steps_path("ev_1") == f"{EXECUTIONS}/ev_1/steps"
    assert approval_claims_path("ev_1") == f"{APPROVALS}/ev_1/claims"


def test_step_ids_sort_in_step_order():
    assert step_doc_id(0) == "000"
    ids = [step_doc_id(i) for i in (10, 2, 0, 1)]
    assert sorted(ids) == [step_doc_id(i) for i in (0, 1, 2, 10)]


def test_the_rules_name_only_known_collections(blocks):
    named = {name for path in blocks for name in path}
    assert named - {"*"} <= NAMES
    assert all(len(path) == 1 or path[-1] in SUBCOLLECTIONS for path in blocks)


def test_every_collection_is_client_readable_or_left_to_the_default_deny(blocks):
    assert not any("*" in path for path in blocks), "a wildcard would open server-only data"
    readable = {path[0] for path in blocks if len(path) == 1}
    assert readable == CLIENT_READABLE
    for name in NAMES - CLIENT_READABLE - SUBCOLLECTIONS:
        assert (name,) not in blocks, f"{name} is server-only: the rules must not match it"
    assert {path for path in blocks if len(path) > 1} == {(EXECUTIONS, STEPS)}


def test_documents_the_rules_read_are_known_collections():
    looked_up = re.findall(r"/documents/([A-Za-z_]+)/", RULES.read_text(encoding="utf-8"))
    assert looked_up  # steps check their parent execution
    assert set(looked_up) <= NAMES


def test_every_indexed_collection_group_is_a_known_collection():
    declared = json.loads(INDEXES.read_text(encoding="utf-8"))
    groups = {i["collectionGroup"] for i in declared["indexes"]}
    groups |= {o["collectionGroup"] for o in declared["fieldOverrides"]}
    assert groups
    assert groups <= NAMES


def test_firestore_triggers_watch_known_collections():
    documents = [
        f.trigger.document
        for f in load_manifest().functions
        if isinstance(f.trigger, FirestoreTrigger)
    ]
    assert documents
    assert {d.split("/", 1)[0] for d in documents} <= NAMES


def test_the_retained_collections_are_those_the_docs_give_a_ttl():
    table = retention_table(DOMAIN_MD.read_text(encoding="utf-8"))
    assert {EXECUTIONS, STEPS, APPROVAL_CLAIMS, PLAYBOOKS} <= set(table) <= NAMES
    with_ttl = {name for name, retention in table.items() if re.search(r"\bTTL\b", retention)}
    # consent_records has its own chapter (consent.md §5), not a row in §2.1.
    consent = CONSENT_MD.read_text(encoding="utf-8")
    assert f"TTL policy on `{CONSENT_RECORDS}.expiresAt`" in consent
    assert with_ttl | {CONSENT_RECORDS} == RETAINED, (
        f"retained without a TTL in domain.md §2.1: {sorted(RETAINED - with_ttl - {CONSENT_RECORDS})}"
        f"; a TTL in §2.1 but not in RETAINED: {sorted(with_ttl - RETAINED)}"
    )
