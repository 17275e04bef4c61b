# Dev: three AZs (MSK needs a broker per AZ), spot nodes, one NAT gateway, single-instance data stores.
module "stack" {
  source = "../../modules/stack"

  name               = "chaos-world-dev"
  vpc_cidr           = "10.10.0.0/16"
  single_nat_gateway = true

  eks_endpoint_public_access = true
  eks_public_access_cidrs    = var.api_public_access_cidrs
  eks_admin_principal_arns   = var.admin_principal_arns
  eks_node_groups = {
    general = {
      instance_types = ["m7i.large"]
      capacity_type  = "SPOT"
      min_size       = 2
      max_size       = 4
      desired_size   = 2
    }
  }

  msk_broker_count        = 3
  msk_instance_type       = "kafka.t3.small"
  msk_ebs_volume_size     = 50
  msk_tiered_storage      = false # kafka.t3.small supports neither tiered storage
  msk_storage_autoscaling = false # nor storage auto scaling

  rds_instance_class        = "db.t4g.medium"
  rds_allocated_storage     = 20
  rds_max_allocated_storage = 100
  rds_multi_az              = false # dev only: the one stage where an AZ outage may lose the store
  rds_backup_retention_days = 3
  rds_deletion_protection   = false

  elasticache_node_type               = "cache.t4g.small"
  elasticache_replicas                = 0
  elasticache_snapshot_retention_days = 0

  documentdb_instance_class        = "db.t4g.medium"
  documentdb_instance_count        = 1
  documentdb_backup_retention_days = 1
  documentdb_deletion_protection   = false
  documentdb_ca_bundle             = file(var.documentdb_ca_bundle_file)

  warehouse_force_destroy = true

  dns_zone_id = var.dns_zone_id
  api_domain  = var.api_domain
}
