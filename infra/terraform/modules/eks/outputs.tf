output "cluster_name" {
  description = "Name of the EKS cluster."
  value       = aws_eks_cluster.this.name
}

output "cluster_endpoint" {
  description = "Kubernetes API endpoint."
  value       = aws_eks_cluster.this.endpoint
}

output "cluster_certificate_authority_data" {
  description = "Base64 CA bundle of the API endpoint."
  value       = aws_eks_cluster.this.certificate_authority[0].data
}

output "node_security_group_id" {
  description = "EKS-managed cluster security group, attached to managed nodes and therefore to pods; data stores allow ingress from it."
  value       = aws_eks_cluster.this.vpc_config[0].cluster_security_group_id
}

output "pod_role_arns" {
  description = "IAM role ARN per pod identity key."
  value       = { for key, role in aws_iam_role.pod : key => role.arn }
}

output "ebs_csi_role_arn" {
  description = "IAM role of the EBS CSI driver's controller (EKS Pod Identity)."
  value       = aws_iam_role.ebs_csi.arn
}
