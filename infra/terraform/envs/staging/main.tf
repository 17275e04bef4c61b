# Staging: production topology (three AZs, multi-AZ data stores) at smaller sizes.
module "stack" {
  source = "../../modules/stack"

  name               = "chaos-world-staging"
  vpc_cidr           = "10.20.0.0/16"
  single_nat_gateway = true

  eks_endpoint_public_access = true
  eks_public_access_cidrs    = var.api_public_access_cidrs
  eks_admin_principal_arns   = var.admin_principal_arns
  eks_node_groups = {
    general = {
      instance_types = ["m7i.large", "m6i.large"]
      min_size       = 3
      max_size       = 6
      desired_size   = 3
    }
  }

  msk_broker_count    = 3
  msk_instance_type   = "kafka.m7g.large"
  msk_ebs_volume_size = 100

  rds_instance_class        = "db.m7g.large"
  rds_allocated_storage     = 50
  rds_max_allocated_storage = 500
  rds_multi_az              = true
  rds_backup_retention_days = 7

  elasticache_node_type = "cache.r7g.large"
  elasticache_replicas  = 1

  documentdb_instance_class = "db.r6g.large"
  documentdb_instance_count = 2
  documentdb_ca_bundle      = file(var.documentdb_ca_bundle_file)

  dns_zone_id = var.dns_zone_id
  api_domain  = var.api_domain
}
