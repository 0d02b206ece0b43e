output "function_urls" {
  description = "Every function's URL (https://REGION-PROJECT.cloudfunctions.net/NAME), by manifest name."
  value       = { for name, fn in google_cloudfunctions2_function.function : name => fn.url }
}

output "service_uris" {
  description = "Every function's underlying Cloud Run URL (https://…run.app): the push, task and scheduler audience."
  value       = { for name, fn in google_cloudfunctions2_function.function : name => fn.service_config[0].uri }
}

output "api_base_url" {
  description = "Base of the dashboard API: GET <this>/v1/health answers 200."
  value       = try(google_cloudfunctions2_function.function["playbooks_api"].url, null)
}

output "webhook_urls" {
  description = "URLs to register in Shopify and WooCommerce, by platform function."
  value = {
    for name, fn in google_cloudfunctions2_function.function : name => fn.url
    if startswith(name, "webhook_")
  }
}

output "function_service_accounts" {
  description = "Runtime service account email of each function."
  value       = { for name, sa in google_service_account.function : name => sa.email }
}

output "caller_service_accounts" {
  description = "Identities that invoke private functions: pubsub_push, cloud_tasks, cloud_scheduler, eventarc."
  value       = { for name, sa in google_service_account.caller : name => sa.email }
}

output "topics" {
  description = "Pub/Sub topic ids (events and dead-letter)."
  value = merge(
    { for name, topic in google_pubsub_topic.topic : name => topic.id },
    { for name, topic in google_pubsub_topic.dead_letter : name => topic.id },
  )
}

output "subscriptions" {
  description = "Push subscription ids by manifest name, plus the dead-letter hold subscriptions."
  value = merge(
    { for name, sub in google_pubsub_subscription.push : name => sub.id },
    { for name, sub in google_pubsub_subscription.dead_letter_hold : "${name}-hold" => sub.id },
  )
}

output "queues" {
  description = "Cloud Tasks queue ids."
  value       = { for name, queue in google_cloud_tasks_queue.queue : name => queue.id }
}

output "scheduler_jobs" {
  description = "Cloud Scheduler job ids."
  value       = { for name, job in google_cloud_scheduler_job.job : name => job.id }
}

output "secrets" {
  description = "Secret Manager secret ids (add values with gcloud secrets versions add)."
  value       = { for name, secret in google_secret_manager_secret.secret : name => secret.id }
}

output "source_object" {
  description = "gs:// path of the deployed source zip."
  value       = "gs://${google_storage_bucket.source.name}/${google_storage_bucket_object.source.name}"
}
