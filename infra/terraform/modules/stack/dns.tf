# The API's names and their TLS certificate, when the stage has a Route 53 hosted zone
# (dns_zone_id). Clients use command.<api_domain> and query.<api_domain>; the load balancer of this
# region also answers command.<region>.<api_domain> and query.<region>.<api_domain>, which
# external-dns publishes from the Ingress and the prod failover health checks probe
# (modules/dr). The ACM certificate covers all four; the AWS Load Balancer Controller finds it by
# host name.
locals {
  dns    = var.dns_zone_id != ""
  region = data.aws_region.current.name
  api_hosts = {
    command = "command.${var.api_domain}"
    query   = "query.${var.api_domain}"
  }
  regional_hosts = {
    command = "command.${local.region}.${var.api_domain}"
    query   = "query.${local.region}.${var.api_domain}"
  }
}

resource "aws_acm_certificate" "api" {
  count = local.dns ? 1 : 0

  domain_name               = local.api_hosts.command
  subject_alternative_names = [local.api_hosts.query, local.regional_hosts.command, local.regional_hosts.query]
  validation_method         = "DNS"

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_route53_record" "api_validation" {
  for_each = local.dns ? {
    for option in aws_acm_certificate.api[0].domain_validation_options : option.domain_name => option
  } : {}

  # The validation record of a name is the same for every certificate of the account: the DR
  # region's certificate shares those of the client-facing names.
  allow_overwrite = true
  zone_id         = var.dns_zone_id
  name            = each.value.resource_record_name
  type            = each.value.resource_record_type
  records         = [each.value.resource_record_value]
  ttl             = 300
}

resource "aws_acm_certificate_validation" "api" {
  count = local.dns ? 1 : 0

  certificate_arn         = aws_acm_certificate.api[0].arn
  validation_record_fqdns = [for record in aws_route53_record.api_validation : record.fqdn]
}

# Outside prod the client-facing names simply point at this region's (prod: failover records in
# modules/dr instead).
resource "aws_route53_record" "api" {
  for_each = local.dns && var.create_global_dns_records ? local.api_hosts : {}

  zone_id = var.dns_zone_id
  name    = each.value
  type    = "CNAME"
  ttl     = 60
  records = [local.regional_hosts[each.key]]
}
