variable "name" {
  description = "Identifier of the DB instance."
  type        = string
}

variable "engine_version" {
  description = "PostgreSQL version. The event store needs 13+ (pg_current_xact_id, xid8); 15 is what tests run."
  type        = string
  default     = "15"
}

variable "vpc_id" {
  description = "VPC of the database."
  type        = string
}

variable "subnet_ids" {
  description = "Data-tier subnets in at least two AZs."
  type        = list(string)
}

variable "allowed_security_groups" {
  description = "Security groups allowed to connect, keyed by a static name (keys must be known at plan time)."
  type        = map(string)
}

variable "instance_class" {
  description = "DB instance class."
  type        = string
  default     = "db.m7g.large"
}

variable "allocated_storage" {
  description = "Initial gp3 storage in GiB."
  type        = number
  default     = 100
}

variable "max_allocated_storage" {
  description = "Upper bound for storage auto scaling in GiB."
  type        = number
  default     = 1000
}

variable "multi_az" {
  description = "Synchronous standby in a second AZ. The event store is the source of truth: keep it on outside dev."
  type        = bool
  default     = true
}

variable "database_name" {
  description = "Name of the application database."
  type        = string
  default     = "chaos"
}

variable "master_username" {
  description = "Master user; its password is generated and kept in Secrets Manager by RDS."
  type        = string
  default     = "chaos_admin"
}

variable "backup_retention_days" {
  description = "Days of automated backups and point-in-time recovery."
  type        = number
  default     = 14
}

variable "deletion_protection" {
  description = "Refuse to delete the instance."
  type        = bool
  default     = true
}

variable "replicate_source_db" {
  description = "ARN of a PostgreSQL instance in another region to replicate (the DR region's read replica, promoted on failover); null for a primary."
  type        = string
  default     = null
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
