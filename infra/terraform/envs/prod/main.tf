# Prod: three AZs, a NAT gateway per AZ, private API endpoint, multi-AZ everything; and a warm
# standby in a second region (docs/dr.md): RPO 1 minute, RTO 1 hour for commands.
module "stack" {
  source = "../../modules/stack"

  name               = "chaos-world-prod"
  vpc_cidr           = "10.30.0.0/16"
  single_nat_gateway = false

  eks_endpoint_public_access = false
  eks_public_access_cidrs    = var.api_public_access_cidrs
  eks_admin_principal_arns   = var.admin_principal_arns
  eks_node_groups = {
    general = {
      instance_types = ["m7i.xlarge", "m6i.xlarge"]
      min_size       = 3
      max_size       = 12
      desired_size   = 6
    }
  }

  msk_broker_count        = 3
  msk_instance_type       = "kafka.m7g.xlarge"
  msk_ebs_volume_size     = 500
  msk_ebs_max_volume_size = 4000

  rds_instance_class        = "db.r7g.2xlarge"
  rds_allocated_storage     = 500
  rds_max_allocated_storage = 4000
  rds_multi_az              = true
  rds_backup_retention_days = 35

  elasticache_node_type = "cache.r7g.xlarge"
  elasticache_replicas  = 2

  documentdb_instance_class = "db.r6g.xlarge"
  documentdb_instance_count = 3
  documentdb_ca_bundle      = file(var.documentdb_ca_bundle_file)

  # The JWT key and database passwords exist in the DR region too (Secrets Manager replicas).
  secret_replica_regions = [var.dr_region]

  dns_zone_id               = var.dns_zone_id
  api_domain                = var.api_domain
  create_global_dns_records = false # failover records in module "dr"
}

# The DR region's stack: the same shape, sized as a warm standby (scaled up during a failover,
# docs/dr.md). Its event store is a cross-region read replica of prod's, promoted on failover; its
# Kafka, Redis and DocumentDB are empty and filled by replay; its bucket receives the warehouse's
# replicas. It reads prod's application secrets from their replicas in this region.
module "dr_stack" {
  source = "../../modules/stack"
  providers = {
    aws = aws.dr
  }

  name               = "chaos-world-prod-dr"
  vpc_cidr           = "10.40.0.0/16"
  single_nat_gateway = false

  eks_endpoint_public_access = false
  eks_public_access_cidrs    = var.api_public_access_cidrs
  eks_admin_principal_arns   = var.admin_principal_arns
  eks_node_groups = {
    general = {
      instance_types = ["m7i.xlarge", "m6i.xlarge"]
      min_size       = 2
      max_size       = 12
      desired_size   = 2
    }
  }

  msk_broker_count        = 3
  msk_instance_type       = "kafka.m7g.large"
  msk_ebs_volume_size     = 500
  msk_ebs_max_volume_size = 4000

  # Same class as the primary: after promotion it takes the whole write load.
  rds_instance_class        = "db.r7g.2xlarge"
  rds_allocated_storage     = 500
  rds_max_allocated_storage = 4000
  rds_multi_az              = true
  rds_backup_retention_days = 7
  # Null once promoted (docs/dr.md): the DR instance is then the standalone event store.
  rds_replicate_source_db = var.dr_promoted ? null : module.stack.postgres_arn

  elasticache_node_type = "cache.r7g.large"
  elasticache_replicas  = 1

  documentdb_instance_class = "db.r6g.large"
  documentdb_instance_count = 1
  # This region's bundle: DocumentDB's certificates are signed by per-region CAs.
  documentdb_ca_bundle = file(var.dr_documentdb_ca_bundle_file)

  create_app_secrets        = false
  app_secrets_stack         = "chaos-world-prod"
  dns_zone_id               = var.dns_zone_id
  api_domain                = var.api_domain
  create_global_dns_records = false
}

module "dr" {
  source = "../../modules/dr"
  providers = {
    aws    = aws
    aws.dr = aws.dr
  }

  name           = "chaos-world-prod"
  primary_region = var.region
  dr_region      = var.dr_region
  active_region  = var.active_region

  source_db_instance_arn    = module.stack.postgres_arn
  backup_retention_days     = 14
  dr_db_instance_identifier = module.dr_stack.postgres_identifier
  alarm_actions             = var.alarm_actions

  source_bucket_name      = module.stack.warehouse_bucket
  source_bucket_arn       = module.stack.warehouse_bucket_arn
  source_kms_key_arn      = module.stack.warehouse_kms_key_arn
  destination_bucket_arn  = module.dr_stack.warehouse_bucket_arn
  destination_kms_key_arn = module.dr_stack.warehouse_kms_key_arn

  dns_zone_id = var.dns_zone_id
  api_domain  = var.api_domain
}
