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

# The DR region: a warm standby of prod (module "dr_stack") and the cross-region copies (module "dr").
provider "aws" {
  alias  = "dr"
  region = var.dr_region

  default_tags {
    tags = {
      Project     = "chaos-world"
      Environment = "prod"
      Role        = "disaster-recovery"
      ManagedBy   = "terraform"
    }
  }
}
