terraform {
  required_version = "~> 1.15"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.0"
      # aws: the primary region (S3 replication source, Route 53); aws.dr: the DR region.
      configuration_aliases = [aws.dr]
    }
  }
}
