# Dev: three AZs (MSK needs a broker per AZ), spot nodes, one NAT gateway, single-instance data stores.
locals {
  name = "chaos-world-dev"

  # Pods reach the data stores through the EKS cluster security group (managed nodes carry it).
  from_eks = { eks_nodes = module.eks.node_security_group_id }
}

data "aws_availability_zones" "available" {
  state = "available"
}

data "aws_caller_identity" "current" {}

module "vpc" {
  source = "../../modules/vpc"

  name               = local.name
  cidr_block         = "10.10.0.0/16"
  azs                = slice(data.aws_availability_zones.available.names, 0, 3)
  single_nat_gateway = true
  eks_cluster_name   = local.name
}

module "eks" {
  source = "../../modules/eks"

  name                   = local.name
  vpc_id                 = module.vpc.vpc_id
  subnet_ids             = module.vpc.private_subnet_ids
  endpoint_public_access = true
  public_access_cidrs    = var.api_public_access_cidrs
  admin_principal_arns   = var.admin_principal_arns

  node_groups = {
    general = {
      instance_types = ["m7i.large"]
      capacity_type  = "SPOT"
      min_size       = 2
      max_size       = 4
      desired_size   = 2
    }
  }

  pod_identities = {
    projector-warehouse = {
      namespace       = "chaos-world"
      service_account = "projector-warehouse"
      policy_arns     = [module.warehouse.writer_policy_arn]
    }
  }
}

module "msk" {
  source = "../../modules/msk"

  name                    = local.name
  vpc_id                  = module.vpc.vpc_id
  subnet_ids              = module.vpc.data_subnet_ids
  allowed_security_groups = local.from_eks

  broker_count        = 3
  instance_type       = "kafka.t3.small"
  ebs_volume_size     = 50
  tiered_storage      = false # kafka.t3.small supports neither tiered storage
  storage_autoscaling = false # nor storage auto scaling
}

module "rds" {
  source = "../../modules/rds"

  name                    = local.name
  engine_version          = "15"
  vpc_id                  = module.vpc.vpc_id
  subnet_ids              = module.vpc.data_subnet_ids
  allowed_security_groups = local.from_eks

  instance_class        = "db.t4g.medium"
  allocated_storage     = 20
  max_allocated_storage = 100
  multi_az              = false # dev only: the one stage where an AZ outage may lose the store
  backup_retention_days = 3
  deletion_protection   = false
}

module "elasticache" {
  source = "../../modules/elasticache"

  name                    = local.name
  engine_version          = "7.1"
  vpc_id                  = module.vpc.vpc_id
  subnet_ids              = module.vpc.data_subnet_ids
  allowed_security_groups = local.from_eks

  node_type               = "cache.t4g.small"
  replicas                = 0
  snapshot_retention_days = 0
}

module "documentdb" {
  source = "../../modules/documentdb"

  name                    = local.name
  vpc_id                  = module.vpc.vpc_id
  subnet_ids              = module.vpc.data_subnet_ids
  allowed_security_groups = local.from_eks

  instance_class        = "db.t4g.medium"
  instance_count        = 1
  backup_retention_days = 1
  deletion_protection   = false
}

module "warehouse" {
  source = "../../modules/s3"

  bucket_name = "${local.name}-warehouse-${data.aws_caller_identity.current.account_id}"

  force_destroy = true
}
