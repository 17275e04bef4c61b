variable "name" {
  description = "Cluster identifier."
  type        = string
}

variable "engine_version" {
  description = "DocumentDB engine version (MongoDB 5.0 API)."
  type        = string
  default     = "5.0.0"
}

variable "vpc_id" {
  description = "VPC of the cluster."
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
  description = "Instance class of every cluster instance."
  type        = string
  default     = "db.r6g.large"
}

variable "instance_count" {
  description = "Instances in the cluster: one primary plus replicas spread over AZs."
  type        = number
  default     = 2
}

variable "master_username" {
  description = "Master user name."
  type        = string
  default     = "chaos_admin"
}

variable "backup_retention_days" {
  description = "Days of automated backups."
  type        = number
  default     = 7
}

variable "deletion_protection" {
  description = "Refuse to delete the cluster."
  type        = bool
  default     = true
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
