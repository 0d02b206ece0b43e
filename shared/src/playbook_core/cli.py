"""The `playbooks` console script: validate files, print the JSON Schema, list the catalog."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from playbook_core import catalog
from playbook_core.adapters.firebase_auth import local_claims, unsigned_token
from playbook_core.domain.errors import Issue, PlaybookInvalid
from playbook_core.domain.loading import load_text
from playbook_core.domain.playbook import PlaybookDefinition
from playbook_core.domain.tiers import TIERS, ids_for_tier, parse_tier


def _line(filename: str, issue: Issue, kind: str = "") -> str:
    where = f"{filename}:{issue.line or 0}:{issue.column or 0}"
    path = issue.path or "<document>"
    return f"{where}: {kind}{path}: {issue.message} [{issue.code}]"


def validate(files: list[str]) -> int:
    failed = False
    for filename in files:
        try:
            result = load_text(Path(filename).read_bytes())
        except OSError as exc:
            print(f"{filename}:0:0: <document>: cannot read the file: {exc.strerror} [unreadable]")
            failed = True
            continue
        except PlaybookInvalid as invalid:
            failed = True
            for issue in invalid.errors:
                print(_line(filename, issue))
            continue
        for warning in result.warnings:
            print(_line(filename, warning, "warning: "))
        print(f"{filename}: OK")
    return 1 if failed else 0


def schema() -> int:
    document = PlaybookDefinition.model_json_schema(by_alias=True)
    document = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://bakedbot.ai/schemas/playbook.json",
        **document,
    }
    print(json.dumps(document, indent=2, sort_keys=True))
    return 0


def list_catalog(tier_name: str | None) -> int:
    registry = list(catalog.registry())
    if tier_name is None:
        ids = [entry.id for entry in registry]
    else:
        tier = parse_tier(tier_name)
        if tier is None:
            print(f"unknown tier {tier_name!r}; use one of {', '.join(TIERS)}", file=sys.stderr)
            return 2
        ids = ids_for_tier(registry, tier)
    print("\n".join(ids))
    return 0


def token(org_ids: list[str], role: str, uid: str, approver: bool, project: str) -> int:
    """An unsigned Firebase-emulator token for the local stack (refused by deployed functions)."""
    extra = {"playbookApprover": True} if approver else {}
    print(unsigned_token(local_claims(project, uid, role, org_ids, **extra)))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="playbooks", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser("validate", help="validate playbook YAML files")
    check.add_argument("files", nargs="+")
    commands.add_parser("schema", help="print the JSON Schema of the playbook document")
    listing = commands.add_parser("catalog", help="list system registry ids")
    listing.add_argument("--tier", help="scout, pro, growth or empire (enterprise = empire)")
    local = commands.add_parser("token", help="print a local (unsigned) dashboard token")
    local.add_argument("--org", action="append", default=[], help="org id; repeat for several")
    local.add_argument("--role", default="brand_admin")
    local.add_argument("--uid", default="local-user")
    local.add_argument("--approver", action="store_true", help="add playbookApprover: true")
    local.add_argument("--project", default="demo-playbooks")
    args = parser.parse_args(argv)
    if args.command == "token":
        return token(args.org, args.role, args.uid, args.approver, args.project)
    if args.command == "validate":
        return validate(args.files)
    if args.command == "schema":
        return schema()
    return list_catalog(args.tier)


if __name__ == "__main__":
    sys.exit(main())
