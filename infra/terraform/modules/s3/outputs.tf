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
