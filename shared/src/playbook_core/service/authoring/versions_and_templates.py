"""Versions, rollback, export/import and templates: moving definitions in and out safely."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from playbook_core import catalog
from playbook_core.domain import strict_json
from playbook_core.domain.collections import PLAYBOOKS, TEMPLATES, versions_path
from playbook_core.domain.documents import definition_of
from playbook_core.domain.errors import (
    AlreadyExists,
    Forbidden,
    Issue,
    NotFound,
    PayloadTooLarge,
    PlaybookInvalid,
    PlaybooksError,
)
from playbook_core.domain.lifecycle import version_doc_id
from playbook_core.domain.loading import Validated, dump_yaml, load_data, load_text
from playbook_core.domain.records import PlaybookRecord
from playbook_core.domain.text import Undecodable, utf8
from playbook_core.domain.tiers import TemplateEntry, may_clone_template, parse_tier
from playbook_core.domain.yaml_source import split_documents
from playbook_core.ports import Clock, DocumentStore, OrderBy
from playbook_core.service.authoring.playbooks import (
    Authoring,
    create_playbook,
    load_playbook,
    write_definition,
)
from playbook_core.service.records import read_settings

MAX_IMPORT = 200


def list_versions(*, org_id: str, playbook_id: str, store: DocumentStore) -> list[dict[str, Any]]:
    load_playbook(store, org_id, playbook_id)
    page = store.query(versions_path(playbook_id), order_by=[OrderBy("version", "desc")], limit=100)
    return [doc.data for doc in page.docs]


def get_version(
    *, org_id: str, playbook_id: str, version: int, store: DocumentStore
) -> dict[str, Any]:
    load_playbook(store, org_id, playbook_id)
    document = store.get(versions_path(playbook_id), version_doc_id(version))
    if document is None or document.get("orgId") != org_id:
        raise NotFound(f"playbook '{playbook_id}' has no version {version}")
    return document


def rollback(
    *, org_id: str, playbook_id: str, version: int, actor: str, store: DocumentStore, clock: Clock
) -> dict[str, Any]:
    old = get_version(org_id=org_id, playbook_id=playbook_id, version=version, store=store)
    validated = load_data(old["definition"])  # re-validated against today's rules
    return write_definition(
        org_id=org_id, playbook_id=playbook_id, validated=validated, actor=actor,
        reason="rollback", store=store, clock=clock, rolled_back_from=version,
    )  # fmt: skip


def export_one(document: Mapping[str, Any], fmt: str) -> str:
    definition = definition_of(document)
    if fmt == "json":
        return json.dumps(definition.to_document(), indent=2, ensure_ascii=False) + "\n"
    return dump_yaml(
        definition, header=[f"id: {document['id']}", f"version: {document['version']}"]
    )


def export_many(documents: list[dict[str, Any]], fmt: str) -> str:
    if fmt == "json":
        items = [definition_of(d).to_document() for d in documents]
        return json.dumps(items, indent=2, ensure_ascii=False) + "\n"
    return "---\n".join(export_one(d, "yaml") for d in documents)


def parse_import(body: bytes, content_type: str) -> list[tuple[int, Validated | list[Issue]]]:
    """Every document of a YAML stream, JSON object or JSON array: validated, or its issues.

    Refuses the whole body, before anything is written, when it is not UTF-8 or holds more than
    MAX_IMPORT documents: dropping the rest silently would lose them.
    """
    results: list[tuple[int, Validated | list[Issue]]] = []
    if "json" in content_type:
        data, repeated = strict_json.decode(body)
        if isinstance(data, dict) and set(data) == {"yaml"} and isinstance(data["yaml"], str):
            if repeated:
                raise PlaybookInvalid(repeated)
            return parse_import(data["yaml"].encode(), "application/yaml")
        items = data if isinstance(data, list) else [data]
        _refuse_too_many(len(items))
        repeats = strict_json.by_document(repeated, array=isinstance(data, list))
        for index, item in enumerate(items):
            if index in repeats:  # as in a YAML stream: this document fails, the others go on
                results.append((index, repeats[index]))
                continue
            try:
                results.append((index, load_data(item)))
            except PlaybookInvalid as invalid:
                results.append((index, invalid.errors))
        return results
    try:
        text = utf8(body)
    except Undecodable as bad:  # never replacement characters: create and validate refuse too
        raise PlaybookInvalid(
            [Issue(code="invalid_encoding", path="", line=bad.line, column=bad.column,
                   message="the body is not valid UTF-8")]
        ) from None  # fmt: skip
    parts = split_documents(text)
    _refuse_too_many(len(parts))
    for index, (first_line, part) in enumerate(parts):
        try:
            results.append((index, load_text(part)))
        except PlaybookInvalid as invalid:
            shifted = [
                e.model_copy(update={"line": e.line + first_line - 1}) if e.line else e
                for e in invalid.errors
            ]
            results.append((index, shifted))
    return results


def _refuse_too_many(count: int) -> None:
    if count > MAX_IMPORT:
        raise PayloadTooLarge(
            f"an import holds at most {MAX_IMPORT} documents and this one has {count}; "
            "split it into several imports"
        )


def import_playbooks(
    *, authoring: Authoring, org_id: str, body: bytes, content_type: str, actor: str,
    ) -> dict[str, Any]:  # fmt: skip
    imported, errors = [], []
    for index, outcome in parse_import(body, content_type):
        if isinstance(outcome, list):
            errors.append({"index": index, "errors": [e.model_dump() for e in outcome]})
            continue
        document = create_playbook(
            org_id=org_id, validated=outcome, actor=actor, reason="import",
            source={"kind": "import"}, authoring=authoring,
        )  # fmt: skip
        imported.append({"id": document["id"], "name": document["name"], "index": index})
    return {"imported": imported, "errors": errors}


def template_definition(template_id: str, store: DocumentStore) -> tuple[TemplateEntry, Validated]:
    try:
        entry = catalog.template_entry(template_id)
    except StopIteration:
        raise NotFound(f"no template '{template_id}'") from None
    seeded = store.get(TEMPLATES, template_id)
    if seeded is not None and isinstance(seeded.get("definition"), dict):
        return entry, load_data(seeded["definition"])
    return entry, catalog.template(template_id)


def clone_template(
    *, authoring: Authoring, org_id: str, template_id: str, actor: str
) -> PlaybookRecord:
    store = authoring.store
    entry, validated = template_definition(template_id, store)
    tier = parse_tier(str(read_settings(store, org_id).get("tier") or "none"))
    if not may_clone_template(entry, tier):
        raise Forbidden(f"the {entry.tier} template '{template_id}' needs a higher tier")
    kind = "tier_template" if entry.kind == "tier_template" else "template"
    base = f"{org_id}_{template_id}"
    for n in range(1, 1000):
        candidate = base if n == 1 else f"{base}_{n}"
        if store.get(PLAYBOOKS, candidate) is None:
            return create_playbook(
                org_id=org_id, validated=validated, actor=actor, reason="template",
                source={"kind": kind, "templateId": template_id}, authoring=authoring,
                playbook_id=candidate,
            )  # fmt: skip
    raise NotFound("no free id for another clone of this template")


def list_templates() -> list[dict[str, Any]]:
    items = []
    for entry in catalog.templates():
        validated = catalog.template(entry.id)
        document = validated.definition.to_document()
        items.append(
            {
                "id": entry.id, "kind": entry.kind, "tier": entry.tier,
                "name": document["name"], "description": document["description"],
                "agent": document["agent"], "category": document["category"],
                "requiresApproval": validated.requires_approval, "definition": document,
            }
        )  # fmt: skip
    return items


def seed_templates(*, force: bool, store: DocumentStore, clock: Clock) -> dict[str, Any]:
    seeded, skipped, failed = [], [], []
    for item in list_templates():
        document = {**item, "orgId": "_system", "seededAt": clock.now()}
        try:
            if force:
                store.set(TEMPLATES, item["id"], document)
            else:
                store.create(TEMPLATES, item["id"], document)
            seeded.append(item["id"])
        except AlreadyExists:
            skipped.append(item["id"])
        except PlaybooksError as error:  # one template's failure is reported, not fatal
            failed.append({"id": item["id"], "error": error.code})
    return {"seeded": seeded, "skipped": skipped, "failed": failed}
