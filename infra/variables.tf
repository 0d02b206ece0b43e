variable "project_id" {
  description = "Google Cloud project id to deploy into (a Firebase project: the dashboard signs in with Firebase Auth and listens to Firestore)."
  type        = string
}

variable "region" {
  description = "Region of the functions, queue and scheduler jobs. Null: the manifest's `region`."
  type        = string
  default     = null
}

variable "source_zip" {
  description = "Path of the packaged function source: a zip of build/functions (main.py, requirements.txt, manifest.yaml, playbook_core/), built by `make package` (cloudbuild.yaml, infra/README.md)."
  type        = string
  default     = "../build/functions.zip"
}

variable "source_bucket" {
  description = "Name of the bucket the source zip is uploaded to. Null: \"<project_id>-playbooks-source\"."
  type        = string
  default     = null
}

variable "python_runtime" {
  description = "Cloud Functions runtime for every function."
  type        = string
  default     = "python311"
}

variable "create_firestore_database" {
  description = "Create the Firestore database. False when the project already has one (the existing app's project does)."
  type        = bool
  default     = false
}

variable "firestore_database" {
  description = "Firestore database id the functions use (the code uses the default database)."
  type        = string
  default     = "(default)"
}

variable "firestore_location" {
  description = "Location of the Firestore database (e.g. nam5, us-central1). Firestore Eventarc triggers must be created in this location."
  type        = string
  default     = "nam5"
}

variable "manage_firestore_rules" {
  description = "Release infra/firestore.rules through the Firebase Rules API. False if rules are deployed some other way (firebase deploy --only firestore:rules)."
  type        = bool
  default     = true
}

variable "mounted_secrets" {
  description = "Secrets (Settings environment names) to mount into the functions that use them. Every secret listed needs at least one version before apply (infra/README.md); leave a provider's secret out until you have its credentials and the code reports it as not configured."
  type        = set(string)
  default = [
    "SHOPIFY_WEBHOOK_SECRET",
    "WOOCOMMERCE_WEBHOOK_SECRET",
    "MAILJET_API_KEY",
    "MAILJET_SECRET_KEY",
    "BLACKLEAF_API_KEY",
    "AGENT_HARNESS_TOKEN",
    "SLACK_ALERT_WEBHOOK_URL",
    "CRON_SECRET",
    "UNSUBSCRIBE_KEY",
  ]
}

variable "org_secret_prefixes" {
  description = "Secret id prefixes of secrets the code creates at run time (per-source webhook secrets and per-org inbound SMS secrets `webhook-…`, domain.md §6.1, consent.md §3). The public HTTP functions may read them; the dashboard API may create them and add versions."
  type        = list(string)
  default     = ["webhook-"]
}

variable "store_api_secret_prefix" {
  description = "Secret id prefix of per-source store API credentials (Shopify Admin API token, WooCommerce consumer key and secret) the catch-up pass reads orders with. The dashboard API creates them; only the catch-up pass (cron_playbooks) may read them, not the public webhook receivers."
  type        = string
  default     = "storeapi-"
}

variable "org_slack_secret_prefix" {
  description = "Secret id prefix of per-org Slack webhook secrets (playbook_settings.slackWebhookSecretRef, domain.md §2.3). The functions that send Slack messages may read secrets with this prefix and no others; the dashboard API creates them from settings.slackWebhookUrl under a name derived from the org id."
  type        = string
  default     = "slack-"
}

variable "public_base_url" {
  description = "PLAYBOOKS_PUBLIC_BASE_URL: the base of the URLs people are given (unsubscribe links in email, the inbound SMS webhook URL), e.g. a custom domain mapped to the functions. Null: the functions' own cloudfunctions.net base."
  type        = string
  default     = null
}

variable "mailjet_api_base" {
  description = "MAILJET_API_BASE."
  type        = string
  default     = "https://api.mailjet.com"
}

variable "mailjet_from_email" {
  description = "MAILJET_FROM_EMAIL: the sender of every playbook email (a sender validated in Mailjet)."
  type        = string
  default     = "playbooks@bakedbot.ai"
}

variable "mailjet_from_name" {
  description = "MAILJET_FROM_NAME."
  type        = string
  default     = "BakedBot AI"
}

variable "blackleaf_api_base" {
  description = "BLACKLEAF_API_BASE. Null: SMS is reported as not configured."
  type        = string
  default     = null
}

variable "agent_harness_url" {
  description = "AGENT_HARNESS_URL. Null: delegate steps and AgentChat generation report the harness as not configured."
  type        = string
  default     = null
}

variable "org_run_starts_per_second" {
  description = "PLAYBOOKS_ORG_RUN_STARTS_PER_SECOND: runs of one org an instance starts per second before it schedules the rest later (fair dispatch, domain/fairness.py). Null: the code's default."
  type        = number
  default     = null
}

variable "function_overrides" {
  description = "Per-function runtime settings that replace the defaults by trigger kind (infra/modules/manifest): {timeout_seconds, memory, max_instances, min_instances}."
  type = map(object({
    timeout_seconds = optional(number)
    memory          = optional(string)
    max_instances   = optional(number)
    min_instances   = optional(number)
  }))
  default = {}
}

variable "dead_letter_retention" {
  description = "How long dead-lettered events are kept on the dead-letter hold subscription (max 31 days)."
  type        = string
  default     = "2678400s"
}

variable "labels" {
  description = "Labels put on every labelled resource."
  type        = map(string)
  default     = { app = "playbooks" }
}
