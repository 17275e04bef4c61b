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
  description = "Region of the stage (deploy/k8s overlay stage.yaml awsRegion)."
  value       = module.stack.region
}

output "app_secret_names" {
  description = "Secrets Manager names of the application secrets the manifests read."
  value       = module.stack.app_secret_names
}

output "addon_role_arns" {
  description = "IAM roles of the cluster add-ons (Pod Identity) and the EBS CSI driver."
  value       = module.stack.addon_role_arns
}

output "acm_certificate_arn" {
  description = "ACM certificate of the API names."
  value       = module.stack.acm_certificate_arn
}

output "api_hosts" {
  description = "Client-facing API host names (deploy/k8s overlay stage.yaml commandHost, queryHost)."
  value       = module.stack.api_hosts
}

output "regional_api_hosts" {
  description = "The region's own API host names (stage.yaml commandRegionalHost, queryRegionalHost)."
  value       = module.stack.regional_api_hosts
}
