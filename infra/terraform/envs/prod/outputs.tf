output "eks_cluster_name" {
  description = "aws eks update-kubeconfig --name <this>"
  value       = module.stack.eks_cluster_name
}

output "kafka_bootstrap_servers" {
  description = "CHAOS__KAFKA__BOOTSTRAP_SERVERS for deploy/k8s (SASL/SCRAM over TLS)."
  value       = module.stack.kafka_bootstrap_servers
}

output "kafka_scram_secret_arns" {
  description = "Secrets Manager ARNs of the Kafka client credentials."
  value       = module.stack.kafka_scram_secret_arns
}

output "postgres_address" {
  description = "Host of CHAOS__DATABASE__URL."
  value       = module.stack.postgres_address
}

output "postgres_master_secret_arn" {
  description = "Secrets Manager ARN of the PostgreSQL master credentials."
  value       = module.stack.postgres_master_secret_arn
}

output "redis_primary_endpoint" {
  description = "Host of CHAOS__REDIS__URL (rediss://, AUTH token in Secrets Manager)."
  value       = module.stack.redis_primary_endpoint
}

output "redis_auth_secret_arn" {
  description = "Secrets Manager ARN of the Redis AUTH token."
  value       = module.stack.redis_auth_secret_arn
}

output "documentdb_endpoint" {
  description = "Writer endpoint of the MongoDB-compatible read model store."
  value       = module.stack.documentdb_endpoint
}

output "documentdb_master_secret_arn" {
  description = "Secrets Manager ARN of the DocumentDB master credentials."
  value       = module.stack.documentdb_master_secret_arn
}

output "warehouse_bucket" {
  description = "S3 bucket of the Parquet warehouse."
  value       = module.stack.warehouse_bucket
}

output "projector_warehouse_role_arn" {
  description = "IAM role assumed by the projector-warehouse service account through EKS Pod Identity."
  value       = module.stack.projector_warehouse_role_arn
}

output "region" {
  description = "Primary region (deploy/k8s/overlays/prod stage.yaml awsRegion)."
  value       = module.stack.region
}

output "app_secret_names" {
  description = "Secrets Manager names of the application secrets (replicated to the DR region)."
  value       = module.stack.app_secret_names
}

output "addon_role_arns" {
  description = "IAM roles of the cluster add-ons (Pod Identity) and the EBS CSI driver."
  value       = module.stack.addon_role_arns
}

output "acm_certificate_arn" {
  description = "ACM certificate of the API names in the primary region."
  value       = module.stack.acm_certificate_arn
}

output "dr_region" {
  description = "DR region (deploy/k8s/overlays/prod-dr stage.yaml awsRegion)."
  value       = module.dr_stack.region
}

output "dr_eks_cluster_name" {
  description = "aws eks update-kubeconfig --region <dr_region> --name <this>"
  value       = module.dr_stack.eks_cluster_name
}

output "dr_kafka_bootstrap_servers" {
  description = "CHAOS__KAFKA__BOOTSTRAP_SERVERS for deploy/k8s/overlays/prod-dr."
  value       = module.dr_stack.kafka_bootstrap_servers
}

output "dr_redis_primary_endpoint" {
  description = "Host of CHAOS__REDIS__URL for deploy/k8s/overlays/prod-dr."
  value       = module.dr_stack.redis_primary_endpoint
}

output "dr_postgres_address" {
  description = "The DR read replica of the event store (promoted on failover)."
  value       = module.dr_stack.postgres_address
}

output "dr_postgres_identifier" {
  description = "Identifier of the DR read replica: aws rds promote-read-replica --db-instance-identifier <this>."
  value       = module.dr_stack.postgres_identifier
}

output "dr_backup_replication_id" {
  description = "Replicated automated backups of the event store in the DR region (point-in-time restore)."
  value       = module.dr.backup_replication_id
}

output "dr_active_region" {
  description = "Region the API names currently prefer."
  value       = module.dr.active_region
}

output "api_hosts" {
  description = "Client-facing API host names (deploy/k8s overlay stage.yaml commandHost, queryHost)."
  value       = module.stack.api_hosts
}

output "regional_api_hosts" {
  description = "The region's own API host names (stage.yaml commandRegionalHost, queryRegionalHost)."
  value       = module.stack.regional_api_hosts
}

output "dr_regional_api_hosts" {
  description = "The DR region's own API host names (deploy/k8s/overlays/prod-dr stage.yaml)."
  value       = module.dr_stack.regional_api_hosts
}

output "dr_warehouse_bucket" {
  description = "The DR region's warehouse bucket (replica of prod's)."
  value       = module.dr_stack.warehouse_bucket
}
