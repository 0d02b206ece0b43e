# Cloud Tasks queues from the manifest. Their RetryConfig (maxAttempts, minBackoff, maxBackoff)
# covers infrastructure failures only (the handler answered 5xx); step-level retries are new tasks
# with a scheduleTime (domain.md §7.1, §7.5).
locals {
  queue_targets = {
    for queue in keys(local.queues) : queue => [
      for name, target in module.manifest.task_targets : google_cloudfunctions2_function.function[name].service_config[0].uri if target == queue
    ]
  }
}

resource "google_cloud_tasks_queue" "queue" {
  for_each = local.queues

  project  = var.project_id
  name     = each.key
  location = local.region

  retry_config {
    max_attempts  = each.value.retry.maxAttempts
    min_backoff   = each.value.retry.minBackoff
    max_backoff   = each.value.retry.maxBackoff
    max_doublings = 16 # ports.QueueConfig default, as the local emulator uses
  }

  # Queue-level target override: every task on the queue carries an OIDC token of the Cloud Tasks
  # identity, so the code needs no service-account setting to call the private executor. Tasks
  # keep their own URL; the audience is the run.app URL (always accepted by Cloud Run) of the
  # function the manifest says the queue feeds (with several, the default: each task's URL).
  http_target {
    oidc_token {
      service_account_email = google_service_account.caller["cloud_tasks"].email
      audience              = length(local.queue_targets[each.key]) == 1 ? local.queue_targets[each.key][0] : null
    }
  }

  depends_on = [google_project_service.api]
}
