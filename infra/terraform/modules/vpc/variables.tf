variable "name" {
  description = "Name prefix for every resource, e.g. chaos-world-prod."
  type        = string
}

variable "cidr_block" {
  description = "IPv4 CIDR of the VPC. Each stage gets its own /16 so they can be peered later."
  type        = string

  validation {
    condition     = can(cidrnetmask(var.cidr_block))
    error_message = "cidr_block must be a valid IPv4 CIDR."
  }
}

variable "azs" {
  description = "Availability zones to spread subnets over (at least two; three for prod)."
  type        = list(string)

  validation {
    condition     = length(var.azs) >= 2
    error_message = "RDS multi-AZ, MSK and EKS need subnets in at least two availability zones."
  }
}

variable "single_nat_gateway" {
  description = "One NAT gateway for all AZs (cheap, dev) instead of one per AZ (prod)."
  type        = bool
  default     = false
}

variable "eks_cluster_name" {
  description = "EKS cluster name, used for the subnet discovery tags of the AWS load balancer controller."
  type        = string
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
