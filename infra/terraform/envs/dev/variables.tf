variable "region" {
  description = "AWS region of the stage."
  type        = string
  default     = "eu-west-1"
}

variable "admin_principal_arns" {
  description = "IAM roles (operators, CI deployer) given cluster-admin on the EKS cluster through access entries; the creator gets no implicit access."
  type        = list(string)

  validation {
    condition     = length(var.admin_principal_arns) > 0
    error_message = "Name at least one admin principal, or nobody can use the Kubernetes API."
  }
}

variable "api_public_access_cidrs" {
  description = "CIDRs allowed to reach the EKS API endpoint when it is public."
  type        = list(string)
  default     = []
}
