output "address" {
  description = "Hostname of the primary; the host part of CHAOS__DATABASE__URL."
  value       = aws_db_instance.this.address
}

output "port" {
  description = "PostgreSQL port."
  value       = aws_db_instance.this.port
}

output "database_name" {
  description = "Application database."
  value       = aws_db_instance.this.db_name
}

output "master_user_secret_arn" {
  description = "Secrets Manager secret holding the generated master password (null for a replica: its master is the source's)."
  value       = try(aws_db_instance.this.master_user_secret[0].secret_arn, null)
}

output "arn" {
  description = "ARN of the instance: the source of cross-region replicas and backup replication."
  value       = aws_db_instance.this.arn
}

output "identifier" {
  description = "DB instance identifier (CloudWatch dimension DBInstanceIdentifier)."
  value       = aws_db_instance.this.identifier
}

output "security_group_id" {
  description = "Security group of the database."
  value       = aws_security_group.this.id
}
