variable "name" {
  description = "Name prefix of the DR resources, e.g. chaos-world-prod."
  type        = string
}

variable "primary_region" {
  description = "Region of the primary stack."
  type        = string
}

variable "dr_region" {
  description = "Region of the DR stack."
  type        = string
}

variable "active_region" {
  description = "Which region's API the client-facing names resolve to first (PRIMARY role): primary, or dr after a failover (docs/dr.md)."
  type        = string
  default     = "primary"

  validation {
    condition     = contains(["primary", "dr"], var.active_region)
    error_message = "active_region is primary or dr."
  }
}

variable "source_db_instance_arn" {
  description = "ARN of the primary event store, whose automated backups are replicated."
  type        = string
}

variable "backup_retention_days" {
  description = "Days of replicated automated backups (point-in-time restore window in the DR region)."
  type        = number
  default     = 14
}

variable "dr_db_instance_identifier" {
  description = "Identifier of the DR read replica (replica lag alarm)."
  type        = string
}

variable "replica_lag_alarm_seconds" {
  description = "Replica lag that raises the alarm: the recovery point objective of a regional failover."
  type        = number
  default     = 60
}

variable "alarm_actions" {
  description = "SNS topic ARNs notified by the replica lag alarm."
  type        = list(string)
  default     = []
}

variable "source_bucket_name" {
  description = "Primary warehouse bucket (replication source; versioned)."
  type        = string
}

variable "source_bucket_arn" {
  description = "ARN of the primary warehouse bucket."
  type        = string
}

variable "source_kms_key_arn" {
  description = "KMS key of the primary warehouse bucket."
  type        = string
}

variable "destination_bucket_arn" {
  description = "ARN of the DR stack's warehouse bucket (versioned)."
  type        = string
}

variable "destination_kms_key_arn" {
  description = "KMS key of the DR stack's warehouse bucket: replicas are encrypted with it."
  type        = string
}

variable "dns_zone_id" {
  description = "Route 53 hosted zone of api_domain; empty = no failover records."
  type        = string
  default     = ""
}

variable "api_domain" {
  description = "Domain of the API names (command.<api_domain>, query.<api_domain>)."
  type        = string
  default     = ""
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
