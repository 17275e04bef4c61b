# Prod: three AZs, a NAT gateway per AZ, private API endpoint, multi-AZ everything.
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
}
