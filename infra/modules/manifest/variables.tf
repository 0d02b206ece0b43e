variable "manifest_path" {
  description = "Path of functions/manifest.yaml, the single list of deployables."
  type        = string
}
