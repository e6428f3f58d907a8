# Stands in for exoscale-nlb in offline tests. variables.tf is a symlink to exoscale-nlb's, and
# the health-check rules come from the same lb-healthcheck module, so a plan here refuses exactly
# what a plan of exoscale-nlb refuses. terraform_data records what the NLB service would get.
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

  input = {
    zone = var.zone
    name = var.name
  }
}

resource "terraform_data" "nlb_service" {
  input = {
    zone             = var.zone
    nlb_id           = var.nlb_id == null ? terraform_data.nlb[0].id : var.nlb_id
    name             = var.name
    instance_pool_id = var.instance_pool_id
    protocol         = var.protocol
    port             = var.port
    target_port      = module.healthcheck.node_port
    strategy         = var.strategy
    healthcheck = {
      mode     = module.healthcheck.mode
      port     = module.healthcheck.port
      uri      = module.healthcheck.mode == "tcp" ? null : var.healthcheck_uri
      interval = var.healthcheck_interval
      timeout  = var.healthcheck_timeout
      retries  = var.healthcheck_retries
    }
  }
}
