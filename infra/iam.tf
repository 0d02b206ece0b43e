# Least privilege: one service account per function, holding only what that function does, plus
# one identity per caller (Pub/Sub push, Cloud Tasks, Cloud Scheduler, Eventarc) that holds
# run.invoker on exactly the functions it calls. HTTP functions are public (token or HMAC checked
# in code); every other function is private, and the Pub/Sub, Cloud Tasks and Cloud Scheduler
# targets also verify the caller's OIDC token in code (PLAYBOOKS_*_INVOKER, locals.tf).

resource "google_service_account" "function" {
  for_each = local.functions

  project      = var.project_id
  account_id   = module.manifest.service_account_ids[each.key]
  display_name = "Playbooks function ${each.key}"
  description  = "Runtime identity of the ${each.key} function (trigger: ${each.value.trigger.kind})."
}

resource "google_service_account" "caller" {
  for_each = {
    pubsub_push     = "Pub/Sub push subscriptions into the event functions"
    cloud_tasks     = "Cloud Tasks OIDC token for step and sweep tasks"
    cloud_scheduler = "Cloud Scheduler OIDC token for the cron jobs"
    eventarc        = "Eventarc Firestore triggers"
  }

  project      = var.project_id
  account_id   = "pb-${replace(each.key, "_", "-")}"
  display_name = "Playbooks caller: ${each.key}"
  description  = each.value
}

resource "google_service_account" "build" {
  project      = var.project_id
  account_id   = "pb-build"
  display_name = "Playbooks function builds"
  description  = "Cloud Build identity that turns the source zip into function images."
}

locals {
  caller_members = {
    public          = "allUsers"
    pubsub_push     = google_service_account.caller["pubsub_push"].member
    cloud_tasks     = google_service_account.caller["cloud_tasks"].member
    cloud_scheduler = google_service_account.caller["cloud_scheduler"].member
    eventarc        = google_service_account.caller["eventarc"].member
  }

  # (function, caller) pairs that get run.invoker.
  invoker_bindings = merge([
    for name, callers in local.function_roles : {
      for caller in callers : "${name}/${caller}" => { function = name, member = local.caller_members[caller] }
    }
  ]...)

  publishers = toset([for name, yes in module.manifest.publishes : name if yes])
  enqueuers  = toset([for name, yes in module.manifest.enqueues : name if yes])
  enqueue_bindings = merge([
    for name in local.enqueuers : { for queue in keys(local.queues) : "${name}/${queue}" => { function = name, queue = queue } }
  ]...)

  source_secret_condition = join(" || ", [
    for prefix in var.org_secret_prefixes : "resource.name.startsWith(\"projects/${local.project_number}/secrets/${prefix}\")"
  ])

  pubsub_agent = "serviceAccount:${google_project_service_identity.pubsub.email}"
}

# Firestore: every function reads and writes documents (no narrower predefined role exists).
resource "google_project_iam_member" "firestore_user" {
  for_each = local.functions

  project = var.project_id
  role    = "roles/datastore.user"
  member  = google_service_account.function[each.key].member
}

# Publish canonical events.
resource "google_pubsub_topic_iam_member" "publisher" {
  for_each = local.publishers

  project = var.project_id
  topic   = google_pubsub_topic.topic[module.manifest.events_topic].name
  role    = "roles/pubsub.publisher"
  member  = google_service_account.function[each.key].member
}

# Enqueue step and sweep tasks.
resource "google_cloud_tasks_queue_iam_member" "enqueuer" {
  for_each = local.enqueue_bindings

  project  = var.project_id
  location = local.region
  name     = google_cloud_tasks_queue.queue[each.value.queue].name
  role     = "roles/cloudtasks.enqueuer"
  member   = google_service_account.function[each.value.function].member
}

# Enqueuers attach the Cloud Tasks identity to each task (per-task OIDC, adapters/cloud_tasks.py):
# the queue has no OIDC override (tasks.tf).
resource "google_service_account_iam_member" "enqueuer_acts_as_tasks" {
  for_each = local.enqueuers

  service_account_id = google_service_account.caller["cloud_tasks"].name
  role               = "roles/iam.serviceAccountUser"
  member             = google_service_account.function[each.key].member
}

# Per-source webhook secrets created at run time: the receivers read them ...
resource "google_project_iam_member" "source_secret_reader" {
  for_each = toset([for name, yes in module.manifest.reads_source_secrets : name if yes])

  project = var.project_id
  role    = "roles/secretmanager.secretAccessor"
  member  = google_service_account.function[each.key].member

  condition {
    title       = "per-source webhook secrets"
    description = "Only secrets whose id starts with one of var.org_secret_prefixes."
    expression  = local.source_secret_condition
  }
}

# ... and the dashboard API creates them and adds versions (never reads them back).
resource "google_project_iam_custom_role" "source_secret_writer" {
  project     = var.project_id
  role_id     = "playbooksSourceSecretWriter"
  title       = "Playbooks source secret writer"
  description = "Create per-source webhook and per-org Slack secrets, add and destroy versions; no read access."
  permissions = [
    "secretmanager.secrets.create",
    "secretmanager.secrets.get",
    "secretmanager.versions.add",
    "secretmanager.versions.destroy", # a version written by a registration that lost a race
  ]
}

resource "google_project_iam_member" "source_secret_writer" {
  for_each = toset([for name, yes in module.manifest.writes_source_secrets : name if yes])

  project = var.project_id
  role    = google_project_iam_custom_role.source_secret_writer.id
  member  = google_service_account.function[each.key].member

  condition {
    title       = "per-source webhook and per-org Slack secrets"
    description = "Creating is checked on the project; versions only on prefixed secrets."
    expression  = "resource.type == \"cloudresourcemanager.googleapis.com/Project\" || ${local.source_secret_condition} || resource.name.startsWith(\"projects/${local.project_number}/secrets/${var.org_slack_secret_prefix}\") || resource.name.startsWith(\"projects/${local.project_number}/secrets/${var.store_api_secret_prefix}\")"
  }
}

# Per-source store API credentials: only the catch-up pass reads them (issue #16).
resource "google_project_iam_member" "store_api_secret_reader" {
  for_each = toset([for name, yes in module.manifest.reads_store_api_secrets : name if yes])

  project = var.project_id
  role    = "roles/secretmanager.secretAccessor"
  member  = google_service_account.function[each.key].member

  condition {
    title       = "per-source store API credentials"
    description = "Only secrets whose id starts with var.store_api_secret_prefix."
    expression  = "resource.name.startsWith(\"projects/${local.project_number}/secrets/${var.store_api_secret_prefix}\")"
  }
}

# Per-org Slack webhook URLs (slackWebhookSecretRef): read by the functions that post to Slack.
resource "google_project_iam_member" "org_slack_secret_reader" {
  for_each = toset(module.manifest.secret_consumers["SLACK_ALERT_WEBHOOK_URL"])

  project = var.project_id
  role    = "roles/secretmanager.secretAccessor"
  member  = google_service_account.function[each.key].member

  condition {
    title       = "per-org Slack webhooks"
    description = "Only secrets whose id starts with var.org_slack_secret_prefix."
    expression  = "resource.name.startsWith(\"projects/${local.project_number}/secrets/${var.org_slack_secret_prefix}\")"
  }
}

# Invokers: only where a caller needs them.
resource "google_cloud_run_v2_service_iam_member" "invoker" {
  for_each = local.invoker_bindings

  project  = var.project_id
  location = local.region
  name     = google_cloudfunctions2_function.function[each.value.function].service_config[0].service
  role     = "roles/run.invoker"
  member   = each.value.member
}

# Eventarc delivers Firestore events as its trigger identity.
resource "google_project_iam_member" "eventarc_receiver" {
  project = var.project_id
  role    = "roles/eventarc.eventReceiver"
  member  = google_service_account.caller["eventarc"].member
}

# The Pub/Sub service agent mints the push and Eventarc OIDC tokens and dead-letters messages.
resource "google_project_service_identity" "pubsub" {
  provider = google-beta

  project = var.project_id
  service = "pubsub.googleapis.com"

  depends_on = [google_project_service.api]
}

resource "google_service_account_iam_member" "pubsub_agent_token_creator" {
  for_each = toset(["pubsub_push", "eventarc"])

  service_account_id = google_service_account.caller[each.key].name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = local.pubsub_agent
}

# Builds: the function images are built as this identity, not the default compute account.
resource "google_project_iam_member" "build" {
  for_each = toset([
    "roles/cloudbuild.builds.builder",
    "roles/artifactregistry.writer",
    "roles/logging.logWriter",
  ])

  project = var.project_id
  role    = each.value
  member  = google_service_account.build.member
}
