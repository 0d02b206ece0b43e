# Cloud Scheduler jobs from the manifest: POST <function run.app URL><path> with an OIDC token of
# the scheduler identity (the only caller besides Cloud Tasks allowed to invoke the cron function).
# The audience is the function's cloudfunctions.net URL (`<functions base URL>/<function>`), the
# one the function itself verifies (PLAYBOOKS_FUNCTIONS_BASE_URL), as for push subscriptions and
# the code's own tasks. Not verifiable offline: should Cloud Run refuse that audience for a gen2
# function, add it with `gcloud run services update <service> --add-custom-audiences=<it>`.
resource "google_cloud_scheduler_job" "job" {
  for_each = local.scheduler_jobs

  project          = var.project_id
  region           = local.region
  name             = each.key
  description      = "Playbooks ${each.value.function} ${each.value.path}"
  schedule         = each.value.schedule
  time_zone        = each.value.timezone
  attempt_deadline = "${min(1800, local.runtime[each.value.function].timeout_seconds)}s"

  retry_config {
    retry_count = 0 # the next tick catches up (domain.md §8.3); a retry would overlap it
  }

  http_target {
    http_method = "POST"
    uri         = "${google_cloudfunctions2_function.function[each.value.function].service_config[0].uri}${each.value.path}"
    headers     = { "Content-Type" = "application/json" }
    body        = base64encode("{}")

    oidc_token {
      service_account_email = google_service_account.caller["cloud_scheduler"].email
      audience              = "${local.functions_base_url}/${each.value.function}"
    }
  }

  depends_on = [google_project_service.api, google_cloud_run_v2_service_iam_member.invoker]
}
