# Firestore: the database (optional: the existing app's project has one), the composite indexes
# and field overrides of infra/firestore.indexes.json (the same file firebase.json points at, so
# there is one list), and the security rules of infra/firestore.rules.

resource "google_firestore_database" "database" {
  count = var.create_firestore_database ? 1 : 0

  project                 = var.project_id
  name                    = var.firestore_database
  location_id             = var.firestore_location
  type                    = "FIRESTORE_NATIVE"
  deletion_policy         = "ABANDON"
  delete_protection_state = "DELETE_PROTECTION_ENABLED"

  depends_on = [google_project_service.api]
}

locals {
  # Key: collection group, scope and fields, e.g. "playbooks|COLLECTION|orgId:ASCENDING,status:ASCENDING,…".
  composite_indexes = {
    for index in local.firestore_indexes.indexes :
    "${index.collectionGroup}|${try(index.queryScope, "COLLECTION")}|${join(",", [
      for field in index.fields : "${field.fieldPath}:${try(field.order, field.arrayConfig)}"
    ])}" => index
  }
  field_overrides = {
    for override in local.firestore_indexes.fieldOverrides : "${override.collectionGroup}.${override.fieldPath}" => override
  }
}

resource "google_firestore_index" "composite" {
  for_each = local.composite_indexes

  project     = var.project_id
  database    = var.firestore_database
  collection  = each.value.collectionGroup
  query_scope = try(each.value.queryScope, "COLLECTION")

  dynamic "fields" {
    for_each = each.value.fields

    content {
      field_path   = fields.value.fieldPath
      order        = try(fields.value.order, null)
      array_config = try(fields.value.arrayConfig, null)
    }
  }

  depends_on = [google_project_service.api, google_firestore_database.database]
}

# Field overrides: TTL policies on expiresAt (domain.md §2.1 retention) and index exemptions for
# large maps and texts (event, trace, output, preview, definition). An override with no indexes
# exempts the field; a TTL override lists the single-field indexes it keeps.
resource "google_firestore_field" "override" {
  for_each = local.field_overrides

  project    = var.project_id
  database   = var.firestore_database
  collection = each.value.collectionGroup
  field      = each.value.fieldPath

  dynamic "ttl_config" {
    for_each = try(each.value.ttl, false) ? [true] : []

    content {}
  }

  index_config {
    dynamic "indexes" {
      for_each = each.value.indexes

      content {
        order        = try(indexes.value.order, null)
        array_config = try(indexes.value.arrayConfig, null)
        query_scope  = try(indexes.value.queryScope, "COLLECTION")
      }
    }
  }

  depends_on = [google_project_service.api, google_firestore_database.database]
}

resource "google_firebaserules_ruleset" "firestore" {
  count = var.manage_firestore_rules ? 1 : 0

  project = var.project_id

  source {
    files {
      name    = "firestore.rules"
      content = file("${path.module}/firestore.rules")
    }
  }

  lifecycle {
    create_before_destroy = true
  }

  depends_on = [google_project_service.api, google_firestore_database.database]
}

resource "google_firebaserules_release" "firestore" {
  count = var.manage_firestore_rules ? 1 : 0

  project      = var.project_id
  name         = var.firestore_database == "(default)" ? "cloud.firestore" : "cloud.firestore/${var.firestore_database}"
  ruleset_name = "projects/${var.project_id}/rulesets/${google_firebaserules_ruleset.firestore[0].name}"

  lifecycle {
    replace_triggered_by = [google_firebaserules_ruleset.firestore[0]]
  }
}
