# The rules shared by every cloud module (tcp refused for Local, ports in the node port range).
module "healthcheck" {
  source = "../lb-healthcheck"

  external_traffic_policy = var.external_traffic_policy
  mode                    = var.healthcheck_mode
  port                    = var.healthcheck_port
  node_port               = var.target_port
  node_port_range         = var.node_port_range
}

resource "exoscale_nlb" "this" {
  count = var.nlb_id == null ? 1 : 0

  zone        = var.zone
  name        = var.name
  description = var.description
}

data "exoscale_nlb" "existing" {
  count = var.nlb_id == null ? 0 : 1

  zone = var.zone
  id   = var.nlb_id
}

locals {
  nlb_id         = var.nlb_id == null ? exoscale_nlb.this[0].id : var.nlb_id
  nlb_ip_address = var.nlb_id == null ? exoscale_nlb.this[0].ip_address : data.exoscale_nlb.existing[0].ip_address
}

resource "exoscale_nlb_service" "this" {
  zone             = var.zone
  nlb_id           = local.nlb_id
  name             = var.name
  description      = var.description
  instance_pool_id = var.instance_pool_id
  protocol         = var.protocol
  port             = var.port
  target_port      = module.healthcheck.node_port
  strategy         = var.strategy

  healthcheck {
    mode     = module.healthcheck.mode
    port     = module.healthcheck.port
    uri      = module.healthcheck.mode == "tcp" ? null : var.healthcheck_uri
    tls_sni  = module.healthcheck.mode == "https" ? var.healthcheck_tls_sni : null
    interval = var.healthcheck_interval
    timeout  = var.healthcheck_timeout
    retries  = var.healthcheck_retries
  }
}
