output "primary_endpoint" {
  description = "Primary endpoint; CHAOS__REDIS__URL is rediss://:<token>@<this>:6379."
  value       = aws_elasticache_replication_group.this.primary_endpoint_address
}

output "reader_endpoint" {
  description = "Reader endpoint (replicas), for read-only query traffic."
  value       = aws_elasticache_replication_group.this.reader_endpoint_address
}

output "auth_token_secret_arn" {
  description = "Secrets Manager secret holding the AUTH token."
  value       = aws_secretsmanager_secret.auth.arn
}

output "security_group_id" {
  description = "Security group of the cache."
  value       = aws_security_group.this.id
}
