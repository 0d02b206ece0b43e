"""Terraform gives each deployed function what deployed-mode configuration needs, and nothing it
refuses.

infra/**/*.tf is parsed with python-hcl2 and the expressions the function resource depends on are
evaluated here, offline and without Terraform: locals, variable defaults, module inputs and
outputs, for expressions and the few functions they call. Values only known after apply (resource
attributes, variables without a default) are UNKNOWN: set, but to a value nobody knows yet.
Anything outside that small language fails the test with the expression it could not read, rather
than guessing.

Each function is read twice: with the variables' defaults (what every deployment sets) and with
every optional or scalar variable given (what a deployment may set). Checked per function:
- every setting it needs is set, and every setting it may need can be set by a variable;
- exactly the secrets its code reads are mounted (a credential nothing reads is not mounted);
- nothing config refuses when deployed, nor any local-only setting, is ever set.
What each function needs comes from the code: PROVIDER_USERS and INTERNAL_CALLERS
(runtime/bootstrap.py), plus the tables below for what no single place in the code declares.
"""

from __future__ import annotations

import json
import shutil
import typing
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import hcl2
import pytest
import yaml
from hcl2.query import BlockView, DocumentView
from hcl2.rules.containers import ObjectElemKeyExpressionRule, ObjectRule, TupleRule
from hcl2.rules.expressions import BinaryOpRule, ConditionalRule, ExprTermRule, UnaryOpRule
from hcl2.rules.for_expressions import ForObjectExprRule, ForTupleExprRule
from hcl2.rules.functions import FunctionCallRule
from hcl2.rules.indexing import GetAttrExprTermRule, IndexExprTermRule
from hcl2.rules.literal_rules import FloatLitRule, IdentifierRule, IntLitRule, LiteralValueRule
from hcl2.rules.strings import InterpolationRule, StringRule
from hcl2.utils import process_escape_sequences

from playbook_core.config import Caller, ConfigError, Settings
from playbook_core.runtime.bootstrap import INTERNAL_CALLERS, PROVIDER_USERS
from playbook_core.runtime.manifest import load_manifest
from tests.unit.test_infra import LOCAL_OR_PLATFORM, secret_settings, settings_env
from tests.unit.test_provider_users import PROVIDER_SECRETS

ROOT = Path(__file__).parents[2]
INFRA = ROOT / "infra"
FUNCTIONS = [f.name for f in load_manifest().functions]

# --- what deployed configuration needs, per function ------------------------------------------

# Every deployed instance: _build_google builds Firestore, Pub/Sub and Cloud Tasks clients from these.
EVERY_FUNCTION = {
    "GOOGLE_CLOUD_PROJECT": "every client's project and the Firebase token audience; the default "
    "is the local demo project",
    "PLAYBOOKS_FUNCTIONS_BASE_URL": "task targets and the audience of the OIDC tokens checked and "
    "attached; the default is the local gateway",
    "PLAYBOOKS_REGION": "the Cloud Tasks client's location; var.region can move the deployment",
    "PLAYBOOKS_TASKS_INVOKER": "the identity the Cloud Tasks client attaches to every task",
    "PLAYBOOKS_EVENTS_TOPIC": "the topic Terraform created from the manifest",
    "PLAYBOOKS_STEPS_QUEUE": "the queue Terraform created from the manifest",
    "PLAYBOOKS_STEP_SHARDS": "how many shards of it Terraform created",
}
# The identity an internal entry point accepts from each caller (Settings.invoker).
INVOKER_ENV: dict[str, str] = {
    "cloud_tasks": "PLAYBOOKS_TASKS_INVOKER",
    "cloud_scheduler": "PLAYBOOKS_SCHEDULER_INVOKER",
    "pubsub_push": "PLAYBOOKS_PUSH_INVOKER",
}
# Plain settings a provider's users read that a deployer may set (unset: the Settings default,
# or for Blackleaf and the harness "not configured").
PROVIDER_ENV: dict[str, tuple[str, ...]] = {
    "mailjet": ("MAILJET_API_BASE", "MAILJET_FROM_EMAIL", "MAILJET_FROM_NAME"),
    "blackleaf": ("BLACKLEAF_API_BASE",),
    "harness": ("AGENT_HARNESS_URL",),
    "slack": (),
}
# Secrets read outside the providers' clients: secret → (its readers, where the code reads it).
OTHER_SECRETS: dict[str, tuple[tuple[str, ...], str]] = {
    "SHOPIFY_WEBHOOK_SECRET": (("webhook_shopify",), "App.receive_webhook: HMAC fallback"),
    "WOOCOMMERCE_WEBHOOK_SECRET": (("webhook_woocommerce",), "App.receive_webhook: HMAC fallback"),
    "CRON_SECRET": (("playbooks_api",), "runtime/api.authenticate: X-Cron-Secret system calls"),
    "UNSUBSCRIBE_KEY": (
        ("execute_step", "email_unsubscribe"),
        "App.unsubscribe_links signs links in email; App.unsubscribe_claim verifies them",
    ),
}
# Other plain settings a deployer may set for the functions that read them.
OTHER_ENV: dict[str, tuple[tuple[str, ...], str]] = {
    "PLAYBOOKS_PUBLIC_BASE_URL": (
        ("execute_step", "playbooks_api"),
        "unsubscribe links in email; the inbound SMS webhook URL shown to editors",
    ),
}
# Refused by Settings when K_SERVICE is set, with a value it refuses.
REFUSED_WHEN_DEPLOYED = {
    "PLAYBOOKS_BACKEND": "embedded",
    "FIREBASE_AUTH_EMULATOR_HOST": "127.0.0.1:9099",
    "PLAYBOOKS_LOCAL_OIDC": "true",
}


@dataclass(frozen=True)
class Needs:
    required: frozenset[str]  # set by every deployment
    configurable: frozenset[str]  # set when the deployer gives the Terraform variable
    secrets: frozenset[str]  # mounted, and no other secret


def needs(function: str) -> Needs:
    required = set(EVERY_FUNCTION) | {INVOKER_ENV[c] for c in INTERNAL_CALLERS.get(function, ())}
    configurable, secrets = set(), set()
    for provider, users in PROVIDER_USERS.items():
        if function in users:
            configurable |= set(PROVIDER_ENV[provider])
            secrets |= set(PROVIDER_SECRETS[provider])
    secrets |= {name for name, (readers, _) in OTHER_SECRETS.items() if function in readers}
    configurable |= {name for name, (readers, _) in OTHER_ENV.items() if function in readers}
    return Needs(frozenset(required), frozenset(configurable), frozenset(secrets))


# --- a small HCL evaluator ------------------------------------------------------------------------


class Unknown:
    """A value Terraform knows only at apply (or the deployer gives): not null, not readable."""

    def __repr__(self) -> str:
        return "UNKNOWN"


UNKNOWN = Unknown()
MODULE_META = {"source", "version", "providers", "depends_on", "count", "for_each"}


class Unreadable(Exception):
    """An expression outside what this reader evaluates: read it, then extend the reader."""


@dataclass
class Module:
    """One Terraform module directory: its blocks by kind, from every .tf file in it."""

    directory: Path
    locals: dict[str, typing.Any] = field(default_factory=dict)
    variables: dict[str, BlockView] = field(default_factory=dict)
    outputs: dict[str, BlockView] = field(default_factory=dict)
    calls: dict[str, BlockView] = field(default_factory=dict)
    resources: dict[tuple[str, str], BlockView] = field(default_factory=dict)


@cache
def parse_module(directory: Path) -> Module:
    module = Module(directory)
    for path in sorted(directory.glob("*.tf")):
        for block in DocumentView(hcl2.parses(path.read_text(encoding="utf-8"))).blocks():
            labels = block.name_labels
            match block.block_type:
                case "locals":
                    for attribute in block.body.attributes():
                        module.locals[attribute.name] = attribute.value_node.raw
                case "variable":
                    module.variables[labels[0]] = block
                case "output":
                    module.outputs[labels[0]] = block
                case "module":
                    module.calls[labels[0]] = block
                case "resource" | "data":
                    module.resources[(labels[0], labels[1])] = block
    return module


def attribute(block: BlockView, name: str) -> typing.Any:
    found = block.body.attribute(name)
    if found is None:
        raise Unreadable(f"{block.labels} has no attribute {name}")
    return found.value_node.raw


class Namespace:
    def __init__(self, lookup: typing.Callable[[str], typing.Any]) -> None:
        self.lookup = lookup


class Instance:
    """A module as Terraform instantiates it: input values, and a policy for unset variables.

    `configured`: every optional (null default) or scalar variable is UNKNOWN, as a deployer may
    give it any value; otherwise variables take their defaults.
    """

    def __init__(
        self, module: Module, inputs: dict[str, typing.Any], *, configured: bool, root: Path
    ) -> None:
        self.module, self.inputs, self.configured, self.root = module, inputs, configured, root
        self.cached_locals: dict[str, typing.Any] = {}
        self.children: dict[str, Instance] = {}
        resource_types = {kind for kind, _ in module.resources}
        self.roots: dict[str, typing.Any] = {
            "local": Namespace(self.local),
            "var": Namespace(self.var),
            "module": Namespace(lambda name: Namespace(self.child(name).output)),
            "path": {"module": str(module.directory), "root": str(root)},
            **dict.fromkeys(resource_types | {"data"}, UNKNOWN),
        }

    def local(self, name: str) -> typing.Any:
        if name not in self.cached_locals:
            self.cached_locals[name] = self.value(self.module.locals[name])
        return self.cached_locals[name]

    def var(self, name: str) -> typing.Any:
        if name in self.inputs:
            return self.inputs[name]
        block = self.module.variables[name]
        default = block.body.attribute("default")
        if default is None:
            return UNKNOWN  # required: the deployer gives a value
        value = self.value(default.value_node.raw)
        scalar = isinstance(value, str | int | float | bool)
        return UNKNOWN if self.configured and (value is None or scalar) else value

    def child(self, name: str) -> Instance:
        if name not in self.children:
            call = self.module.calls[name]
            source = self.value(attribute(call, "source"))
            inputs = {
                a.name: self.value(a.value_node.raw)
                for a in call.body.attributes()
                if a.name not in MODULE_META
            }
            module = parse_module((self.module.directory / source).resolve())
            self.children[name] = Instance(
                module, inputs, configured=self.configured, root=self.root
            )
        return self.children[name]

    def output(self, name: str) -> typing.Any:
        return self.value(attribute(self.module.outputs[name], "value"))

    def value(self, node: typing.Any, scope: dict[str, typing.Any] | None = None) -> typing.Any:  # noqa: C901, PLR0911, PLR0912 - one branch per kind of expression
        scope = scope or {}
        match node:
            case ExprTermRule():
                return self.value(node.expression, scope)
            case LiteralValueRule() | IntLitRule() | FloatLitRule():
                return node.serialize()  # null, true, false, numbers
            case StringRule():
                return self.template(node, scope)
            case IdentifierRule():
                name = node.serialize()
                if name in scope:
                    return scope[name]
                if name in self.roots:
                    return self.roots[name]
            case GetAttrExprTermRule():
                base = self.value(node.expr_term, scope)
                return get(base, node.get_attr.identifier.serialize())
            case IndexExprTermRule():
                base = self.value(node.children[0], scope)
                return get(base, self.value(node.children[1].index_expression, scope))
            case ObjectRule():
                return {
                    self.key(element.key, scope): self.value(element.expression, scope)
                    for element in node.elements
                }
            case TupleRule():
                return [self.value(element, scope) for element in node.elements]
            case ForTupleExprRule() | ForObjectExprRule():
                return self.comprehension(node, scope)
            case FunctionCallRule():
                return self.call(node, scope)
            case BinaryOpRule():
                operator = str(node.binary_term.binary_operator.serialize()).strip()
                left = self.value(node.expr_term, scope)
                return binary(operator, left, lambda: self.value(node.binary_term.expr_term, scope))
            case UnaryOpRule() if node.operator == "!":
                operand = self.value(node.expr_term, scope)
                return UNKNOWN if operand is UNKNOWN else not operand
            case ConditionalRule():
                condition = self.value(node.condition, scope)
                if condition is UNKNOWN:
                    return UNKNOWN
                return self.value(node.if_true if condition else node.if_false, scope)
        raise Unreadable(f"cannot evaluate {node.serialize()!r} in {self.module.directory}")

    def key(self, key: typing.Any, scope: dict[str, typing.Any]) -> typing.Any:
        if isinstance(key, ObjectElemKeyExpressionRule):
            return self.value(key.expression, scope)
        inner = key.value
        return self.template(inner, scope) if isinstance(inner, StringRule) else inner.serialize()

    def template(self, node: StringRule, scope: dict[str, typing.Any]) -> typing.Any:
        parts = []
        for part in node.string_parts:
            content = part.content
            if isinstance(content, InterpolationRule):
                parts.append(self.value(content.expression, scope))
            else:
                parts.append(process_escape_sequences(str(content.serialize())))
        if any(p is UNKNOWN for p in parts):
            return UNKNOWN
        if any(p is None for p in parts):
            raise Unreadable(f"null in the template {node.serialize()}")  # a Terraform error too
        return "".join(str(p) for p in parts)

    def comprehension(self, node: typing.Any, scope: dict[str, typing.Any]) -> typing.Any:
        intro = node.for_intro
        collection = self.value(intro.iterable, scope)
        if collection is UNKNOWN or getattr(node, "ellipsis", None) is not None:
            raise Unreadable(f"cannot iterate {node.serialize()}")
        items = collection.items() if isinstance(collection, dict) else enumerate(collection)
        pairs = sorted(items) if isinstance(collection, dict) else items  # maps iterate by key
        first, second = intro.first_iterator.serialize(), intro.second_iterator
        tuple_result, object_result = [], {}
        for key, item in pairs:
            inner = {**scope, first: item}
            if second is not None:
                inner = {**scope, first: key, second.serialize(): item}
            if node.condition is not None:
                keep = self.value(node.condition.condition_expr, inner)
                if keep is UNKNOWN:
                    raise Unreadable(f"unknown condition in {node.serialize()}")
                if not keep:
                    continue
            if isinstance(node, ForTupleExprRule):
                tuple_result.append(self.value(node.value_expr, inner))
            else:
                object_result[self.value(node.key_expr, inner)] = self.value(node.value_expr, inner)
        return tuple_result if isinstance(node, ForTupleExprRule) else object_result

    def call(self, node: FunctionCallRule, scope: dict[str, typing.Any]) -> typing.Any:
        name = "::".join(i.serialize() for i in node.identifiers)
        nodes = node.arguments.arguments if node.arguments is not None else []
        if name == "try":  # the first argument that evaluates
            for argument in nodes:
                try:
                    return self.value(argument, scope)
                except (KeyError, IndexError, TypeError):
                    continue
            raise Unreadable(f"no argument of {node.serialize()} evaluates")
        args = [self.value(argument, scope) for argument in nodes]
        if node.arguments is not None and node.arguments.has_ellipsis:
            args = [*args[:-1], *args[-1]]
        if name == "coalesce":  # UNKNOWN is not null: it can be the value coalesce picks
            return coalesce(args)
        if name not in FUNCTIONS_READ or UNKNOWN in args:
            raise Unreadable(f"cannot evaluate {node.serialize()}")
        return FUNCTIONS_READ[name](*args)


def get(base: typing.Any, key: typing.Any) -> typing.Any:
    if base is UNKNOWN or key is UNKNOWN:
        return UNKNOWN
    if isinstance(base, Namespace):
        return base.lookup(key)
    if isinstance(base, list):
        return base[int(key)]
    return base[key]  # KeyError: Terraform's "no such attribute", caught by try()


def binary(operator: str, left: typing.Any, right: typing.Callable[[], typing.Any]) -> typing.Any:
    if operator in {"&&", "||"}:
        if left is not UNKNOWN and bool(left) == (operator == "||"):
            return left  # short circuit
        other = right()
        return UNKNOWN if UNKNOWN in (left, other) else other
    other = right()
    if operator in {"==", "!="}:
        if None in (left, other):  # UNKNOWN is never null
            return (left is other) == (operator == "==")
        if UNKNOWN in (left, other):
            return UNKNOWN
        return (left == other) == (operator == "==")
    raise Unreadable(f"operator {operator}")


def coalesce(args: list[typing.Any]) -> typing.Any:
    for arg in args:
        if arg is not None and arg != "":
            return arg
    raise Unreadable("coalesce() of nothing but nulls")  # a Terraform error too


def distinct(values: list[typing.Any]) -> list[typing.Any]:
    return [v for i, v in enumerate(values) if v not in values[:i]]


def one(values: list[typing.Any]) -> typing.Any:
    if len(values) > 1:
        raise Unreadable("one() of more than one value")
    return values[0] if values else None


FUNCTIONS_READ: dict[str, typing.Callable[..., typing.Any]] = {
    "keys": sorted,
    "values": lambda mapping: [mapping[k] for k in sorted(mapping)],
    "sort": sorted,
    "toset": lambda values: sorted(set(values)),
    "contains": lambda collection, value: value in collection,
    "distinct": distinct,
    "concat": lambda *lists: [v for each in lists for v in each],
    "merge": lambda *maps: {k: v for mapping in maps for k, v in mapping.items()},
    "one": one,
    "length": len,
    "range": lambda count: list(range(int(count))),
    "file": lambda path: Path(path).read_text(encoding="utf-8"),
    "yamldecode": yaml.safe_load,
    "jsondecode": json.loads,
}


# --- what Terraform gives each function ------------------------------------------------------------


@dataclass(frozen=True)
class Deployed:
    env: dict[str, typing.Any]  # plain environment variables: name → value (or UNKNOWN)
    secrets: frozenset[str]  # environment variables mounted from Secret Manager


def deployed(infra: Path, *, configured: bool) -> dict[str, Deployed]:
    """Function → what `google_cloudfunctions2_function.function` sets for it."""
    root = Instance(parse_module(infra), {}, configured=configured, root=infra)
    resource = root.module.resources[("google_cloudfunctions2_function", "function")]
    found = {}
    for name, value in root.value(attribute(resource, "for_each")).items():
        scope = {"each": {"key": name, "value": value}}
        (service,) = resource.body.blocks("service_config")
        env_node = service.body.attribute("environment_variables")
        env = root.value(env_node.value_node.raw, scope) if env_node else {}
        assert isinstance(env, dict), f"{name}: environment_variables is not a map"
        secrets = {
            root.value(attribute(block, "key"), scope)
            for block in service.body.blocks("secret_environment_variables")
        }
        for block in service.body.blocks("dynamic", "secret_environment_variables"):
            (content,) = block.body.blocks("content")
            for item in root.value(attribute(block, "for_each"), scope):
                inner = {**scope, "secret_environment_variables": {"key": item, "value": item}}
                secrets.add(root.value(attribute(content, "key"), inner))
        assert UNKNOWN not in secrets, f"{name}: a secret environment variable has no known name"
        found[name] = Deployed({k: v for k, v in env.items() if v is not None}, frozenset(secrets))
    return found


@cache
def both(infra: Path = INFRA) -> tuple[dict[str, Deployed], dict[str, Deployed]]:
    """What Terraform gives each function with the variables' defaults, and what it may give
    once the deployer sets the optional ones."""
    return deployed(infra, configured=False), deployed(infra, configured=True)


def missing_needs(at_defaults: dict[str, Deployed], configured: dict[str, Deployed]) -> list[str]:
    """What a function needs and is not given, and secrets it is given but never reads."""
    problems = []
    for function in FUNCTIONS:
        need, given, given_if_set = needs(function), at_defaults[function], configured[function]
        problems += [f"{function}: {n} is not set" for n in sorted(need.required - set(given.env))]
        problems += [
            f"{function}: {n} cannot be set (no Terraform variable reaches it)"
            for n in sorted(need.configurable - set(given_if_set.env))
        ]
        problems += [
            f"{function}: secret {s} is not mounted" for s in sorted(need.secrets - given.secrets)
        ]
        problems += [
            f"{function}: secret {s} is mounted but never read there"
            for s in sorted(given.secrets - need.secrets)
        ]
    return problems


def never_deployed(name: str) -> bool:
    return name in LOCAL_OR_PLATFORM or name.endswith("_EMULATOR_HOST")


def refused_settings(deployments: tuple[dict[str, Deployed], ...]) -> list[str]:
    """Settings config refuses when deployed, or that only a developer machine sets."""
    problems = []
    for functions in deployments:
        for function, given in functions.items():
            problems += [
                f"{function}: {name} is local-only or refused when deployed"
                for name in sorted(set(given.env) | given.secrets)
                if never_deployed(name)
            ]
            backend = given.env.get("PLAYBOOKS_BACKEND", "emulators")
            if backend != "emulators":
                problems.append(f"{function}: PLAYBOOKS_BACKEND is {backend!r}, not 'emulators'")
    return problems


# --- the tests ---------------------------------------------------------------------------------


def test_every_terraform_file_parses_and_the_reader_finds_the_function_resource():
    files = sorted(INFRA.rglob("*.tf"))
    assert {p.parent for p in files} >= {INFRA, INFRA / "modules" / "manifest"}
    for path in files:
        assert hcl2.parses(path.read_text(encoding="utf-8")), path
    assert ("google_cloudfunctions2_function", "function") in parse_module(INFRA).resources


def test_terraform_deploys_one_function_per_manifest_entry():
    for functions in both():
        assert sorted(functions) == sorted(FUNCTIONS)


@pytest.mark.parametrize("function", FUNCTIONS)
def test_each_function_gets_what_deployed_configuration_needs(function):
    problems = missing_needs(*both())
    assert not [p for p in problems if p.startswith(f"{function}:")]


def test_no_function_gets_a_setting_refused_or_local_only():
    assert not refused_settings(both())
    # The reading sees what infra does set (an empty reading would pass the line above).
    at_defaults, _ = both()
    assert {d.env.get("PLAYBOOKS_BACKEND") for d in at_defaults.values()} == {"emulators"}


def test_every_variable_terraform_sets_is_a_setting_and_secrets_are_never_plain():
    secrets, plain = secret_settings(), set(settings_env()) - secret_settings()
    for functions in both():
        for function, given in functions.items():
            assert set(given.env) <= plain, function
            assert given.secrets <= secrets, function


def _apply_time_value(value: typing.Any, name: str) -> str:
    """What Cloud Run would pass: the value Terraform knows, else one of the setting's type."""
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    field_info = Settings.model_fields.get(name.removeprefix("PLAYBOOKS_").lower())
    if field_info is not None and field_info.annotation in (int, float):
        return "7"
    return f"https://{name.lower()}.example"


def test_settings_accept_each_functions_deployed_environment(monkeypatch):
    """Each function's environment as Cloud Run would start it: config accepts it, and it is not
    the local defaults."""
    local = Settings()
    _, configured = both()
    for function, given in configured.items():
        for name in settings_env():
            monkeypatch.delenv(name, raising=False)
        for name, value in given.env.items():
            monkeypatch.setenv(name, _apply_time_value(value, name))
        for name in given.secrets:
            monkeypatch.setenv(name, f"{name.lower()}-value-of-at-least-32-characters")
        monkeypatch.setenv("K_SERVICE", function.replace("_", "-"))
        settings = Settings()
        assert settings.backend == "emulators"
        assert settings.project != local.project, function
        assert settings.functions_base_url != local.functions_base_url, function


@pytest.mark.parametrize("name", sorted(REFUSED_WHEN_DEPLOYED))
def test_config_refuses_what_the_infra_check_keeps_out(name, monkeypatch):
    for each in settings_env():
        monkeypatch.delenv(each, raising=False)
    monkeypatch.setenv(name, REFUSED_WHEN_DEPLOYED[name])
    assert Settings()  # accepted on a developer machine
    monkeypatch.setenv("K_SERVICE", "execute-step")
    with pytest.raises(ConfigError, match=name):
        Settings()
    assert name == "PLAYBOOKS_BACKEND" or never_deployed(name)


def test_the_requirement_tables_name_real_functions_settings_and_callers(monkeypatch):
    assert set(INVOKER_ENV) == set(typing.get_args(Caller))
    for caller, name in INVOKER_ENV.items():
        monkeypatch.setenv(name, f"{caller}@example.iam.gserviceaccount.com")
        assert Settings().invoker(caller) == f"{caller}@example.iam.gserviceaccount.com"
    assert set(PROVIDER_ENV) == set(PROVIDER_USERS)
    named = {*EVERY_FUNCTION, *INVOKER_ENV.values(), *OTHER_ENV, *OTHER_SECRETS}
    named |= {n for names in PROVIDER_ENV.values() for n in names}
    assert named <= set(settings_env())
    assert not {n for n in named if never_deployed(n)}
    for readers, _why in (*OTHER_SECRETS.values(), *OTHER_ENV.values()):
        assert set(readers) <= set(FUNCTIONS)
    # Every secret setting has a reader here, so a new one needs a decision about who mounts it.
    assert {s for f in FUNCTIONS for s in needs(f).secrets} == secret_settings()


# --- the reading catches what it guards, on a broken copy of infra/ ------------------------------

HARNESS_URL = "      AGENT_HARNESS_URL            = var.agent_harness_url\n"
BROKEN_NEEDS = {
    "a reader's secret unmounted": (
        "modules/manifest/main.tf",
        'UNSUBSCRIBE_KEY            = ["execute_step", "email_unsubscribe"]',
        'UNSUBSCRIBE_KEY            = ["execute_step"]',
        "email_unsubscribe: secret UNSUBSCRIBE_KEY is not mounted",
    ),
    "a secret left out of mounted_secrets": (
        "variables.tf",
        '    "UNSUBSCRIBE_KEY",\n',
        "",
        "execute_step: secret UNSUBSCRIBE_KEY is not mounted",
    ),
    "a secret mounted where nothing reads it": (
        "modules/manifest/main.tf",
        'CRON_SECRET                = ["playbooks_api"',
        'CRON_SECRET                = ["playbooks_api", "webhook_shopify"',
        "webhook_shopify: secret CRON_SECRET is mounted but never read there",
    ),
    "a required setting from a variable null by default": (
        "locals.tf",
        "PLAYBOOKS_FUNCTIONS_BASE_URL = local.functions_base_url",
        "PLAYBOOKS_FUNCTIONS_BASE_URL = var.public_base_url",
        "cron_playbooks: PLAYBOOKS_FUNCTIONS_BASE_URL is not set",
    ),
    "an invoker a caller check needs": (
        "locals.tf",
        "PLAYBOOKS_PUSH_INVOKER",
        "PLAYBOOKS_PUSH_IDENTITY",
        "on_event_published: PLAYBOOKS_PUSH_INVOKER is not set",
    ),
    "a provider setting no variable reaches": (
        "locals.tf",
        HARNESS_URL,
        "",
        "playbooks_api: AGENT_HARNESS_URL cannot be set (no Terraform variable reaches it)",
    ),
}
BROKEN_REFUSALS = {
    "the embedded backend": (
        "locals.tf",
        'PLAYBOOKS_BACKEND            = "emulators"',
        'PLAYBOOKS_BACKEND            = "embedded"',
        "execute_step: PLAYBOOKS_BACKEND is 'embedded', not 'emulators'",
    ),
    "a backend a deployer may change": (
        "locals.tf",
        'PLAYBOOKS_BACKEND            = "emulators"',
        "PLAYBOOKS_BACKEND            = var.mailjet_from_name",
        "execute_step: PLAYBOOKS_BACKEND is UNKNOWN, not 'emulators'",
    ),
    "an emulator host set only when its variable is": (
        "locals.tf",
        HARNESS_URL,
        HARNESS_URL + "      FIREBASE_AUTH_EMULATOR_HOST  = var.agent_harness_url\n",
        "execute_step: FIREBASE_AUTH_EMULATOR_HOST is local-only or refused when deployed",
    ),
}


def broken_copy(tmp_path: Path, path: str, old: str, new: str) -> Path:
    copy = tmp_path / "infra"
    shutil.copytree(INFRA, copy, ignore=shutil.ignore_patterns(".terraform*", "*.tfstate*"))
    (tmp_path / "functions").mkdir()
    shutil.copy(ROOT / "functions" / "manifest.yaml", tmp_path / "functions")  # the module reads it
    target = copy / path
    text = target.read_text(encoding="utf-8")
    assert text.count(old) == 1, f"{path} should contain {old!r} once: update this test"
    target.write_text(text.replace(old, new), encoding="utf-8")
    return copy


@pytest.mark.parametrize("case", sorted(BROKEN_NEEDS))
def test_a_missing_or_extra_setting_is_reported(case, tmp_path):
    path, old, new, expected = BROKEN_NEEDS[case]
    assert expected not in missing_needs(*both())
    assert expected in missing_needs(*both(broken_copy(tmp_path, path, old, new)))


@pytest.mark.parametrize("case", sorted(BROKEN_REFUSALS))
def test_a_refused_setting_is_reported(case, tmp_path):
    path, old, new, expected = BROKEN_REFUSALS[case]
    assert expected not in refused_settings(both())
    assert expected in refused_settings(both(broken_copy(tmp_path, path, old, new)))
