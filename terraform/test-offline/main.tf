# Stands in for exoscale-nlb in offline tests. variables.tf is a symlink to exoscale-nlb's, and
# the health-check rules come from the same lb-healthcheck module, so a plan here refuses exactly
# what a plan of exoscale-nlb refuses.
#
# Each terraform_data records what its real resource would hold, in that resource's own state
# shape (`stands_in_for` names it), so `nodeport-lb cloud check` reads this state as it reads a
# real one. Attributes the provider marks ForceNew are in triggers_replace (a change replaces),
# the others in input (a change updates in place), as the provider would plan them.
module "healthcheck" {
  source = "../modules/lb-healthcheck"

  external_traffic_policy = var.external_traffic_policy
  mode                    = var.healthcheck_mode
  port                    = var.healthcheck_port
  node_port               = var.target_port
  node_port_range         = var.node_port_range
}

resource "terraform_data" "nlb" {
  count = var.nlb_id == null ? 1 : 0

  triggers_replace = { zone = var.zone }
  input = {
    stands_in_for = "exoscale_nlb"
    values = {
      zone        = var.zone
      name        = var.name
      description = var.description
      ip_address  = "192.0.2.10" # TEST-NET-1, in place of the NLB's public address
    }
  }
}

locals {
  nlb_id = var.nlb_id == null ? terraform_data.nlb[0].id : var.nlb_id
}

resource "terraform_data" "nlb_service" {
  triggers_replace = {
    zone             = var.zone
    nlb_id           = local.nlb_id
    instance_pool_id = var.instance_pool_id
  }
  input = {
    stands_in_for = "exoscale_nlb_service"
    values = {
      zone             = var.zone
      nlb_id           = local.nlb_id
      name             = var.name
      description      = var.description
      instance_pool_id = var.instance_pool_id
      protocol         = var.protocol
      port             = var.port
      target_port      = module.healthcheck.node_port
      strategy         = var.strategy
      healthcheck = [{
        mode     = module.healthcheck.mode
        port     = module.healthcheck.port
        uri      = module.healthcheck.mode == "tcp" ? null : var.healthcheck_uri
        tls_sni  = module.healthcheck.mode == "https" ? var.healthcheck_tls_sni : null
        interval = var.healthcheck_interval
        timeout  = var.healthcheck_timeout
        retries  = var.healthcheck_retries
      }]
    }
  }
}
