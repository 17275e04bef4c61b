output "endpoint" {
  description = "Cluster (writer) endpoint; connect with tls=true&replicaSet=rs0&retryWrites=false."
  value       = aws_docdb_cluster.this.endpoint
}

output "reader_endpoint" {
  description = "Reader endpoint."
  value       = aws_docdb_cluster.this.reader_endpoint
}

output "master_secret_arn" {
  description = "Secrets Manager secret holding the master credentials."
  value       = aws_secretsmanager_secret.master.arn
}

output "security_group_id" {
  description = "Security group of the cluster."
  value       = aws_security_group.this.id
}
