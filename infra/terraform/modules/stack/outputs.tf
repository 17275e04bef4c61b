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
  description = "Secrets Manager ARN of the PostgreSQL master credentials (deploy/k8s overlay stage.yaml postgresMasterSecret)."
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

output "region" {
  description = "AWS region of the stack (deploy/k8s overlay stage.yaml awsRegion)."
  value       = local.region
}

output "postgres_arn" {
  description = "ARN of the event store instance (source of the DR replica and of backup replication)."
  value       = module.rds.arn
}

output "postgres_identifier" {
  description = "Identifier of the event store instance."
  value       = module.rds.identifier
}

output "app_secret_names" {
  description = "Secrets Manager names of the application secrets the manifests read."
  value = {
    jwt              = "${local.app_secrets_stack}/app/jwt-secret"
    postgres_users   = "${local.app_secrets_stack}/app/postgres-users"
    documentdb_users = "${local.app_secrets_stack}/app/documentdb-users"
    endpoints        = aws_secretsmanager_secret.endpoints.name
  }
}

output "warehouse_bucket_arn" {
  description = "ARN of the Parquet warehouse bucket."
  value       = module.warehouse.bucket_arn
}

output "warehouse_kms_key_arn" {
  description = "KMS key encrypting the warehouse bucket."
  value       = module.warehouse.kms_key_arn
}

output "api_hosts" {
  description = "Client-facing API host names (Ingress rules; deploy/k8s overlay stage.yaml commandHost/queryHost)."
  value       = local.api_hosts
}

output "regional_api_hosts" {
  description = "This region's own API host names (published by external-dns; probed by the failover health checks)."
  value       = local.regional_hosts
}

output "acm_certificate_arn" {
  description = "Validated ACM certificate of the API host names (null without dns_zone_id)."
  value       = try(aws_acm_certificate_validation.api[0].certificate_arn, null)
}

output "addon_role_arns" {
  description = "IAM roles of the cluster add-ons through EKS Pod Identity (external-secrets, aws-load-balancer-controller, external-dns) and of the EBS CSI driver."
  value = merge(
    { for key in ["external-secrets", "aws-load-balancer-controller", "external-dns"] : key => module.eks.pod_role_arns[key] },
    { ebs-csi-driver = module.eks.ebs_csi_role_arn },
  )
}
