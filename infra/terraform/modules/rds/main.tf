resource "aws_db_subnet_group" "this" {
  name       = var.name
  subnet_ids = var.subnet_ids
  tags       = var.tags
}

resource "aws_security_group" "this" {
  name        = "${var.name}-postgres"
  description = "PostgreSQL event store of ${var.name}"
  vpc_id      = var.vpc_id
  tags        = merge(var.tags, { Name = "${var.name}-postgres" })
}

resource "aws_vpc_security_group_ingress_rule" "clients" {
  for_each = var.allowed_security_groups

  security_group_id            = aws_security_group.this.id
  referenced_security_group_id = each.value
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
  description                  = "PostgreSQL from ${each.key}"
}

locals {
  major_version = split(".", var.engine_version)[0]
}

resource "aws_db_parameter_group" "this" {
  name_prefix = "${var.name}-pg${local.major_version}-"
  family      = "postgres${local.major_version}"
  description = "Event store settings for ${var.name}"

  # An acknowledged command is a durable event: never trade that for latency.
  parameter {
    name  = "synchronous_commit"
    value = "on"
  }

  parameter {
    name  = "rds.force_ssl"
    value = "1"
  }

  # The relay wakes on LISTEN/NOTIFY and holds a session advisory lock: a dead relay's session
  # must go away so the standby can take the lock.
  parameter {
    name  = "tcp_keepalives_idle"
    value = "30"
  }

  parameter {
    name  = "idle_in_transaction_session_timeout"
    value = "60000"
  }

  parameter {
    name  = "log_min_duration_statement"
    value = "250"
  }

  parameter {
    name         = "shared_preload_libraries"
    value        = "pg_stat_statements"
    apply_method = "pending-reboot"
  }

  tags = var.tags

  lifecycle {
    create_before_destroy = true
  }
}

locals {
  # A cross-region read replica (the DR region's copy of the event store, docs/dr.md) inherits the
  # engine, the database, the master user and the storage size from its source.
  replica = var.replicate_source_db != null
}

# A replica in another region cannot use the source's KMS key: it gets its own, in its region.
resource "aws_kms_key" "replica" {
  count = local.replica ? 1 : 0

  description         = "Storage of the PostgreSQL replica ${var.name}"
  enable_key_rotation = true
  tags                = var.tags
}

resource "aws_db_instance" "this" {
  identifier          = var.name
  replicate_source_db = var.replicate_source_db
  engine              = local.replica ? null : "postgres"
  engine_version      = local.replica ? null : var.engine_version
  instance_class      = var.instance_class

  db_name                     = local.replica ? null : var.database_name
  username                    = local.replica ? null : var.master_username
  manage_master_user_password = local.replica ? null : true

  allocated_storage     = local.replica ? null : var.allocated_storage
  max_allocated_storage = var.max_allocated_storage
  storage_type          = "gp3"
  storage_encrypted     = true
  kms_key_id            = local.replica ? aws_kms_key.replica[0].arn : null

  multi_az               = var.multi_az
  db_subnet_group_name   = aws_db_subnet_group.this.name
  vpc_security_group_ids = [aws_security_group.this.id]
  parameter_group_name   = aws_db_parameter_group.this.name
  publicly_accessible    = false

  backup_retention_period   = var.backup_retention_days
  backup_window             = "03:00-04:00"
  maintenance_window        = "sun:04:30-sun:05:30"
  copy_tags_to_snapshot     = true
  deletion_protection       = var.deletion_protection
  skip_final_snapshot       = false
  final_snapshot_identifier = "${var.name}-final"

  auto_minor_version_upgrade            = true
  performance_insights_enabled          = true
  iam_database_authentication_enabled   = true
  enabled_cloudwatch_logs_exports       = ["postgresql"]
  monitoring_interval                   = 0
  performance_insights_retention_period = 7

  tags = var.tags
}
