variable "name" {
  description = "MSK cluster name."
  type        = string
}

variable "kafka_version" {
  description = "Apache Kafka version of the brokers. Tiered storage needs 3.6.0 or later."
  type        = string
  default     = "3.8.x"
}

variable "vpc_id" {
  description = "VPC of the brokers."
  type        = string
}

variable "subnet_ids" {
  description = "Data-tier subnets, one per AZ; the broker count must be a multiple of their number."
  type        = list(string)
}

variable "allowed_security_groups" {
  description = "Security groups allowed to reach the brokers, keyed by a static name (keys must be known at plan time, the IDs need not be)."
  type        = map(string)
}

variable "broker_count" {
  description = "Number of brokers (a multiple of the number of subnets)."
  type        = number
  default     = 3

  validation {
    condition     = var.broker_count >= 3
    error_message = "Replication factor 3 with min.insync.replicas 2 needs at least three brokers."
  }

  validation {
    condition     = var.broker_count % length(var.subnet_ids) == 0
    error_message = "MSK places the same number of brokers in every subnet: broker_count must be a multiple of the number of subnets."
  }
}

variable "instance_type" {
  description = "Broker instance type."
  type        = string
  default     = "kafka.m7g.large"
}

variable "ebs_volume_size" {
  description = "Initial EBS size per broker in GiB (grown by storage auto scaling)."
  type        = number
  default     = 100
}

variable "ebs_max_volume_size" {
  description = "Upper bound for storage auto scaling per broker in GiB."
  type        = number
  default     = 1000
}

variable "storage_autoscaling" {
  description = "Grow broker EBS volumes automatically up to ebs_max_volume_size."
  type        = bool
  default     = true
}

variable "tiered_storage" {
  description = "Keep old segments in MSK tiered storage. With infinite retention this is what keeps EBS bounded."
  type        = bool
  default     = true
}

variable "scram_users" {
  description = "SASL/SCRAM users, one per Kafka client identity (relay, each projection, analysts)."
  type        = set(string)
  default     = ["relay", "projector-redis"]
}

variable "log_retention_days" {
  description = "Retention of the broker logs in CloudWatch."
  type        = number
  default     = 14
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
