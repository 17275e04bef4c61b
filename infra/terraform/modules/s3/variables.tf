variable "bucket_name" {
  description = "Globally unique name of the warehouse bucket."
  type        = string
}

variable "noncurrent_version_days" {
  description = "Days a replaced or deleted Parquet object version is kept (undo window for a bad compaction)."
  type        = number
  default     = 30
}

variable "force_destroy" {
  description = "Allow destroying a non-empty bucket (dev only)."
  type        = bool
  default     = false
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
