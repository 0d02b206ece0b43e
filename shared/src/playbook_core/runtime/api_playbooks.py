"""Dashboard routes for playbooks (api.md §5): decode, check the caller, call a service, encode."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from flask import Response

from playbook_core.domain.access import default_view
from playbook_core.domain.documents import etag
from playbook_core.domain.errors import BadRequest, Issue, PlaybookInvalid
from playbook_core.domain.loading import Validated, load_data, load_text
from playbook_core.runtime.api import Call, route
from playbook_core.runtime.contract import (
    CloneBody,
    GenerateBody,
    Generated,
    ImportResult,
    Playbook,
    PlaybookInput,
    PlaybookPage,
    RollbackBody,
    ToggleBody,
    Validation,
    Version,
    VersionList,
    shape,
)
from playbook_core.runtime.http import json_response
from playbook_core.service.authoring import (
    generate,
    playbook_list,
    playbooks,
    versions_and_templates,
)
from playbook_core.service.compliance import guard
from playbook_core.service.records import read_settings

ORG = "/v1/orgs/{orgId}"
ONE = ORG + "/playbooks/{playbookId}"
_NOTHING_TO_IMPORT = "nothing to import: send YAML documents, a JSON object or array, or {yaml}"


def _org(call: Call) -> str:
    """The path's org; the router has already checked the caller may act in it (route access)."""
    return call.params["orgId"]


def _validated(call: Call) -> Validated:
    kind, body = call.definition_body()
    if kind == "yaml":
        return load_text(body)
    authored, ignored = playbooks.read_only_part(body)  # what a GET carried: saved back whole
    validated = load_data(authored)
    if not ignored:
        return validated
    notes = [
        Issue(code="ignored_field", path=key, line=None, column=None,
              message=f"'{key}' is managed by the server and was ignored")
        for key in ignored
    ]  # fmt: skip
    return replace(validated, warnings=sorted([*validated.warnings, *notes], key=Issue.sort_key))


def _warnings(call: Call, validated: Validated) -> list[dict[str, Any]]:
    """The definition's warnings and what the compliance rules find in its static text."""
    settings = read_settings(call.app.store, _org(call))
    found = [issue for _, issue in guard.lint_definition(validated, settings)]
    return [w.model_dump() for w in sorted([*validated.warnings, *found], key=Issue.sort_key)]


def _playbook_response(document: Mapping[str, Any], status: int = 200, **extra: Any) -> Response:
    headers = {"ETag": etag(document)}
    if status == 201:
        headers["Location"] = f"/v1/orgs/{document['orgId']}/playbooks/{document['id']}"
    return json_response({**playbooks.public_view(document), **extra}, status, headers)


def _format(call: Call) -> str:
    fmt = call.query("format", "yaml")
    if fmt not in ("yaml", "json"):
        raise BadRequest("format is yaml or json")
    return fmt or "yaml"


def _text(body: str, fmt: str) -> Response:
    mimetype = "application/json" if fmt == "json" else "application/yaml"
    return Response(body, 200, mimetype=mimetype)


@route(
    "GET",
    ORG + "/playbooks",
    summary="List playbooks with stats",
    access="reader",
    answer=PlaybookPage,
)
def list_playbooks(call: Call) -> Response:
    org_id = _org(call)
    view = call.query("view", "auto")
    if view not in ("auto", "brand", "dispensary", "all"):
        raise BadRequest("view is auto, brand, dispensary or all")
    size, token = call.page()
    result = playbook_list.list_playbooks(
        org_id=org_id, view=default_view(call.caller) if view == "auto" else view,  # type: ignore[arg-type]
        status=call.query("status"), category=call.query("category"), agent=call.query("agent"),
        q=call.query("q"), page_size=size, page_token=token,
        store=call.app.store, now=call.app.clock.now(),
    )  # fmt: skip
    return json_response(result)


@route(
    "POST",
    ORG + "/playbooks",
    summary="Create a playbook from YAML or JSON",
    status=201,
    access="editor",
    body=PlaybookInput,
    answer=Playbook,
)
def create_playbook(call: Call) -> Response:
    org_id = _org(call)
    validated = _validated(call)
    document = playbooks.create_playbook(
        org_id=org_id, validated=validated, actor=call.caller.uid, reason="create",
        source={"kind": "user"}, authoring=call.app.authoring,
    )  # fmt: skip
    return _playbook_response(document, 201, warnings=_warnings(call, validated))


@route(
    "POST",
    ORG + "/playbooks:validate",
    summary="Validate a definition without saving",
    access="reader",
    body=PlaybookInput,
    answer=Validation,
)
def validate_playbook(call: Call) -> Response:
    validated = _validated(call)
    return json_response(
        {
            "valid": True, "errors": [], "warnings": _warnings(call, validated),
            "requiresApproval": validated.requires_approval,
            "normalized": validated.definition.to_document(),
        }
    )  # fmt: skip


@route(
    "GET",
    ONE,
    summary="One playbook (Accept: application/yaml for YAML)",
    access="reader",
    answer=Playbook,
)
def get_playbook(call: Call) -> Response:
    org_id = _org(call)
    document = playbooks.load_playbook(call.app.store, org_id, call.params["playbookId"])
    if "yaml" in (call.request.headers.get("Accept") or ""):
        response = _text(versions_and_templates.export_one(document, "yaml"), "yaml")
        response.headers["ETag"] = etag(document)
        return response
    return _playbook_response(document)


@route(
    "PUT",
    ONE,
    summary="Replace the definition (a new version); If-Match honoured",
    access="editor",
    body=PlaybookInput,
    answer=Playbook,
)
def update_playbook(call: Call) -> Response:
    org_id = _org(call)
    validated = _validated(call)
    document = playbooks.write_definition(
        org_id=org_id, playbook_id=call.params["playbookId"], validated=validated,
        actor=call.caller.uid, reason="update", store=call.app.store, clock=call.app.clock,
        if_match=call.request.headers.get("If-Match"),
    )  # fmt: skip
    return _playbook_response(document, warnings=_warnings(call, validated))


@route("DELETE", ONE, summary="Soft delete (confirm=true required)", status=204, access="editor")
def delete_playbook(call: Call) -> Response:
    org_id = _org(call)
    document, repeated = playbooks.delete_playbook(
        org_id=org_id, playbook_id=call.params["playbookId"],
        confirm=call.query("confirm") == "true", actor=call.caller.uid,
        store=call.app.store, clock=call.app.clock,
    )  # fmt: skip
    if repeated:
        return _playbook_response(document)
    return Response(status=204, headers={"ETag": etag(document)})


def _status_change(call: Call, operation: str) -> Response:
    org_id = _org(call)
    document = playbooks.change_status(
        org_id=org_id, playbook_id=call.params["playbookId"], operation=operation,  # type: ignore[arg-type]
        actor=call.caller.uid, store=call.app.store, clock=call.app.clock,
    )  # fmt: skip
    return _playbook_response(document)


@route(
    "POST",
    ONE + ":toggle",
    summary="Enable or disable; listeners and schedules follow",
    access="editor",
    body=ToggleBody,
    answer=Playbook,
)
def toggle_playbook(call: Call) -> Response:
    enabled = call.body(ToggleBody).enabled
    return _status_change(call, "toggle_on" if enabled else "toggle_off")


@route(
    "POST",
    ONE + ":restore",
    summary="Undo a delete within 30 days",
    access="editor",
    answer=Playbook,
)
def restore_playbook(call: Call) -> Response:
    return _status_change(call, "restore")


@route(
    "POST",
    ONE + ":duplicate",
    summary="Copy as <id>_copy_<n>, disabled",
    status=201,
    access="editor",
    answer=Playbook,
)
def duplicate_playbook(call: Call) -> Response:
    org_id = _org(call)
    document = playbooks.duplicate_playbook(
        org_id=org_id, playbook_id=call.params["playbookId"], actor=call.caller.uid,
        authoring=call.app.authoring,
    )  # fmt: skip
    return _playbook_response(document, 201)


@route(
    "GET",
    ONE + "/versions",
    summary="Version history, newest first",
    access="reader",
    answer=VersionList,
)
def list_versions(call: Call) -> Response:
    org_id = _org(call)
    versions = versions_and_templates.list_versions(
        org_id=org_id, playbook_id=call.params["playbookId"], store=call.app.store
    )
    return json_response({"versions": [shape(Version, version) for version in versions]})


@route(
    "GET",
    ONE + "/versions/{version}",
    summary="One immutable version",
    access="reader",
    answer=Version,
)
def get_version(call: Call) -> Response:
    org_id = _org(call)
    if not call.params["version"].isdigit():
        raise BadRequest("version is a positive number")
    version = versions_and_templates.get_version(
        org_id=org_id, playbook_id=call.params["playbookId"],
        version=int(call.params["version"]), store=call.app.store,
    )  # fmt: skip
    return json_response(shape(Version, version))


@route(
    "POST",
    ONE + ":rollback",
    summary="A new version equal to version n",
    access="editor",
    body=RollbackBody,
    answer=Playbook,
)
def rollback_playbook(call: Call) -> Response:
    org_id = _org(call)
    version = call.body(RollbackBody).version
    document = versions_and_templates.rollback(
        org_id=org_id, playbook_id=call.params["playbookId"], version=version,
        actor=call.caller.uid, store=call.app.store, clock=call.app.clock,
    )  # fmt: skip
    return _playbook_response(document)


@route("GET", ONE + ":export", summary="Download one playbook as YAML or JSON", access="reader")
def export_playbook(call: Call) -> Response:
    org_id = _org(call)
    fmt = _format(call)
    document = playbooks.load_playbook(call.app.store, org_id, call.params["playbookId"])
    return _text(versions_and_templates.export_one(document, fmt), fmt)


@route(
    "GET", ORG + "/playbooks:export", summary="Download every playbook of the org", access="reader"
)
def export_all(call: Call) -> Response:
    org_id = _org(call)
    fmt = _format(call)
    documents, cursor = [], None
    now = call.app.clock.now()
    while True:
        page = playbook_list.list_playbooks(
            org_id=org_id, view="all", status=None, category=None, agent=None, q=None,
            page_size=100, page_token=cursor, store=call.app.store, now=now,
        )  # fmt: skip
        documents += page["playbooks"]
        cursor = page["nextPageToken"]
        if cursor is None:
            break
    return _text(versions_and_templates.export_many(documents, fmt), fmt)


@route(
    "POST",
    ORG + "/playbooks:import",
    summary="Import YAML or JSON, disabled",
    status=201,
    access="editor",
    body=PlaybookInput,
    answer=ImportResult,
)
def import_playbooks(call: Call) -> Response:
    org_id = _org(call)
    kind, raw = call.definition_body(many=True)
    if not raw.strip():
        raise BadRequest(_NOTHING_TO_IMPORT)
    content_type = "application/yaml" if kind == "yaml" else "application/json"
    result = versions_and_templates.import_playbooks(
        org_id=org_id, body=raw, content_type=content_type,
        actor=call.caller.uid, authoring=call.app.authoring,
    )  # fmt: skip
    if result["imported"]:
        return json_response(result, 201)
    if not result["errors"]:
        raise BadRequest(_NOTHING_TO_IMPORT)
    # Nothing imported is a failed validation: problem+json like every error (api.md §4).
    raise PlaybookInvalid(_import_issues(result["errors"]))


def _import_issues(failures: list[dict[str, Any]]) -> list[Issue]:
    """One issue per problem, its path prefixed with the document's index: `[1].steps[0].action`."""
    issues = []
    for failed in failures:
        prefix = f"[{failed['index']}]"
        for issue in failed["errors"]:
            path = f"{prefix}.{issue['path']}" if issue["path"] else prefix
            issues.append(Issue(**{**issue, "path": path}))
    return issues


@route(
    "POST",
    ORG + "/playbooks:clone",
    summary="Clone a template",
    status=201,
    access="editor",
    body=CloneBody,
    answer=Playbook,
)
def clone_template(call: Call) -> Response:
    org_id = _org(call)
    template_id = call.body(CloneBody).templateId
    document = versions_and_templates.clone_template(
        org_id=org_id, template_id=template_id, actor=call.caller.uid,
        authoring=call.app.authoring,
    )  # fmt: skip
    return _playbook_response(document, 201)


@route(
    "POST",
    ORG + "/playbooks:generate",
    summary="Natural language to a validated draft",
    status=201,
    access="editor",
    body=GenerateBody,
    answer=Generated,
)
def generate_playbook(call: Call) -> Response:
    org_id = _org(call)
    body = call.body(GenerateBody)
    prompt = body.prompt.strip()
    if not prompt:
        raise BadRequest('send {"prompt": "Create a playbook for ..."} (1-4000 characters)')
    if body.agent == "system":
        raise BadRequest("unknown agent 'system'")
    result = generate.generate_playbook(
        org_id=org_id, prompt=prompt, agent=body.agent, actor=call.caller.uid,
        harness=call.app.harness(), authoring=call.app.authoring,
    )  # fmt: skip
    return json_response({**result, "playbook": playbooks.public_view(result["playbook"])}, 201)
