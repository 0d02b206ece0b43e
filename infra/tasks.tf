# Cloud Tasks queues from the manifest, one per shard of a sharded queue. Their RetryConfig (maxAttempts, minBackoff, maxBackoff)
# covers infrastructure failures only (the handler answered 5xx); step-level retries are new tasks
# with a scheduleTime (domain.md §7.1, §7.5).
#
# No queue-level OIDC override: it would replace every task's token with one audience, and the
# steps queue feeds two functions (execute_step, and cron_playbooks /sweep for calendar sweeps).
# The code requests per-task OIDC instead (adapters/cloud_tasks.py): the identity
# PLAYBOOKS_TASKS_INVOKER (locals.tf; enqueuers may act as it, iam.tf) for the audience
# `<functions base URL>/<function>`, which the function verifies.

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

  # A step shard's ceiling: one org's burst never holds more than this many execute_step
  # instances (concurrency 1 each, functions.tf). Unset: Cloud Tasks' default (1000).
  dynamic "rate_limits" {
    for_each = try(each.value.rateLimits.maxConcurrentDispatches, null) == null ? [] : [each.value.rateLimits]
    content {
      max_concurrent_dispatches = rate_limits.value.maxConcurrentDispatches
    }
  }

  depends_on = [google_project_service.api]
}
