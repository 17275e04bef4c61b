# Application secrets in AWS Secrets Manager, read by the External Secrets Operator into the
# Kubernetes Secrets the pods use (deploy/k8s/base/external-secrets.yaml). Names follow the stack:
#   <name>/app/jwt-secret       the command API's JWT signing key
#   <name>/app/postgres-users   passwords of the database roles the db-users Job creates
#   <name>/app/documentdb-users passwords of the DocumentDB users the mongo-users Job creates
#   <name>/app/endpoints        where the stores are (host names, no credentials)
#   <name>/documentdb-ca        the CA bundle (PEM) DocumentDB's TLS certificates chain to
# The first three are created by the primary stack only and, in prod, replicated by Secrets Manager to
# the DR region: the DR stack reads them there (its database is a replica of the primary's, with the
# same roles and passwords; tokens already issued stay valid).
locals {
  app_secrets_stack = coalesce(var.app_secrets_stack, var.name)
  # projectors: the read-only role of projector redis and projector mongo (deploy/k8s db-users.sql).
  postgres_users = var.create_app_secrets ? toset(["command_api", "relay", "process_managers", "projectors", "registry", "monitor"]) : toset([])
  # projector: chaos_projector (readWrite), projector mongo; reader: chaos_reader (read), the query API.
  documentdb_users = var.create_app_secrets ? toset(["projector", "reader"]) : toset([])
}

resource "random_password" "jwt" {
  count = var.create_app_secrets ? 1 : 0

  length  = 64
  special = false
}

resource "aws_secretsmanager_secret" "jwt" {
  count = var.create_app_secrets ? 1 : 0

  name        = "${var.name}/app/jwt-secret"
  description = "JWT signing key of the chaos-world command API (${var.name})"

  dynamic "replica" {
    for_each = toset(var.secret_replica_regions)
    content {
      region = replica.value
    }
  }
}

resource "aws_secretsmanager_secret_version" "jwt" {
  count = var.create_app_secrets ? 1 : 0

  secret_id     = aws_secretsmanager_secret.jwt[0].id
  secret_string = random_password.jwt[0].result
}

resource "random_password" "postgres" {
  for_each = local.postgres_users

  length  = 40
  special = false
}

resource "aws_secretsmanager_secret" "postgres_users" {
  count = var.create_app_secrets ? 1 : 0

  name        = "${var.name}/app/postgres-users"
  description = "Passwords of the chaos-world database roles (${var.name}); set by the db-users Job"

  dynamic "replica" {
    for_each = toset(var.secret_replica_regions)
    content {
      region = replica.value
    }
  }
}

resource "aws_secretsmanager_secret_version" "postgres_users" {
  count = var.create_app_secrets ? 1 : 0

  secret_id     = aws_secretsmanager_secret.postgres_users[0].id
  secret_string = jsonencode({ for user, password in random_password.postgres : user => password.result })
}

resource "random_password" "documentdb" {
  for_each = local.documentdb_users

  length  = 40
  special = false
}

resource "aws_secretsmanager_secret" "documentdb_users" {
  count = var.create_app_secrets ? 1 : 0

  name        = "${var.name}/app/documentdb-users"
  description = "Passwords of the chaos-world DocumentDB users (${var.name}); set by the mongo-users Job"

  dynamic "replica" {
    for_each = toset(var.secret_replica_regions)
    content {
      region = replica.value
    }
  }
}

resource "aws_secretsmanager_secret_version" "documentdb_users" {
  count = var.create_app_secrets ? 1 : 0

  secret_id     = aws_secretsmanager_secret.documentdb_users[0].id
  secret_string = jsonencode({ for user, password in random_password.documentdb : user => password.result })
}

resource "aws_secretsmanager_secret" "endpoints" {
  name        = "${var.name}/app/endpoints"
  description = "Endpoints of the chaos-world data stores (${var.name}); no credentials"
}

resource "aws_secretsmanager_secret_version" "endpoints" {
  secret_id = aws_secretsmanager_secret.endpoints.id
  secret_string = jsonencode({
    postgres_host     = module.rds.address
    postgres_port     = tostring(module.rds.port)
    postgres_database = coalesce(module.rds.database_name, "chaos")
    documentdb_host   = module.documentdb.endpoint
  })
}

# The CA bundle DocumentDB's TLS certificates chain to, for the pods that connect to it
# (projector-mongo, query-api: CHAOS__MONGO__CA_FILE, from the chaos-documentdb-ca ExternalSecret).
# Public data, not a secret: it is kept here because the External Secrets Operator already reads
# this stack's entries. Per stack, since the bundle is the region's (the DR stack stores its own).
resource "aws_secretsmanager_secret" "documentdb_ca" {
  name        = "${var.name}/documentdb-ca"
  description = "CA bundle (PEM) of the chaos-world DocumentDB cluster's TLS certificates (${var.name}); public data"
}

resource "aws_secretsmanager_secret_version" "documentdb_ca" {
  secret_id     = aws_secretsmanager_secret.documentdb_ca.id
  secret_string = var.documentdb_ca_bundle
}
