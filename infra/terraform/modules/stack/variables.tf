# Stage-specific values. Those without a default are set by every stage; the defaults of the others
# are the child modules' own (the production-safe choice) and only dev overrides them.

variable "name" {
  description = "Name of the stage's resources, e.g. chaos-world-prod (EKS cluster, VPC, data stores, bucket prefix)."
  type        = string
}

# --- Network -------------------------------------------------------------------------------------

variable "vpc_cidr" {
  description = "IPv4 CIDR of the stage's VPC: its own /16 so stages can be peered later."
  type        = string
}

variable "az_count" {
  description = "Availability zones used (the first N available). MSK needs a broker per AZ."
  type        = number
  default     = 3
}

variable "single_nat_gateway" {
  description = "One NAT gateway for all AZs (cheap) instead of one per AZ."
  type        = bool
}

# --- EKS -----------------------------------------------------------------------------------------

variable "eks_endpoint_public_access" {
  description = "Expose the Kubernetes API endpoint publicly (restricted to eks_public_access_cidrs)."
  type        = bool
}

variable "eks_public_access_cidrs" {
  description = "CIDRs allowed to reach the EKS API endpoint when it is public."
  type        = list(string)
  default     = []
}

variable "eks_admin_principal_arns" {
  description = "IAM roles (operators, CI deployer) given cluster-admin on the EKS cluster through access entries; the creator gets no implicit access."
  type        = list(string)

  validation {
    condition     = length(var.eks_admin_principal_arns) > 0
    error_message = "Name at least one admin principal, or nobody can use the Kubernetes API."
  }
}

variable "eks_node_groups" {
  description = "Managed node groups keyed by name (see modules/eks)."
  type = map(object({
    instance_types = list(string)
    capacity_type  = optional(string, "ON_DEMAND")
    min_size       = number
    max_size       = number
    desired_size   = number
    labels         = optional(map(string), {})
  }))
}

# --- MSK -----------------------------------------------------------------------------------------

variable "msk_broker_count" {
  description = "Kafka brokers (a multiple of az_count)."
  type        = number
}

variable "msk_instance_type" {
  description = "Broker instance type."
  type        = string
}

variable "msk_ebs_volume_size" {
  description = "Initial EBS size per broker in GiB."
  type        = number
}

variable "msk_ebs_max_volume_size" {
  description = "Upper bound for storage auto scaling per broker in GiB."
  type        = number
  default     = 1000
}

variable "msk_tiered_storage" {
  description = "Keep old segments in MSK tiered storage (not supported by kafka.t3.small)."
  type        = bool
  default     = true
}

variable "msk_storage_autoscaling" {
  description = "Grow broker EBS volumes automatically (not supported by kafka.t3.small)."
  type        = bool
  default     = true
}

# --- RDS (PostgreSQL event store) ----------------------------------------------------------------

variable "rds_instance_class" {
  description = "DB instance class of the event store."
  type        = string
}

variable "rds_allocated_storage" {
  description = "Initial gp3 storage in GiB."
  type        = number
}

variable "rds_max_allocated_storage" {
  description = "Upper bound for storage auto scaling in GiB."
  type        = number
}

variable "rds_multi_az" {
  description = "Synchronous standby in a second AZ. The event store is the source of truth: keep it on outside dev."
  type        = bool
}

variable "rds_backup_retention_days" {
  description = "Days of automated backups and point-in-time recovery."
  type        = number
}

variable "rds_replicate_source_db" {
  description = "ARN of the primary's PostgreSQL instance when this stack is a DR standby (its event store is then a cross-region read replica); null otherwise."
  type        = string
  default     = null
}

variable "rds_deletion_protection" {
  description = "Refuse to delete the DB instance."
  type        = bool
  default     = true
}

# --- ElastiCache (Redis read models) -------------------------------------------------------------

variable "elasticache_node_type" {
  description = "Cache node type."
  type        = string
}

variable "elasticache_replicas" {
  description = "Read replicas next to the primary; 1 or more enables automatic failover and multi-AZ."
  type        = number
}

variable "elasticache_snapshot_retention_days" {
  description = "Days of daily snapshots (0 disables them)."
  type        = number
  default     = 3
}

# --- DocumentDB ----------------------------------------------------------------------------------

variable "documentdb_instance_class" {
  description = "Instance class of every DocumentDB instance."
  type        = string
}

variable "documentdb_instance_count" {
  description = "DocumentDB instances: one primary plus replicas spread over AZs."
  type        = number
}

variable "documentdb_backup_retention_days" {
  description = "Days of automated DocumentDB backups."
  type        = number
  default     = 7
}

variable "documentdb_deletion_protection" {
  description = "Refuse to delete the DocumentDB cluster."
  type        = bool
  default     = true
}

variable "documentdb_ca_bundle" {
  description = "PEM bundle of the CAs that sign DocumentDB's TLS certificates in this stack's region: the region's bundle, https://truststore.pki.rds.amazonaws.com/<region>/<region>-bundle.pem (docs/deploy.md). Stored as the Secrets Manager entry <name>/documentdb-ca, which the pods connecting to DocumentDB mount."
  type        = string

  validation {
    condition     = startswith(trimspace(var.documentdb_ca_bundle), "-----BEGIN CERTIFICATE-----") && length(var.documentdb_ca_bundle) <= 65536
    error_message = "documentdb_ca_bundle is a PEM bundle of certificates within Secrets Manager's 64 KiB: use the region's bundle (a few KiB)."
  }
}

# --- S3 warehouse --------------------------------------------------------------------------------

variable "warehouse_force_destroy" {
  description = "Allow destroying a non-empty warehouse bucket (dev only)."
  type        = bool
  default     = false
}

# --- Secrets ---------------------------------------------------------------------------------------

variable "create_app_secrets" {
  description = "Create the application secrets (JWT key, database role passwords). False for a DR standby, which reads the primary's replicas."
  type        = bool
  default     = true
}

variable "app_secrets_stack" {
  description = "Name of the stack whose <name>/app/* secrets the External Secrets Operator may read; empty = this one."
  type        = string
  default     = ""
}

variable "secret_replica_regions" {
  description = "Regions Secrets Manager replicates the application secrets to (prod: the DR region)."
  type        = list(string)
  default     = []
}

# --- Edge ------------------------------------------------------------------------------------------

variable "dns_zone_id" {
  description = "Route 53 hosted zone of api_domain; empty = no certificate and no records managed here."
  type        = string
  default     = ""
}

variable "api_domain" {
  description = "Domain under which the APIs are served: command.<api_domain>, query.<api_domain>."
  type        = string
  default     = ""

  validation {
    condition     = var.api_domain == "" || can(regex("^[a-z0-9.-]+$", var.api_domain))
    error_message = "api_domain is a DNS name such as chaos-world.example.com."
  }
}

variable "create_global_dns_records" {
  description = "Point command.<api_domain> and query.<api_domain> at this region (false in prod, where modules/dr makes failover records)."
  type        = bool
  default     = true
}

variable "load_balancer_controller_policy_json" {
  description = "IAM policy document of the AWS Load Balancer Controller; null = the scoped policy in iam.tf. Pass the controller's published iam_policy.json to use it verbatim."
  type        = string
  default     = null
}
