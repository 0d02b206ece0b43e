# Secret Manager secrets, one per SecretStr setting in config.py, named exactly as the environment
# variable the functions read. Terraform creates the secrets and their access bindings only: values
# are added with `gcloud secrets versions add` (infra/README.md) and never enter the state.
resource "google_secret_manager_secret" "secret" {
  for_each = local.secret_names

  project   = var.project_id
  secret_id = each.value
  labels    = var.labels

  replication {
    auto {}
  }

  depends_on = [google_project_service.api]
}

locals {
  secret_bindings = merge([
    for secret, consumers in module.manifest.secret_consumers : {
      for name in consumers : "${secret}/${name}" => { secret = secret, function = name }
    }
  ]...)
}

# Each function may read only the secrets mounted into it.
resource "google_secret_manager_secret_iam_member" "accessor" {
  for_each = local.secret_bindings

  project   = var.project_id
  secret_id = google_secret_manager_secret.secret[each.value.secret].secret_id
  role      = "roles/secretmanager.secretAccessor"
  member    = google_service_account.function[each.value.function].member
}
