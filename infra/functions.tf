# One gen2 function per manifest entry, all built from the same source with
# --entry-point=<name> (architecture.md §3 "Deploy staging").
#
# Trigger paths by manifest kind:
#   http      → public HTTPS function (allUsers invoker, iam.tf)
#   pubsub    → HTTPS function fed by a push subscription named in the manifest (pubsub.tf), on
#               the events topic or, for on_event_dead_lettered, on its dead-letter topic
#   tasks     → HTTPS function called by Cloud Tasks with an OIDC token (tasks.tf)
#   scheduler → HTTPS function called by Cloud Scheduler with an OIDC token (scheduler.tf)
#   firestore → event_trigger below: an Eventarc trigger on Firestore document events
#
# CloudEvent functions without an event_trigger still receive CloudEvents: functions-framework
# takes the signature from the @cloud_event decorator and converts a Pub/Sub push body into the
# messagePublished CloudEvent, exactly as on the local stack (operations.md §6).
resource "google_cloudfunctions2_function" "function" {
  for_each = local.functions

  project     = var.project_id
  name        = each.key
  location    = local.region
  description = "Playbooks ${each.key} (${each.value.signature}, trigger ${each.value.trigger.kind})"
  labels      = var.labels

  build_config {
    runtime         = var.python_runtime
    entry_point     = each.key
    service_account = google_service_account.build.id

    source {
      storage_source {
        bucket = google_storage_bucket.source.name
        object = google_storage_bucket_object.source.name
      }
    }
  }

  service_config {
    service_account_email            = google_service_account.function[each.key].email
    timeout_seconds                  = local.runtime[each.key].timeout_seconds
    available_memory                 = local.runtime[each.key].memory
    max_instance_count               = local.runtime[each.key].max_instances
    min_instance_count               = local.runtime[each.key].min_instances
    ingress_settings                 = "ALLOW_ALL" # private functions are closed by IAM, not by network
    all_traffic_on_latest_revision   = true
    environment_variables            = local.plain_env
    max_instance_request_concurrency = 1

    dynamic "secret_environment_variables" {
      for_each = toset([for secret in local.function_secret[each.key] : secret if contains(var.mounted_secrets, secret)])

      content {
        key        = secret_environment_variables.value
        project_id = var.project_id
        secret     = google_secret_manager_secret.secret[secret_environment_variables.value].secret_id
        version    = "latest"
      }
    }
  }

  dynamic "event_trigger" {
    for_each = each.value.trigger.kind == "firestore" ? [local.firestore_fns[each.key]] : []

    content {
      trigger_region        = var.firestore_location
      event_type            = event_trigger.value.event_type
      retry_policy          = "RETRY_POLICY_RETRY" # the handler raises only when a retry is wanted
      service_account_email = google_service_account.caller["eventarc"].email

      event_filters {
        attribute = "database"
        value     = var.firestore_database
      }

      event_filters {
        attribute = "document"
        value     = event_trigger.value.document
        operator  = "match-path-pattern"
      }
    }
  }

  depends_on = [
    google_project_service.api,
    google_project_iam_member.build,
    google_project_iam_member.eventarc_receiver,
    google_secret_manager_secret_iam_member.accessor,
  ]
}
