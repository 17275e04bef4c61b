provider "aws" {
  region = var.region

  default_tags {
    tags = {
      Project     = "chaos-world"
      Environment = "prod"
      ManagedBy   = "terraform"
    }
  }
}
