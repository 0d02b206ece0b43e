# The manifest, read once. Every function, topic, queue and job below is a for_each over these
# locals, so a row added to functions/manifest.yaml is deployed by the next apply and a row removed
# is destroyed: declarations cannot drift from the code.
module "manifest" {
  source        = "./modules/manifest"
  manifest_path = "${path.module}/../functions/manifest.yaml"
}

data "google_project" "this" {
  project_id = var.project_id
}

locals {
  region          = coalesce(var.region, module.manifest.region)
  project_number  = data.google_project.this.number
  functions       = module.manifest.functions
  topics          = module.manifest.topics
  queues          = module.manifest.queues
  subscriptions   = module.manifest.push_subscriptions
  scheduler_jobs  = module.manifest.scheduler_jobs
  firestore_fns   = module.manifest.firestore_triggers
  function_roles  = module.manifest.invokers
  function_secret = module.manifest.function_secrets

  # Secret Manager secrets: every SecretStr setting in config.py (checked by tests/unit/test_infra.py).
  secret_names = toset(keys(module.manifest.secret_consumers))

  # Base of the URLs the code builds for task targets (`<base>/execute_step/`), as the local gateway does.
  functions_base_url = "https://${local.region}-${var.project_id}.cloudfunctions.net"

  runtime = {
    for name, defaults in module.manifest.runtime : name => {
      timeout_seconds = coalesce(try(var.function_overrides[name].timeout_seconds, null), defaults.timeout_seconds)
      memory          = coalesce(try(var.function_overrides[name].memory, null), defaults.memory)
      max_instances   = coalesce(try(var.function_overrides[name].max_instances, null), defaults.max_instances)
      min_instances   = coalesce(try(var.function_overrides[name].min_instances, null), 0)
    }
  }

  # Plain environment shared by every function (names as config.py reads them). Null values are
  # left out, so an unset provider stays "not configured" rather than pointing at nothing.
  plain_env = {
    for key, value in {
      GOOGLE_CLOUD_PROJECT         = var.project_id
      PLAYBOOKS_BACKEND            = "emulators" # Firestore, Pub/Sub and Cloud Tasks adapters (architecture.md §4)
      PLAYBOOKS_REGION             = local.region
      PLAYBOOKS_FUNCTIONS_BASE_URL = local.functions_base_url
      PLAYBOOKS_PUBLIC_BASE_URL    = var.public_base_url
      PLAYBOOKS_EVENTS_TOPIC       = module.manifest.events_topic
      PLAYBOOKS_STEPS_QUEUE        = module.manifest.steps_queue
      MAILJET_API_BASE             = var.mailjet_api_base
      MAILJET_FROM_EMAIL           = var.mailjet_from_email
      MAILJET_FROM_NAME            = var.mailjet_from_name
      BLACKLEAF_API_BASE           = var.blackleaf_api_base
      AGENT_HARNESS_URL            = var.agent_harness_url
      # Fair dispatch (domain/fairness.py): the steps queue's org shards, and each instance's
      # pace of one org's run starts.
      PLAYBOOKS_STEP_SHARDS               = module.manifest.step_shards
      PLAYBOOKS_ORG_RUN_STARTS_PER_SECOND = var.org_run_starts_per_second
      # Whose OIDC tokens the internal entry points accept (defense in depth on top of IAM), and
      # the identity the code's own step and sweep tasks carry (per-task OIDC, tasks.tf).
      PLAYBOOKS_TASKS_INVOKER     = google_service_account.caller["cloud_tasks"].email
      PLAYBOOKS_SCHEDULER_INVOKER = google_service_account.caller["cloud_scheduler"].email
      PLAYBOOKS_PUSH_INVOKER      = google_service_account.caller["pubsub_push"].email
    } : key => value if value != null
  }

  firestore_indexes = jsondecode(file("${path.module}/firestore.indexes.json"))
}
