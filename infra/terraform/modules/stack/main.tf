# One stage of chaos-world: network, EKS, the data stores and the Parquet warehouse, the secrets the
# pods read (secrets.tf), IAM for the cluster add-ons (iam.tf), the API's names and certificate
# (dns.tf). Every envs/<stage> calls this module once with its sizes; prod calls it a second time in
# the DR region as a warm standby whose PostgreSQL is a replica of the primary's. The wiring between
# the modules lives only here.
locals {
  # Pods reach the data stores through the EKS cluster security group (managed nodes carry it).
  from_eks = { eks_nodes = module.eks.node_security_group_id }
}

data "aws_availability_zones" "available" {
  state = "available"
}

data "aws_caller_identity" "current" {}

module "vpc" {
  source = "../vpc"

  name               = var.name
  cidr_block         = var.vpc_cidr
  azs                = slice(data.aws_availability_zones.available.names, 0, var.az_count)
  single_nat_gateway = var.single_nat_gateway
  eks_cluster_name   = var.name
}

module "eks" {
  source = "../eks"

  name                   = var.name
  vpc_id                 = module.vpc.vpc_id
  subnet_ids             = module.vpc.private_subnet_ids
  endpoint_public_access = var.eks_endpoint_public_access
  public_access_cidrs    = var.eks_public_access_cidrs
  admin_principal_arns   = var.eks_admin_principal_arns

  node_groups = var.eks_node_groups

  pod_identities = {
    projector-warehouse = {
      namespace       = "chaos-world"
      service_account = "projector-warehouse"
      policy_arns     = [module.warehouse.writer_policy_arn]
    }
    # Cluster add-ons the manifests rely on (installed as in docs/deploy.md, with these service
    # account names).
    external-secrets = {
      namespace       = "external-secrets"
      service_account = "external-secrets"
      policy_arns     = [aws_iam_policy.external_secrets.arn]
    }
    aws-load-balancer-controller = {
      namespace       = "kube-system"
      service_account = "aws-load-balancer-controller"
      policy_arns     = [aws_iam_policy.load_balancer_controller.arn]
    }
    external-dns = {
      namespace       = "kube-system"
      service_account = "external-dns"
      policy_arns     = [aws_iam_policy.external_dns.arn]
    }
  }
}

module "msk" {
  source = "../msk"

  name                    = var.name
  vpc_id                  = module.vpc.vpc_id
  subnet_ids              = module.vpc.data_subnet_ids
  allowed_security_groups = local.from_eks

  broker_count        = var.msk_broker_count
  instance_type       = var.msk_instance_type
  ebs_volume_size     = var.msk_ebs_volume_size
  ebs_max_volume_size = var.msk_ebs_max_volume_size
  tiered_storage      = var.msk_tiered_storage
  storage_autoscaling = var.msk_storage_autoscaling

  # One SASL/SCRAM identity per Kafka client (deploy/k8s: chaos-kafka, chaos-kafka-admin).
  scram_users = ["admin", "monitor", "relay", "projector-redis", "projector-warehouse", "projector-mongo", "process-managers"]
}

module "rds" {
  source = "../rds"

  name                    = var.name
  engine_version          = "15"
  vpc_id                  = module.vpc.vpc_id
  subnet_ids              = module.vpc.data_subnet_ids
  allowed_security_groups = local.from_eks

  instance_class        = var.rds_instance_class
  allocated_storage     = var.rds_allocated_storage
  max_allocated_storage = var.rds_max_allocated_storage
  multi_az              = var.rds_multi_az
  backup_retention_days = var.rds_backup_retention_days
  deletion_protection   = var.rds_deletion_protection
  replicate_source_db   = var.rds_replicate_source_db
}

module "elasticache" {
  source = "../elasticache"

  name                    = var.name
  engine_version          = "7.1"
  vpc_id                  = module.vpc.vpc_id
  subnet_ids              = module.vpc.data_subnet_ids
  allowed_security_groups = local.from_eks

  node_type               = var.elasticache_node_type
  replicas                = var.elasticache_replicas
  snapshot_retention_days = var.elasticache_snapshot_retention_days
}

module "documentdb" {
  source = "../documentdb"

  name                    = var.name
  vpc_id                  = module.vpc.vpc_id
  subnet_ids              = module.vpc.data_subnet_ids
  allowed_security_groups = local.from_eks

  instance_class        = var.documentdb_instance_class
  instance_count        = var.documentdb_instance_count
  backup_retention_days = var.documentdb_backup_retention_days
  deletion_protection   = var.documentdb_deletion_protection
}

module "warehouse" {
  source = "../s3"

  bucket_name = "${var.name}-warehouse-${data.aws_caller_identity.current.account_id}"

  force_destroy = var.warehouse_force_destroy
}
