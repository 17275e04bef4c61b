output "cluster_arn" {
  description = "ARN of the MSK cluster."
  value       = aws_msk_cluster.this.arn
}

output "bootstrap_brokers_sasl_scram" {
  description = "Bootstrap servers for SASL/SCRAM over TLS: the value of CHAOS__KAFKA__BOOTSTRAP_SERVERS."
  value       = aws_msk_cluster.this.bootstrap_brokers_sasl_scram
}

output "bootstrap_brokers_sasl_iam" {
  description = "Bootstrap servers for IAM auth over TLS (operators' AWS tooling)."
  value       = aws_msk_cluster.this.bootstrap_brokers_sasl_iam
}

output "kms_key_arn" {
  description = "KMS key for data at rest; SCRAM secrets must use a customer managed key too."
  value       = aws_kms_key.this.arn
}

output "security_group_id" {
  description = "Security group of the brokers."
  value       = aws_security_group.this.id
}

output "scram_secret_arns" {
  description = "Secrets Manager ARN of each SASL/SCRAM user's credentials."
  value       = { for user, secret in aws_secretsmanager_secret.scram : user => secret.arn }
}
