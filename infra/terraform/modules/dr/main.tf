# Cross-region disaster recovery of prod (docs/dr.md), between the primary stack and the DR stack
# (both modules/stack; the DR stack's event store is already a cross-region read replica):
#   - the event store's automated backups (snapshots and transaction logs) replicated to the DR
#     region: point-in-time restore there even if a bad write reached the replica too;
#   - the Parquet warehouse bucket replicated to the DR stack's bucket (S3 Replication Time Control);
#   - Route 53 failover records for the API names, health-checked on each region's own names; the
#     active region (PRIMARY role) is a variable, which is how a failover is fenced and a failback
#     done: the runbook flips it, nothing flips it back on its own;
#   - an alarm on the DR replica's lag, which is the event store's recovery point.
# Kafka is not replicated: the event store is the source of truth and the relay republishes it into
# the DR cluster (docs/dr.md, "Replay").

# --- Event store backups -------------------------------------------------------------------------

resource "aws_kms_key" "backups" {
  provider = aws.dr

  description         = "Replicated automated backups of the ${var.name} event store"
  enable_key_rotation = true
  tags                = var.tags
}

resource "aws_db_instance_automated_backups_replication" "event_store" {
  provider = aws.dr

  source_db_instance_arn = var.source_db_instance_arn
  kms_key_id             = aws_kms_key.backups.arn
  retention_period       = var.backup_retention_days
}

# --- Parquet warehouse -----------------------------------------------------------------------------

data "aws_iam_policy_document" "replication_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["s3.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "replication" {
  name               = "${var.name}-warehouse-replication"
  assume_role_policy = data.aws_iam_policy_document.replication_assume.json
  tags               = var.tags
}

data "aws_iam_policy_document" "replication" {
  statement {
    sid       = "ReadSourceConfiguration"
    actions   = ["s3:GetReplicationConfiguration", "s3:ListBucket"]
    resources = [var.source_bucket_arn]
  }

  statement {
    sid       = "ReadSourceVersions"
    actions   = ["s3:GetObjectVersionForReplication", "s3:GetObjectVersionAcl", "s3:GetObjectVersionTagging"]
    resources = ["${var.source_bucket_arn}/*"]
  }

  statement {
    sid       = "WriteReplicas"
    actions   = ["s3:ReplicateObject", "s3:ReplicateDelete", "s3:ReplicateTags"]
    resources = ["${var.destination_bucket_arn}/*"]
  }

  statement {
    sid       = "DecryptSource"
    actions   = ["kms:Decrypt"]
    resources = [var.source_kms_key_arn]
  }

  statement {
    sid       = "EncryptReplicas"
    actions   = ["kms:Encrypt", "kms:GenerateDataKey"]
    resources = [var.destination_kms_key_arn]
  }
}

resource "aws_iam_role_policy" "replication" {
  name   = "replicate-warehouse"
  role   = aws_iam_role.replication.id
  policy = data.aws_iam_policy_document.replication.json
}

resource "aws_s3_bucket_replication_configuration" "warehouse" {
  bucket = var.source_bucket_name
  role   = aws_iam_role.replication.arn

  rule {
    id     = "warehouse-to-dr"
    status = "Enabled"

    filter {}

    # A compaction's deletes replicate too (versioning keeps the old objects on both sides).
    delete_marker_replication {
      status = "Enabled"
    }

    source_selection_criteria {
      sse_kms_encrypted_objects {
        status = "Enabled"
      }
    }

    destination {
      bucket = var.destination_bucket_arn

      encryption_configuration {
        replica_kms_key_id = var.destination_kms_key_arn
      }

      # Replication Time Control: 99.99% of objects within 15 minutes, measured.
      replication_time {
        status = "Enabled"
        time {
          minutes = 15
        }
      }

      metrics {
        status = "Enabled"
        event_threshold {
          minutes = 15
        }
      }
    }
  }

  depends_on = [aws_iam_role_policy.replication]
}

# --- DNS failover ----------------------------------------------------------------------------------

locals {
  dns     = var.dns_zone_id != ""
  regions = { primary = var.primary_region, dr = var.dr_region }
  # command / query x primary / dr
  endpoints = {
    for pair in setproduct(["command", "query"], keys(local.regions)) : "${pair[0]}-${pair[1]}" => {
      host = pair[0]
      side = pair[1]
      fqdn = "${pair[0]}.${local.regions[pair[1]]}.${var.api_domain}"
    }
  }
}

resource "aws_route53_health_check" "api" {
  for_each = local.dns ? local.endpoints : {}

  fqdn              = each.value.fqdn
  type              = "HTTPS"
  port              = 443
  resource_path     = "/readyz"
  request_interval  = 10
  failure_threshold = 3
  tags              = merge(var.tags, { Name = "${var.name}-${each.key}" })
}

resource "aws_route53_record" "api" {
  for_each = local.dns ? local.endpoints : {}

  zone_id         = var.dns_zone_id
  name            = "${each.value.host}.${var.api_domain}"
  type            = "CNAME"
  ttl             = 60
  records         = [each.value.fqdn]
  set_identifier  = each.key
  health_check_id = aws_route53_health_check.api[each.key].id

  failover_routing_policy {
    type = each.value.side == var.active_region ? "PRIMARY" : "SECONDARY"
  }
}

# --- Recovery point --------------------------------------------------------------------------------

resource "aws_cloudwatch_metric_alarm" "replica_lag" {
  provider = aws.dr

  alarm_name          = "${var.name}-event-store-replica-lag"
  alarm_description   = "The DR replica of the event store is more than ${var.replica_lag_alarm_seconds}s behind: a regional failover now would lose that much (docs/dr.md)."
  namespace           = "AWS/RDS"
  metric_name         = "ReplicaLag"
  dimensions          = { DBInstanceIdentifier = var.dr_db_instance_identifier }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 5
  threshold           = var.replica_lag_alarm_seconds
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "breaching"
  alarm_actions       = var.alarm_actions
  ok_actions          = var.alarm_actions
  tags                = var.tags
}
