# Everything per function, topic, queue and job is derived here from functions/manifest.yaml, the
# single list of deployables. This module declares no resources and needs no provider, so
# tests/unit/test_infra.py can evaluate it offline (terraform init + apply on outputs only).

locals {
  manifest = yamldecode(file(var.manifest_path))

  functions = { for f in local.manifest.functions : f.name => f }
  topics    = { for t in local.manifest.topics : t.name => t }
  # A queue with `shards` is that many queues (domain/fairness.py): shard 0 keeps the base name.
  queues = merge([
    for q in local.manifest.queues : {
      for i in range(try(q.shards, 1)) : (i == 0 ? q.name : "${q.name}-${i}") => q
    }
  ]...)

  dead_letter_topics = distinct([for t in values(local.topics) : t.deadLetter])

  # Trigger kinds the root module has a resource path for; an unknown kind fails the plan.
  kinds = ["http", "pubsub", "tasks", "firestore", "scheduler"]

  functions_by_kind = {
    for kind in local.kinds : kind => sort([for name, f in local.functions : name if f.trigger.kind == kind])
  }

  # Pub/Sub: one push subscription per pubsub-triggered function, named by the manifest, with the
  # topic's dead-letter topic and delivery attempts (an Eventarc Pub/Sub trigger would create its
  # own subscription whose name and dead-letter policy Terraform cannot set).
  push_subscriptions = {
    for name, f in local.functions : f.trigger.subscription => {
      function              = name
      topic                 = f.trigger.topic
      dead_letter           = local.topics[f.trigger.topic].deadLetter
      max_delivery_attempts = local.topics[f.trigger.topic].maxDeliveryAttempts
    } if f.trigger.kind == "pubsub" && contains(keys(local.topics), try(f.trigger.topic, ""))
  }
  # Push subscriptions on a dead-letter topic (its messages' outcome is recorded): no dead-letter
  # topic of their own, which would feed itself; the hold subscription keeps every message.
  dead_letter_subscriptions = {
    for name, f in local.functions : f.trigger.subscription => {
      function = name
      topic    = f.trigger.topic
    } if f.trigger.kind == "pubsub" && contains(local.dead_letter_topics, try(f.trigger.topic, ""))
  }

  # Firestore document events: an Eventarc trigger per function (through its event_trigger).
  firestore_triggers = {
    for name, f in local.functions : name => {
      document   = f.trigger.document
      event_type = "google.cloud.firestore.document.v1.${f.trigger.event}"
    } if f.trigger.kind == "firestore"
  }

  # Cloud Tasks targets: function → queue.
  task_targets = { for name, f in local.functions : name => f.trigger.queue if f.trigger.kind == "tasks" }

  # Cloud Scheduler: job name → {function, path, schedule, timezone}.
  scheduler_jobs = merge({}, [
    for name, f in local.functions : {
      for job in f.trigger.jobs : job.job => {
        function = name
        path     = job.path
        schedule = job.schedule
        timezone = job.timezone
      }
    } if f.trigger.kind == "scheduler"
  ]...)

  # The one topic the code publishes canonical events to (Settings.events_topic) and the one queue
  # step tasks go to (Settings.steps_queue): the topic pubsub triggers listen on, the queue tasks
  # triggers are fed by. one() fails the plan if the manifest ever names two.
  events_topic = one(distinct([for s in values(local.push_subscriptions) : s.topic]))
  steps_queue  = one(distinct(values(local.task_targets)))
  step_shards  = try(local.queues[local.steps_queue].shards, 1)

  # Who may invoke each function (IAM run.invoker), by trigger kind. HTTP functions are public:
  # the dashboard API verifies Firebase ID tokens in code and the webhooks verify HMACs.
  # Scheduler-targeted functions are also called by Cloud Tasks: calendar sweep tasks go to
  # cron_playbooks /sweep on the steps queue (domain.md §8.4).
  invokers_by_kind = {
    http      = ["public"]
    pubsub    = ["pubsub_push"]
    tasks     = ["cloud_tasks"]
    firestore = ["eventarc"]
    scheduler = ["cloud_scheduler", "cloud_tasks"]
  }
  invokers = { for name, f in local.functions : name => local.invokers_by_kind[f.trigger.kind] }

  # What each function's own service account may do besides reading and writing Firestore.
  # publish: canonical events on the events topic (webhooks, the API's event ingest, document
  #   triggers, emit steps, lifecycle sweeps). enqueue: step and sweep tasks (dispatch, the
  #   executor's next step, the tick, the API's manual runs and approvals).
  publishes = {
    for name, f in local.functions : name => contains(["http", "firestore", "tasks", "scheduler"], f.trigger.kind)
  }
  # A dead-letter topic's subscriber only records and alerts: it enqueues nothing.
  enqueues = {
    for name, f in local.functions : name => (
      contains(["tasks", "scheduler"], f.trigger.kind) ||
      (f.trigger.kind == "pubsub" && !contains(local.dead_letter_topics, try(f.trigger.topic, ""))) ||
      (f.trigger.kind == "http" && try(f.trigger.auth, "") == "firebase")
    )
  }
  # Per-source webhook secrets (`webhook-…`, created by POST …/webhook-sources) and per-org
  # inbound SMS secrets (also `webhook-…`, PUT …/sms-webhook) are read by the public HTTP
  # functions and written by the dashboard API.
  reads_source_secrets = {
    for name, f in local.functions : name => f.trigger.kind == "http" && try(f.trigger.auth, "") == "public"
  }
  # The catch-up pass (cron_playbooks /catchup) reads the store API credentials (storeapi-…).
  reads_store_api_secrets = {
    for name, f in local.functions : name => f.trigger.kind == "scheduler"
  }
  writes_source_secrets = {
    for name, f in local.functions : name => f.trigger.kind == "http" && try(f.trigger.auth, "") == "firebase"
  }

  # Secret Manager secrets mounted as environment variables, and the functions that read them.
  # Names are the Settings environment names (config.py); every SecretStr setting is here.
  secret_consumers = {
    SHOPIFY_WEBHOOK_SECRET     = ["webhook_shopify"]
    WOOCOMMERCE_WEBHOOK_SECRET = ["webhook_woocommerce"]
    MAILJET_API_KEY            = ["execute_step"]
    MAILJET_SECRET_KEY         = ["execute_step"]
    BLACKLEAF_API_KEY          = ["execute_step", "webhook_blackleaf"] # STOP confirmations
    AGENT_HARNESS_TOKEN        = ["execute_step", "playbooks_api"]
    SLACK_ALERT_WEBHOOK_URL    = ["execute_step", "on_event_dead_lettered"] # the last: ops alerts
    CRON_SECRET                = ["playbooks_api"]
    UNSUBSCRIBE_KEY            = ["execute_step", "email_unsubscribe"] # signs / verifies links
  }
  function_secrets = {
    for name in keys(local.functions) : name => sort([
      for secret, consumers in local.secret_consumers : secret if contains(consumers, name)
    ])
  }

  # Service account ids (6–30 characters, [a-z0-9-], unique): "pb-" + the function name.
  service_account_ids = {
    for name in keys(local.functions) : name => replace(substr("pb-${replace(name, "_", "-")}", 0, 30), "/-+$/", "")
  }

  # Runtime defaults by kind; the root module's function_overrides variable can change any of them.
  runtime_by_kind = {
    http      = { timeout_seconds = 60, memory = "512Mi", max_instances = 20 }
    pubsub    = { timeout_seconds = 120, memory = "512Mi", max_instances = 20 }
    tasks     = { timeout_seconds = 300, memory = "512Mi", max_instances = 50 }
    firestore = { timeout_seconds = 60, memory = "256Mi", max_instances = 20 }
    scheduler = { timeout_seconds = 540, memory = "512Mi", max_instances = 5 }
  }
  runtime = { for name, f in local.functions : name => local.runtime_by_kind[f.trigger.kind] }
}
