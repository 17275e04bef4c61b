terraform {
  required_version = "~> 1.15"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.0"
    }
    random = {
      source  = "hashicorp/random"
      version = "~> 3.6"
    }
  }

  # Partial configuration: the state bucket is per account and given at init time,
  #   terraform init -backend-config="bucket=<state bucket>"
  # S3-native locking (use_lockfile) replaces the DynamoDB lock table.
  backend "s3" {
    key          = "chaos-world/staging/terraform.tfstate"
    region       = "eu-west-1"
    encrypt      = true
    use_lockfile = true
  }
}
