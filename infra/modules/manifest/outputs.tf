output "region" {
  description = "The manifest's region."
  value       = local.manifest.region
}

output "functions" {
  description = "Manifest functions by name: {name, signature, trigger}."
  value       = local.functions

  precondition {
    condition     = alltrue([for f in local.functions : contains(local.kinds, f.trigger.kind)])
    error_message = "A manifest function has a trigger kind infra/ has no resource path for."
  }
  precondition {
    condition     = alltrue([for f in local.functions : contains(["http", "cloudevent"], f.signature)])
    error_message = "A manifest function has a signature other than http or cloudevent."
  }
  precondition {
    condition = alltrue([
      for consumers in values(local.secret_consumers) : alltrue([for name in consumers : contains(keys(local.functions), name)])
    ])
    error_message = "A secret consumer is not a manifest function (renamed or removed?)."
  }
}

output "functions_by_kind" {
  description = "Function names grouped by trigger kind."
  value       = local.functions_by_kind
}

output "topics" {
  description = "Manifest topics by name: {name, deadLetter, maxDeliveryAttempts}."
  value       = local.topics

  precondition {
    condition = alltrue([
      for f in local.functions : contains(concat(keys(local.topics), local.dead_letter_topics), f.trigger.topic) if f.trigger.kind == "pubsub"
    ])
    error_message = "A pubsub trigger names a topic the manifest does not declare (nor as a dead-letter topic)."
  }
}

output "queues" {
  description = "Manifest queues by name, one per shard: {name, retry: {maxAttempts, minBackoff, maxBackoff}, shards?, rateLimits?}."
  value       = local.queues

  precondition {
    condition     = alltrue([for q in values(local.task_targets) : contains(keys(local.queues), q)])
    error_message = "A tasks trigger names a queue the manifest does not declare."
  }
}

output "push_subscriptions" {
  description = "Pub/Sub push subscriptions by name: {function, topic, dead_letter, max_delivery_attempts}."
  value       = local.push_subscriptions
}

output "dead_letter_subscriptions" {
  description = "Pub/Sub push subscriptions on dead-letter topics by name: {function, topic}."
  value       = local.dead_letter_subscriptions
}

output "firestore_triggers" {
  description = "Firestore document triggers by function: {document, event_type}."
  value       = local.firestore_triggers
}

output "task_targets" {
  description = "Cloud Tasks-targeted functions: function → queue."
  value       = local.task_targets
}

output "scheduler_jobs" {
  description = "Cloud Scheduler jobs by name: {function, path, schedule, timezone}."
  value       = local.scheduler_jobs
}

output "events_topic" {
  description = "The topic canonical events are published to (Settings.events_topic)."
  value       = local.events_topic
}

output "steps_queue" {
  description = "The queue step tasks go to (Settings.steps_queue)."
  value       = local.steps_queue
}

output "step_shards" {
  description = "How many org shards the steps queue has (Settings.step_shards)."
  value       = local.step_shards
}

output "invokers" {
  description = "Function → callers that get run.invoker: public, pubsub_push, cloud_tasks, cloud_scheduler, eventarc."
  value       = local.invokers
}

output "publishes" {
  description = "Function → whether its service account may publish to the events topic."
  value       = local.publishes
}

output "enqueues" {
  description = "Function → whether its service account may create tasks on the steps queue."
  value       = local.enqueues
}

output "reads_source_secrets" {
  description = "Function → whether it reads per-source webhook secrets (webhook-…)."
  value       = local.reads_source_secrets
}

output "reads_store_api_secrets" {
  description = "Function → whether it reads per-source store API credentials (storeapi-…)."
  value       = local.reads_store_api_secrets
}

output "writes_source_secrets" {
  description = "Function → whether it creates per-source webhook secrets (webhook-…)."
  value       = local.writes_source_secrets
}

output "secret_consumers" {
  description = "Secret (Settings environment name) → functions that mount it."
  value       = local.secret_consumers
}

output "function_secrets" {
  description = "Function → secrets mounted into it as environment variables."
  value       = local.function_secrets
}

output "runtime" {
  description = "Function → {timeout_seconds, memory, max_instances} defaults by trigger kind."
  value       = local.runtime
}

output "service_account_ids" {
  description = "Function → account id of its own service account."
  value       = local.service_account_ids

  precondition {
    condition     = length(distinct(values(local.service_account_ids))) == length(local.service_account_ids)
    error_message = "Two functions map to the same service account id; shorten a function name."
  }
  precondition {
    condition     = alltrue([for id in values(local.service_account_ids) : can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", id))])
    error_message = "A function's service account id is not a valid account id."
  }
}
