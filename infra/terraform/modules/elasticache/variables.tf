variable "name" {
  description = "Replication group ID."
  type        = string
}

variable "engine_version" {
  description = "Redis version."
  type        = string
  default     = "7.1"
}

variable "vpc_id" {
  description = "VPC of the cache."
  type        = string
}

variable "subnet_ids" {
  description = "Data-tier subnets."
  type        = list(string)
}

variable "allowed_security_groups" {
  description = "Security groups allowed to connect, keyed by a static name (keys must be known at plan time)."
  type        = map(string)
}

variable "node_type" {
  description = "Cache node type."
  type        = string
  default     = "cache.r7g.large"
}

variable "replicas" {
  description = "Read replicas next to the primary; 1 or more enables automatic failover and multi-AZ."
  type        = number
  default     = 1
}

variable "snapshot_retention_days" {
  description = "Days of daily snapshots (0 disables them). Read models can be rebuilt from Kafka, snapshots just make that rarer."
  type        = number
  default     = 3
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
