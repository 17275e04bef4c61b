output "bucket_name" {
  description = "Name of the warehouse bucket."
  value       = aws_s3_bucket.this.id
}

output "bucket_arn" {
  description = "ARN of the warehouse bucket."
  value       = aws_s3_bucket.this.arn
}

output "writer_policy_arn" {
  description = "IAM policy for the warehouse projection."
  value       = aws_iam_policy.writer.arn
}

output "reader_policy_arn" {
  description = "IAM policy for analysts' read access."
  value       = aws_iam_policy.reader.arn
}

output "kms_key_arn" {
  description = "KMS key of the bucket's default encryption (replication re-encrypts with the destination's)."
  value       = aws_kms_key.this.arn
}
