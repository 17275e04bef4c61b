# Staging: production topology (three AZs, multi-AZ data stores) at smaller sizes.
locals {
  name = "chaos-world-staging"

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
  cidr_block         = "10.20.0.0/16"
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
      instance_types = ["m7i.large", "m6i.large"]
      min_size       = 3
      max_size       = 6
      desired_size   = 3
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

  broker_count    = 3
  instance_type   = "kafka.m7g.large"
  ebs_volume_size = 100
}

module "rds" {
  source = "../../modules/rds"

  name                    = local.name
  engine_version          = "15"
  vpc_id                  = module.vpc.vpc_id
  subnet_ids              = module.vpc.data_subnet_ids
  allowed_security_groups = local.from_eks

  instance_class        = "db.m7g.large"
  allocated_storage     = 50
  max_allocated_storage = 500
  multi_az              = true
  backup_retention_days = 7
}

module "elasticache" {
  source = "../../modules/elasticache"

  name                    = local.name
  engine_version          = "7.1"
  vpc_id                  = module.vpc.vpc_id
  subnet_ids              = module.vpc.data_subnet_ids
  allowed_security_groups = local.from_eks

  node_type = "cache.r7g.large"
  replicas  = 1
}

module "documentdb" {
  source = "../../modules/documentdb"

  name                    = local.name
  vpc_id                  = module.vpc.vpc_id
  subnet_ids              = module.vpc.data_subnet_ids
  allowed_security_groups = local.from_eks

  instance_class = "db.r6g.large"
  instance_count = 2
}

module "warehouse" {
  source = "../../modules/s3"

  bucket_name = "${local.name}-warehouse-${data.aws_caller_identity.current.account_id}"
}
