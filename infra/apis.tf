# Every API the deployment uses. Serviceusage and Cloud Resource Manager must already be on for
# Terraform to enable the rest (infra/README.md, "Project").
locals {
  apis = toset([
    "artifactregistry.googleapis.com", # function images built by Cloud Build
    "cloudbuild.googleapis.com",       # builds gen2 function sources
    "cloudfunctions.googleapis.com",
    "cloudresourcemanager.googleapis.com",
    "cloudscheduler.googleapis.com",
    "cloudtasks.googleapis.com",
    "eventarc.googleapis.com", # Firestore document triggers
    "firebaserules.googleapis.com",
    "firestore.googleapis.com",
    "iam.googleapis.com",
    "iamcredentials.googleapis.com", # OIDC tokens for push, tasks and scheduler callers
    "logging.googleapis.com",
    "pubsub.googleapis.com",
    "run.googleapis.com", # gen2 functions run on Cloud Run
    "secretmanager.googleapis.com",
    "storage.googleapis.com",
  ])
}

resource "google_project_service" "api" {
  for_each = local.apis

  project            = var.project_id
  service            = each.value
  disable_on_destroy = false
}
