output "backup_replication_id" {
  description = "ARN of the replicated automated backups in the DR region (restore from them: docs/dr.md)."
  value       = aws_db_instance_automated_backups_replication.event_store.id
}

output "warehouse_replication_role_arn" {
  description = "IAM role S3 uses to replicate the warehouse bucket."
  value       = aws_iam_role.replication.arn
}

output "health_check_ids" {
  description = "Route 53 health check per API endpoint (command/query x primary/dr)."
  value       = { for key, check in aws_route53_health_check.api : key => check.id }
}

output "active_region" {
  description = "The region the client-facing names prefer (PRIMARY role)."
  value       = var.active_region == "primary" ? var.primary_region : var.dr_region
}
