output "eks_cluster_name" {
  description = "aws eks update-kubeconfig --name <this>"
  value       = module.eks.cluster_name
}

output "kafka_bootstrap_servers" {
  description = "CHAOS__KAFKA__BOOTSTRAP_SERVERS for deploy/k8s (SASL/SCRAM over TLS)."
  value       = module.msk.bootstrap_brokers_sasl_scram
}

output "kafka_scram_secret_arns" {
  description = "Secrets Manager ARNs of the Kafka client credentials."
  value       = module.msk.scram_secret_arns
}

output "postgres_address" {
  description = "Host of CHAOS__DATABASE__URL."
  value       = module.rds.address
}

output "postgres_master_secret_arn" {
  description = "Secrets Manager ARN of the PostgreSQL master credentials."
  value       = module.rds.master_user_secret_arn
}

output "redis_primary_endpoint" {
  description = "Host of CHAOS__REDIS__URL (rediss://, AUTH token in Secrets Manager)."
  value       = module.elasticache.primary_endpoint
}

output "redis_auth_secret_arn" {
  description = "Secrets Manager ARN of the Redis AUTH token."
  value       = module.elasticache.auth_token_secret_arn
}

output "documentdb_endpoint" {
  description = "Writer endpoint of the MongoDB-compatible read model store."
  value       = module.documentdb.endpoint
}

output "documentdb_master_secret_arn" {
  description = "Secrets Manager ARN of the DocumentDB master credentials."
  value       = module.documentdb.master_secret_arn
}

output "warehouse_bucket" {
  description = "S3 bucket of the Parquet warehouse."
  value       = module.warehouse.bucket_name
}

output "projector_warehouse_role_arn" {
  description = "IAM role assumed by the projector-warehouse service account through EKS Pod Identity."
  value       = module.eks.pod_role_arns["projector-warehouse"]
}
