# Prod: three AZs, a NAT gateway per AZ, private API endpoint, multi-AZ everything.
locals {
  name = "chaos-world-prod"

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
  cidr_block         = "10.30.0.0/16"
  azs                = slice(data.aws_availability_zones.available.names, 0, 3)
  single_nat_gateway = false
  eks_cluster_name   = local.name
}

module "eks" {
  source = "../../modules/eks"

  name                   = local.name
  vpc_id                 = module.vpc.vpc_id
  subnet_ids             = module.vpc.private_subnet_ids
  endpoint_public_access = false
  public_access_cidrs    = var.api_public_access_cidrs
  admin_principal_arns   = var.admin_principal_arns

  node_groups = {
    general = {
      instance_types = ["m7i.xlarge", "m6i.xlarge"]
      min_size       = 3
      max_size       = 12
      desired_size   = 6
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
  instance_type       = "kafka.m7g.xlarge"
  ebs_volume_size     = 500
  ebs_max_volume_size = 4000
}

module "rds" {
  source = "../../modules/rds"

  name                    = local.name
  engine_version          = "15"
  vpc_id                  = module.vpc.vpc_id
  subnet_ids              = module.vpc.data_subnet_ids
  allowed_security_groups = local.from_eks

  instance_class        = "db.r7g.2xlarge"
  allocated_storage     = 500
  max_allocated_storage = 4000
  multi_az              = true
  backup_retention_days = 35
}

module "elasticache" {
  source = "../../modules/elasticache"

  name                    = local.name
  engine_version          = "7.1"
  vpc_id                  = module.vpc.vpc_id
  subnet_ids              = module.vpc.data_subnet_ids
  allowed_security_groups = local.from_eks

  node_type = "cache.r7g.xlarge"
  replicas  = 2
}

module "documentdb" {
  source = "../../modules/documentdb"

  name                    = local.name
  vpc_id                  = module.vpc.vpc_id
  subnet_ids              = module.vpc.data_subnet_ids
  allowed_security_groups = local.from_eks

  instance_class = "db.r6g.xlarge"
  instance_count = 3
}

module "warehouse" {
  source = "../../modules/s3"

  bucket_name = "${local.name}-warehouse-${data.aws_caller_identity.current.account_id}"
}
