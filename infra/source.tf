# The packaged source: one zip of build/functions (`make package`: functions/main.py,
# functions/requirements.txt, functions/manifest.yaml and a copy of shared/src/playbook_core),
# uploaded under its content hash so a changed zip redeploys every function and an unchanged one
# redeploys nothing.
resource "google_storage_bucket" "source" {
  project                     = var.project_id
  name                        = coalesce(var.source_bucket, "${var.project_id}-playbooks-source")
  location                    = upper(local.region)
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = false
  labels                      = var.labels

  lifecycle_rule {
    condition {
      age = 90 # older sources are only needed to roll back by hand
    }
    action {
      type = "Delete"
    }
  }

  depends_on = [google_project_service.api]
}

resource "google_storage_bucket_object" "source" {
  bucket = google_storage_bucket.source.name
  name   = "functions/${filemd5(var.source_zip)}.zip"
  source = var.source_zip
}
