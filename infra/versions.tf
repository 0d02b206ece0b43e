terraform {
  required_version = ">= 1.5"

  required_providers {
    google = {
      source = "hashicorp/google"
      # 6.x: cloudfunctions2 `url` and build service accounts, Cloud Tasks queue-level
      # http_target (OIDC), Firestore field TTL config.
      version = ">= 6.0, < 8.0"
    }
    google-beta = {
      source  = "hashicorp/google-beta"
      version = ">= 6.0, < 8.0" # service identities (the Pub/Sub service agent) only
    }
  }

  # State lives in a GCS bucket created once by hand (infra/README.md, "State bucket"):
  #   terraform -chdir=infra init -backend-config="bucket=<project>-tfstate"
  backend "gcs" {
    prefix = "playbooks"
  }
}

provider "google" {
  project = var.project_id
  region  = local.region
}

provider "google-beta" {
  project = var.project_id
  region  = local.region
}
