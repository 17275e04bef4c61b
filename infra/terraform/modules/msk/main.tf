# Kafka is the second copy of the event history (DESIGN.md, Kafka contract): retention is infinite
# by default on every topic, chaos.<aggregate>.events and chaos.deadletter.<projection> alike.
# Topics are created by the operator CLI (auto-create is off) with replication factor 3; with tiered
# storage on, it also sets remote.storage.enable=true and a short local.retention.ms per topic.
locals {
  server_properties = <<-PROPERTIES
    auto.create.topics.enable=false
    default.replication.factor=3
    min.insync.replicas=2
    num.partitions=6
    unclean.leader.election.enable=false
    log.retention.ms=-1
    log.retention.bytes=-1
    offsets.retention.minutes=525600
    message.max.bytes=1048588
  PROPERTIES
}

resource "aws_msk_configuration" "this" {
  name              = "${var.name}-config"
  kafka_versions    = [var.kafka_version]
  server_properties = local.server_properties

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_security_group" "this" {
  name        = "${var.name}-msk"
  description = "MSK brokers of ${var.name}"
  vpc_id      = var.vpc_id
  tags        = merge(var.tags, { Name = "${var.name}-msk" })
}

# 9096: SASL/SCRAM over TLS (what librdkafka speaks natively); 9098: IAM over TLS for AWS tooling.
resource "aws_vpc_security_group_ingress_rule" "clients" {
  for_each = {
    for pair in setproduct(keys(var.allowed_security_groups), [9096, 9098]) : "${pair[0]}-${pair[1]}" => {
      security_group_id = var.allowed_security_groups[pair[0]]
      port              = pair[1]
    }
  }

  security_group_id            = aws_security_group.this.id
  referenced_security_group_id = each.value.security_group_id
  ip_protocol                  = "tcp"
  from_port                    = each.value.port
  to_port                      = each.value.port
  description                  = "Kafka clients"
}

resource "aws_kms_key" "this" {
  description         = "MSK data at rest of ${var.name}"
  enable_key_rotation = true
  tags                = var.tags
}

resource "aws_cloudwatch_log_group" "broker" {
  name              = "/aws/msk/${var.name}"
  retention_in_days = var.log_retention_days
  tags              = var.tags
}

resource "aws_msk_cluster" "this" {
  cluster_name           = var.name
  kafka_version          = var.kafka_version
  number_of_broker_nodes = var.broker_count
  storage_mode           = var.tiered_storage ? "TIERED" : "LOCAL"

  broker_node_group_info {
    instance_type   = var.instance_type
    client_subnets  = var.subnet_ids
    security_groups = [aws_security_group.this.id]

    storage_info {
      ebs_storage_info {
        volume_size = var.ebs_volume_size
      }
    }
  }

  configuration_info {
    arn      = aws_msk_configuration.this.arn
    revision = aws_msk_configuration.this.latest_revision
  }

  client_authentication {
    unauthenticated = false
    sasl {
      scram = true
      iam   = true
    }
  }

  encryption_info {
    encryption_at_rest_kms_key_arn = aws_kms_key.this.arn
    encryption_in_transit {
      client_broker = "TLS"
      in_cluster    = true
    }
  }

  # Brokers' JMX and node exporters for the same Prometheus that scrapes the services.
  open_monitoring {
    prometheus {
      jmx_exporter {
        enabled_in_broker = true
      }
      node_exporter {
        enabled_in_broker = true
      }
    }
  }

  logging_info {
    broker_logs {
      cloudwatch_logs {
        enabled   = true
        log_group = aws_cloudwatch_log_group.broker.name
      }
    }
  }

  tags = var.tags

  lifecycle {
    # Storage auto scaling below grows the volumes; do not shrink them back.
    ignore_changes = [broker_node_group_info[0].storage_info[0].ebs_storage_info[0].volume_size]
  }
}

resource "aws_appautoscaling_target" "storage" {
  count = var.storage_autoscaling ? 1 : 0

  service_namespace  = "kafka"
  scalable_dimension = "kafka:broker-storage:VolumeSize"
  resource_id        = aws_msk_cluster.this.arn
  min_capacity       = 1
  max_capacity       = var.ebs_max_volume_size
}

resource "aws_appautoscaling_policy" "storage" {
  count = var.storage_autoscaling ? 1 : 0

  name               = "${var.name}-broker-storage"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.storage[0].service_namespace
  scalable_dimension = aws_appautoscaling_target.storage[0].scalable_dimension
  resource_id        = aws_appautoscaling_target.storage[0].resource_id

  target_tracking_scaling_policy_configuration {
    target_value = 60

    predefined_metric_specification {
      predefined_metric_type = "KafkaBrokerStorageUtilization"
    }
  }
}

# SASL/SCRAM credentials live in Secrets Manager (MSK requires the AmazonMSK_ name prefix and a
# customer managed key); External Secrets copies them into the Kubernetes secrets the pods reference.
resource "random_password" "scram" {
  for_each = var.scram_users

  length  = 40
  special = false
}

resource "aws_secretsmanager_secret" "scram" {
  for_each = var.scram_users

  name       = "AmazonMSK_${var.name}_${each.value}"
  kms_key_id = aws_kms_key.this.arn
  tags       = var.tags
}

resource "aws_secretsmanager_secret_version" "scram" {
  for_each = var.scram_users

  secret_id = aws_secretsmanager_secret.scram[each.value].id
  secret_string = jsonencode({
    username = each.value
    password = random_password.scram[each.value].result
  })
}

resource "aws_msk_scram_secret_association" "this" {
  cluster_arn     = aws_msk_cluster.this.arn
  secret_arn_list = [for user in var.scram_users : aws_secretsmanager_secret.scram[user].arn]

  depends_on = [aws_secretsmanager_secret_version.scram]
}
