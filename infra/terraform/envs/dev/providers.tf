provider "aws" {
  region = var.region

  default_tags {
    tags = {
      Project     = "chaos-world"
      Environment = "dev"
      ManagedBy   = "terraform"
    }
  }
}
