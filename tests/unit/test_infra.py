"""infra/ and cloudbuild.yaml agree with the code: nothing is deployed that the code does not use,
and nothing the code uses is missing from the deployment.

The per-function, topic, queue, job and secret derivations live in a provider-free Terraform module
(infra/modules/manifest), so they are evaluated here by Terraform itself (init + apply of outputs
only, offline) rather than re-implemented; the root module is checked for the resource paths that
consume them. Terraform missing → those tests skip with the reason.
"""

import json
import os
import re
import shutil
import subprocess
import typing
from pathlib import Path

import pytest
import yaml
from pydantic import SecretStr

from playbook_core.config import Settings
from playbook_core.domain.collections import RETAINED
from playbook_core.runtime.bootstrap import INTERNAL_CALLERS
from playbook_core.runtime.manifest import Function, load_manifest

ROOT = Path(__file__).parents[2]
INFRA = ROOT / "infra"
MANIFEST_MODULE = INFRA / "modules" / "manifest"
TERRAFORM = shutil.which("terraform")
needs_terraform = pytest.mark.skipif(TERRAFORM is None, reason="terraform is not installed")

# Settings read only on a developer machine or set by the platform itself: never deployed by infra/.
LOCAL_OR_PLATFORM = {
    "K_SERVICE": "set by Cloud Run on every deployed function",
    "K_REVISION": "set by Cloud Run on every deployed function",
    "PLAYBOOKS_DATA_DIR": "embedded backend only (refused when deployed)",
    "PLAYBOOKS_GATEWAY_PORT": "local gateway only",
    "FIRESTORE_EMULATOR_HOST": "local emulators only",
    "PUBSUB_EMULATOR_HOST": "local emulators only",
    "CLOUD_TASKS_EMULATOR_HOST": "local emulators only",
    "CLOUD_SCHEDULER_EMULATOR_HOST": "local emulators only",
    "FIREBASE_AUTH_EMULATOR_HOST": "local only (refused when deployed)",
    "PLAYBOOKS_LOCAL_OIDC": "local only (refused when deployed)",
    "SECRET_MANAGER_EMULATOR_HOST": "local emulators only",
    "PLAYBOOKS_GOOGLE_OIDC_CERTS_URL": "deployed-shape tests only (deployed: Google's keys, the default)",
    "PLAYBOOKS_FIREBASE_CERTS_URL": "deployed-shape tests only (deployed: Google's keys, the default)",
    "SHOPIFY_ADMIN_API_BASE": "local stand-in only (deployed: each shop's own URL)",
    "WOOCOMMERCE_API_BASE": "local stand-in only (deployed: each store's own URL)",
}


def terraform(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "CHECKPOINT_DISABLE": "1",  # no version check over the network
        "TF_IN_AUTOMATION": "1",
        "TF_INPUT": "0",
        "TF_DATA_DIR": str(cwd / ".terraform"),
    }
    return subprocess.run(  # noqa: S603 - the terraform binary found on PATH, fixed arguments
        [TERRAFORM, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def derived(tmp_path_factory) -> dict:
    """The manifest module's outputs, computed by Terraform from functions/manifest.yaml."""
    if TERRAFORM is None:
        pytest.skip("terraform is not installed")
    work = tmp_path_factory.mktemp("manifest-module")
    shutil.copytree(MANIFEST_MODULE, work, dirs_exist_ok=True)
    manifest = f"manifest_path={ROOT / 'functions' / 'manifest.yaml'}"
    for step in (
        ["init", "-no-color"],
        ["validate", "-no-color"],
        ["apply", "-auto-approve", "-no-color", "-var", manifest],
    ):
        result = terraform(*step, cwd=work)
        assert result.returncode == 0, f"terraform {step[0]}:\n{result.stdout}\n{result.stderr}"
    result = terraform("output", "-json", cwd=work)
    assert result.returncode == 0, result.stderr
    return {name: value["value"] for name, value in json.loads(result.stdout).items()}


def tf_sources() -> dict[str, str]:
    return {p.name: p.read_text(encoding="utf-8") for p in sorted(INFRA.glob("*.tf"))}


def resource_block(kind: str, name: str) -> str:
    """The text of `resource "kind" "name" { … }` in the root module."""
    for text in tf_sources().values():
        match = re.search(rf'^resource "{kind}" "{name}" {{\n', text, re.MULTILINE)
        if match:
            depth, end = 1, match.end()
            while depth:
                depth += {"{": 1, "}": -1}.get(text[end], 0)
                end += 1
            return text[match.start() : end]
    pytest.fail(f'no resource "{kind}" "{name}" in infra/*.tf')
    return ""


def settings_env() -> dict[str, typing.Any]:
    """Environment name → field info of every Settings field (config.py is their only reader)."""
    found = {}
    prefix = Settings.model_config.get("env_prefix", "")
    for name, info in Settings.model_fields.items():
        alias = info.validation_alias
        env = alias.choices[0] if alias is not None else f"{prefix}{name}".upper()
        found[env] = info
    return found


def secret_settings() -> set[str]:
    return {
        env
        for env, info in settings_env().items()
        if SecretStr in typing.get_args(info.annotation) or info.annotation is SecretStr
    }


# --- Terraform itself --------------------------------------------------------------------------


@needs_terraform
def test_terraform_fmt_passes():
    result = terraform("fmt", "-check", "-recursive", "-diff", "-no-color", str(INFRA), cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_root_module_reads_the_manifest_and_the_firestore_files():
    sources = tf_sources()
    module = (MANIFEST_MODULE / "main.tf").read_text(encoding="utf-8")
    assert "yamldecode(file(var.manifest_path))" in module
    assert 'manifest_path = "${path.module}/../functions/manifest.yaml"' in sources["locals.tf"]
    assert 'jsondecode(file("${path.module}/firestore.indexes.json"))' in sources["locals.tf"]
    assert 'file("${path.module}/firestore.rules")' in sources["firestore.tf"]


# --- every manifest entry has infrastructure ---------------------------------------------------


def test_every_manifest_function_is_a_deployed_function(derived):
    manifest = load_manifest()
    assert set(derived["functions"]) == {f.name for f in manifest.functions}
    block = resource_block("google_cloudfunctions2_function", "function")
    assert "for_each = local.functions" in block
    assert "entry_point     = each.key" in block
    assert "name        = each.key" in block
    # one service account per function, derived from the same map
    assert "for_each = local.functions" in resource_block("google_service_account", "function")
    assert set(derived["service_account_ids"]) == set(derived["functions"])


# Each trigger kind → (resource type, name, the for_each it must iterate over).
KIND_PATHS = {
    "http": [("google_cloud_run_v2_service_iam_member", "invoker", "local.invoker_bindings")],
    "pubsub": [
        ("google_pubsub_subscription", "push", "local.subscriptions"),
        ("google_pubsub_subscription", "dead_letter_push", "local.dead_letter_subscriptions"),
    ],
    "tasks": [("google_cloud_tasks_queue", "queue", "local.queues")],
    "scheduler": [("google_cloud_scheduler_job", "job", "local.scheduler_jobs")],
    "firestore": [("google_cloudfunctions2_function", "function", "local.firestore_fns")],
}


@pytest.mark.parametrize("kind", sorted(KIND_PATHS))
def test_every_trigger_kind_has_a_resource_path(kind, derived):
    triggers = typing.get_args(Function.model_fields["trigger"].annotation)
    model_kinds = {typing.get_args(t.model_fields["kind"].annotation)[0] for t in triggers}
    assert model_kinds == set(KIND_PATHS), "a trigger kind without a resource path in infra/"
    assert kind in derived["functions_by_kind"]
    for resource, name, iterated in KIND_PATHS[kind]:
        assert iterated in resource_block(resource, name)


def test_pubsub_triggers_become_push_subscriptions_with_dead_letters(derived):
    manifest = load_manifest()
    topics = {t.name: t for t in manifest.topics}
    expected = {
        f.trigger.subscription: {
            "function": f.name,
            "topic": f.trigger.topic,
            "dead_letter": topics[f.trigger.topic].dead_letter,
            "max_delivery_attempts": topics[f.trigger.topic].max_delivery_attempts,
        }
        for f in manifest.functions
        if f.trigger.kind == "pubsub" and f.trigger.topic in topics
    }
    assert derived["push_subscriptions"] == expected
    block = resource_block("google_pubsub_subscription", "push")
    assert "dead_letter_policy {" in block
    assert "max_delivery_attempts = each.value.max_delivery_attempts" in block
    assert "oidc_token {" in block
    assert "for_each = local.topics" in resource_block("google_pubsub_topic", "topic")
    assert "for_each = local.dead_letter_topics" in resource_block(
        "google_pubsub_topic", "dead_letter"
    )


def test_dead_letters_are_held_and_pushed_to_the_function_that_records_them(derived):
    manifest = load_manifest()
    dead_letters = {t.dead_letter for t in manifest.topics}
    expected = {
        f.trigger.subscription: {"function": f.name, "topic": f.trigger.topic}
        for f in manifest.functions
        if f.trigger.kind == "pubsub" and f.trigger.topic in dead_letters
    }
    assert expected == {
        "playbook-dead-letters": {
            "function": "on_event_dead_lettered",
            "topic": "playbook-events-dead",
        }
    }
    assert derived["dead_letter_subscriptions"] == expected
    # Every pubsub trigger is one of the two kinds of subscription.
    pubsub = {f.trigger.subscription for f in manifest.functions if f.trigger.kind == "pubsub"}
    assert pubsub == set(derived["push_subscriptions"]) | set(expected)
    block = resource_block("google_pubsub_subscription", "dead_letter_push")
    on_the_dead_letter_topic = "google_pubsub_topic.dead_letter[each.value.topic].id"
    assert f"topic                      = {on_the_dead_letter_topic}" in block
    assert "dead_letter_policy" not in block  # it would publish to the topic it reads
    assert "oidc_token {" in block
    # The hold subscription still keeps every dead-lettered message for replay.
    assert "for_each = local.dead_letter_topics" in resource_block(
        "google_pubsub_subscription", "dead_letter_hold"
    )
    # It records and alerts: no publishing, no tasks, and the ops Slack webhook mounted.
    assert derived["publishes"]["on_event_dead_lettered"] is False
    assert derived["enqueues"]["on_event_dead_lettered"] is False
    assert "SLACK_ALERT_WEBHOOK_URL" in derived["function_secrets"]["on_event_dead_lettered"]


def test_queues_carry_the_manifest_retry_config(derived):
    manifest = load_manifest()
    # One queue per shard, each with its declared queue's retry policy and limits, exactly the
    # queues bootstrap and the local wiring create.
    assert sorted(derived["queues"]) == sorted(c.name for c in manifest.queue_configs())
    for name, shard in derived["queues"].items():
        declared = next(q for q in manifest.queues if name in q.shard_names())
        assert shard == declared.model_dump(by_alias=True, exclude_defaults=True)
    block = resource_block("google_cloud_tasks_queue", "queue")
    for line in (
        "max_attempts  = each.value.retry.maxAttempts",
        "min_backoff   = each.value.retry.minBackoff",
        "max_backoff   = each.value.retry.maxBackoff",
        "max_concurrent_dispatches = rate_limits.value.maxConcurrentDispatches",
    ):
        assert line in block
    steps = manifest.steps_queue()
    assert steps.shards > 1  # fair dispatch (issue #14)
    assert steps.rate_limits is not None
    assert derived["step_shards"] == steps.shards
    # No queue-level OIDC override: it would give sweep tasks execute_step's audience. The code
    # attaches per-task tokens of the identity Terraform hands it.
    assert "oidc_token {" not in block
    assert (
        'PLAYBOOKS_TASKS_INVOKER     = google_service_account.caller["cloud_tasks"].email'
        in (tf_sources()["locals.tf"])
    )
    assert derived["task_targets"] == {
        f.name: f.trigger.queue for f in manifest.functions if f.trigger.kind == "tasks"
    }


def test_scheduler_jobs_are_the_manifest_jobs_with_oidc(derived):
    expected = {
        job.job: {
            "function": f.name,
            "path": job.path,
            "schedule": job.schedule,
            "timezone": job.timezone,
        }
        for f in load_manifest().functions
        if f.trigger.kind == "scheduler"
        for job in f.trigger.jobs
    }
    assert derived["scheduler_jobs"] == expected
    block = resource_block("google_cloud_scheduler_job", "job")
    assert "oidc_token {" in block
    assert "schedule         = each.value.schedule" in block
    assert "time_zone        = each.value.timezone" in block


def test_firestore_triggers_are_eventarc_document_events(derived):
    expected = {
        f.name: {
            "document": f.trigger.document,
            "event_type": f"google.cloud.firestore.document.v1.{f.trigger.event}",
        }
        for f in load_manifest().functions
        if f.trigger.kind == "firestore"
    }
    assert derived["firestore_triggers"] == expected
    block = resource_block("google_cloudfunctions2_function", "function")
    assert 'operator  = "match-path-pattern"' in block
    assert 'attribute = "database"' in block


def test_only_http_functions_are_public_and_every_private_one_has_its_caller(derived):
    callers = {
        "http": ["public"],
        "pubsub": ["pubsub_push"],
        "tasks": ["cloud_tasks"],
        "firestore": ["eventarc"],
        "scheduler": ["cloud_scheduler", "cloud_tasks"],  # calendar sweeps are tasks (§8.4)
    }
    for f in load_manifest().functions:
        assert derived["invokers"][f.name] == callers[f.trigger.kind], f.name


def test_the_code_verifies_the_oidc_token_of_exactly_the_iam_invokers(derived):
    """Defense in depth: every private non-Eventarc function checks its caller's token in code,
    accepting the identities IAM lets invoke it and no other."""
    checked = {
        f.name: list(INTERNAL_CALLERS.get(f.name, ()))
        for f in load_manifest().functions
        if f.trigger.kind in {"pubsub", "tasks", "scheduler"}
    }
    assert checked == {name: derived["invokers"][name] for name in checked}
    assert set(INTERNAL_CALLERS) == set(checked)
    # Their tokens are for the URL the code checks (Settings.function_url), not the run.app one.
    audience = 'audience              = "${local.functions_base_url}/${each.value.function}"'
    assert audience in resource_block("google_pubsub_subscription", "push")
    assert audience in resource_block("google_pubsub_subscription", "dead_letter_push")
    assert audience in resource_block("google_cloud_scheduler_job", "job")


# --- names the code uses are declared -----------------------------------------------------------


def test_the_settings_topic_and_queue_are_the_manifests(derived):
    defaults = Settings()
    manifest = load_manifest()
    assert defaults.events_topic in {t.name for t in manifest.topics}
    assert defaults.events_topic == derived["events_topic"]
    assert defaults.steps_queue in {q.name for q in manifest.queues}
    assert defaults.steps_queue == derived["steps_queue"]
    assert defaults.region == manifest.region == derived["region"]


def test_every_secret_setting_has_a_secret_manager_secret(derived):
    secrets = secret_settings()
    assert secrets, "config.py declares no SecretStr settings?"
    assert set(derived["secret_consumers"]) == secrets
    declared_default = re.search(
        r'variable "mounted_secrets" \{.*?default = \[(.*?)\]',
        tf_sources()["variables.tf"],
        re.DOTALL,
    )
    assert declared_default is not None
    assert set(re.findall(r'"([A-Z_]+)"', declared_default.group(1))) == secrets
    assert "for_each = local.secret_names" in resource_block(
        "google_secret_manager_secret", "secret"
    )


def test_every_secret_is_mounted_into_an_existing_function(derived):
    for secret, consumers in derived["secret_consumers"].items():
        assert consumers, f"{secret} is mounted nowhere"
        assert set(consumers) <= set(derived["functions"]), secret
    webhooks = {
        f.name for f in load_manifest().functions if getattr(f.trigger, "auth", "") == "public"
    }
    for name in webhooks:
        assert derived["function_secrets"][name], f"{name} verifies HMACs: it needs its secret"


def plain_env_names() -> set[str]:
    block = re.search(r"plain_env = \{(.*?)\n  \}\n", tf_sources()["locals.tf"], re.DOTALL)
    assert block is not None, "locals.tf has no plain_env block"
    return set(re.findall(r"^\s+([A-Z][A-Z0-9_]+)\s+=", block.group(1), re.MULTILINE))


def test_every_environment_variable_terraform_sets_is_read_by_settings(derived):
    known = set(settings_env())
    assert plain_env_names() <= known
    assert set(derived["secret_consumers"]) <= known
    assert not plain_env_names() & set(derived["secret_consumers"])  # a secret is never plain


def test_every_setting_is_deployed_or_local_only(derived):
    deployed = plain_env_names() | set(derived["secret_consumers"])
    missing = set(settings_env()) - deployed - set(LOCAL_OR_PLATFORM)
    assert not missing, (
        f"config.py reads {sorted(missing)}, which infra/ neither sets (locals.tf plain_env, "
        "secrets) nor lists as local-only in tests/unit/test_infra.py"
    )
    assert not set(LOCAL_OR_PLATFORM) & deployed


# --- Firestore and firebase.json -----------------------------------------------------------------


def test_firebase_json_points_at_the_infra_files_and_has_no_functions_block():
    config = json.loads((ROOT / "firebase.json").read_text(encoding="utf-8"))
    assert "functions" not in config
    assert (ROOT / config["firestore"]["rules"]) == INFRA / "firestore.rules"
    assert (ROOT / config["firestore"]["indexes"]) == INFRA / "firestore.indexes.json"
    for name in ("firestore", "pubsub"):
        emulator = config["emulators"][name]
        assert emulator["host"] == "127.0.0.1"
        assert isinstance(emulator["port"], int)


def test_every_retained_collection_group_gets_a_ttl_policy_on_expires_at():
    # The TTL policies are the `ttl: true` overrides of firestore.indexes.json, which the
    # override resource turns into a ttl_config each; a TTL deletion never reaches a
    # subcollection, so `steps` and `claims` need their own.
    assert (
        'for override in local.firestore_indexes.fieldOverrides : "${override.collectionGroup}'
        '.${override.fieldPath}" => override'
    ) in tf_sources()["firestore.tf"]
    block = resource_block("google_firestore_field", "override")
    assert "for_each = local.field_overrides" in block
    assert "collection = each.value.collectionGroup" in block
    assert "field      = each.value.fieldPath" in block
    assert re.search(
        r'dynamic "ttl_config" \{\s*for_each = try\(each.value.ttl, false\) \? \[true\] : \[\]',
        block,
    )
    overrides = json.loads((INFRA / "firestore.indexes.json").read_text(encoding="utf-8"))
    ttl = [o for o in overrides["fieldOverrides"] if o.get("ttl")]
    assert {o["fieldPath"] for o in ttl} == {"expiresAt"}
    groups = [o["collectionGroup"] for o in ttl]
    assert len(groups) == len(set(groups))
    assert set(groups) == RETAINED, (
        f"no TTL policy for {sorted(RETAINED - set(groups))}; "
        f"not retained in domain/collections.py: {sorted(set(groups) - RETAINED)}"
    )


# --- cloudbuild.yaml ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cloudbuild() -> dict:
    return yaml.safe_load((ROOT / "cloudbuild.yaml").read_text(encoding="utf-8"))


def step_script(step: dict) -> str:
    return " ".join(str(a) for a in step.get("args", []))


def test_cloudbuild_runs_the_stages_in_order(cloudbuild):
    ids = [step["id"] for step in cloudbuild["steps"]]
    order = ["setup", "lint", "test", "requirements", "stage", "deploy"]
    positions = [next(i for i, s in enumerate(ids) if s.startswith(stage)) for stage in order]
    assert positions == sorted(positions), ids
    assert all(step.get("waitFor") != ["-"] for step in cloudbuild["steps"])  # strictly sequential


def test_cloudbuild_tests_with_the_emulators_and_checks_requirements(cloudbuild):
    steps = {step["id"]: step_script(step) for step in cloudbuild["steps"]}
    test = next(script for name, script in steps.items() if name.startswith("test"))
    # The same command as CI (.ci/run) and developers: make test, which adds --require-emulators
    # where the emulator files exist (the builder image has them) and leaves benchmarks out.
    assert "make test" in test
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    assert "$(EMULATOR_FLAG)" in (ROOT / "Makefile").read_text().split("\ntest:", 1)[1]
    requirements = next(s for n, s in steps.items() if n.startswith("requirements"))
    assert "pin_requirements.py" in requirements
    assert "functions/requirements.txt" in requirements


def test_cloudbuild_stages_exactly_the_deployable_source(cloudbuild):
    # One packaging command for Cloud Build, developers and the deployed-shape tests.
    stage = next(step_script(s) for s in cloudbuild["steps"] if s["id"].startswith("stage"))
    assert "make package" in stage
    target = (ROOT / "Makefile").read_text().split("\npackage:", 1)[1].split("\n\n", 1)[0]
    assert "shared/tools/package.py" in target
    deploy = " ".join(step_script(s) for s in cloudbuild["steps"] if s["id"].startswith("deploy"))
    assert "-chdir=infra" in deploy
    assert "apply" in deploy
    assert "source_zip=" in deploy
