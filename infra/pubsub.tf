# Topics from the manifest, each with its dead-letter topic; one push subscription per
# pubsub-triggered function, named in the manifest, pushing to the function with an OIDC token.

locals {
  dead_letter_topics        = toset([for t in values(local.topics) : t.deadLetter])
  dead_letter_subscriptions = module.manifest.dead_letter_subscriptions
}

resource "google_pubsub_topic" "topic" {
  for_each = local.topics

  project                    = var.project_id
  name                       = each.key
  labels                     = var.labels
  message_retention_duration = "86400s" # replay a day of events after an incident (seek)

  depends_on = [google_project_service.api]
}

resource "google_pubsub_topic" "dead_letter" {
  for_each = local.dead_letter_topics

  project = var.project_id
  name    = each.value
  labels  = var.labels

  depends_on = [google_project_service.api]
}

# A dead-lettered message must be kept, not dropped for lack of a subscriber: this pull
# subscription holds them for inspection and replay.
resource "google_pubsub_subscription" "dead_letter_hold" {
  for_each = local.dead_letter_topics

  project                    = var.project_id
  name                       = "${each.value}-hold"
  topic                      = google_pubsub_topic.dead_letter[each.value].id
  message_retention_duration = var.dead_letter_retention
  retain_acked_messages      = false
  ack_deadline_seconds       = 60
  labels                     = var.labels

  expiration_policy {
    ttl = "" # never expires
  }
}

resource "google_pubsub_subscription" "push" {
  for_each = local.subscriptions

  project              = var.project_id
  name                 = each.key
  topic                = google_pubsub_topic.topic[each.value.topic].id
  ack_deadline_seconds = min(600, local.runtime[each.value.function].timeout_seconds)
  labels               = var.labels

  # Pushed to the function's run.app URL; the token's audience is its cloudfunctions.net URL
  # (`<functions base URL>/<function>`), the one the function itself verifies.
  push_config {
    push_endpoint = google_cloudfunctions2_function.function[each.value.function].service_config[0].uri

    oidc_token {
      service_account_email = google_service_account.caller["pubsub_push"].email
      audience              = "${local.functions_base_url}/${each.value.function}"
    }
  }

  dead_letter_policy {
    dead_letter_topic     = google_pubsub_topic.dead_letter[each.value.dead_letter].id
    max_delivery_attempts = each.value.max_delivery_attempts
  }

  retry_policy {
    minimum_backoff = "10s"
    maximum_backoff = "600s"
  }

  expiration_policy {
    ttl = "" # never expires
  }
}

# The function that records dead-lettered events (on_event_dead_lettered) is pushed each message
# of the dead-letter topic, beside the hold subscription. No dead-letter policy: it would publish
# to the topic it reads. A failing push is retried (10 s → 600 s) until the message expires after
# 7 days; the hold subscription has kept it for replay either way.
resource "google_pubsub_subscription" "dead_letter_push" {
  for_each = local.dead_letter_subscriptions

  project                    = var.project_id
  name                       = each.key
  topic                      = google_pubsub_topic.dead_letter[each.value.topic].id
  ack_deadline_seconds       = min(600, local.runtime[each.value.function].timeout_seconds)
  message_retention_duration = "604800s"
  labels                     = var.labels

  push_config {
    push_endpoint = google_cloudfunctions2_function.function[each.value.function].service_config[0].uri

    oidc_token {
      service_account_email = google_service_account.caller["pubsub_push"].email
      audience              = "${local.functions_base_url}/${each.value.function}"
    }
  }

  retry_policy {
    minimum_backoff = "10s"
    maximum_backoff = "600s"
  }

  expiration_policy {
    ttl = "" # never expires
  }
}

# Dead-lettering is done by the Pub/Sub service agent: it publishes to the dead-letter topic and
# acknowledges on the source subscription.
resource "google_pubsub_topic_iam_member" "dead_letter_publisher" {
  for_each = local.dead_letter_topics

  project = var.project_id
  topic   = google_pubsub_topic.dead_letter[each.value].name
  role    = "roles/pubsub.publisher"
  member  = local.pubsub_agent
}

resource "google_pubsub_subscription_iam_member" "dead_letter_subscriber" {
  for_each = local.subscriptions

  project      = var.project_id
  subscription = google_pubsub_subscription.push[each.key].name
  role         = "roles/pubsub.subscriber"
  member       = local.pubsub_agent
}
