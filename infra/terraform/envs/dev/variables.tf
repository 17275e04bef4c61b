variable "region" {
  description = "AWS region of the stage."
  type        = string
  default     = "eu-west-1"
}

variable "admin_principal_arns" {
  description = "IAM roles (operators, CI deployer) given cluster-admin on the EKS cluster; at least one (checked in modules/stack)."
  type        = list(string)
}

variable "api_public_access_cidrs" {
  description = "CIDRs allowed to reach the EKS API endpoint when it is public."
  type        = list(string)
  default     = []
}

variable "dns_zone_id" {
  description = "Route 53 hosted zone of api_domain (certificate, API records); empty = none managed."
  type        = string
  default     = ""
}

variable "api_domain" {
  description = "Domain of the APIs: command.<api_domain>, query.<api_domain>."
  type        = string
  default     = ""
}

variable "documentdb_ca_bundle_file" {
  description = "Path of the PEM bundle of the CAs of DocumentDB's TLS certificates in var.region: download https://truststore.pki.rds.amazonaws.com/<region>/<region>-bundle.pem (docs/deploy.md)."
  type        = string
}
