# Stands in for aws-nlb in offline tests, resource for resource, with the same lifecycle.
# variables.tf is a symlink to aws-nlb's and the health-check rules come from lb-healthcheck,
# so a plan here refuses what a plan of aws-nlb refuses.
#
# Each terraform_data records its real resource's attributes in that resource's state shape
# (`stands_in_for` names it), so `nodeport-lb cloud check` reads this state as it reads a real
# one. What the AWS provider marks ForceNew is in triggers_replace (a change replaces the
# resource), the rest in input (updated in place): a nodePort change plans here as it plans
# against AWS, which is what the create-before-destroy test relies on.
module "healthcheck" {
  source = "../modules/lb-healthcheck"

  external_traffic_policy = var.external_traffic_policy
  mode                    = var.healthcheck_mode
  port                    = var.healthcheck_port
  node_port               = var.target_port
  node_port_range         = var.node_port_range
}

resource "terraform_data" "lb" {
  count = var.lb_arn == null ? 1 : 0

  triggers_replace = {
    name               = var.name
    load_balancer_type = "network"
    internal           = var.internal
  }
  input = {
    stands_in_for = "aws_lb"
    values = {
      name            = var.name
      subnets         = var.subnet_ids
      security_groups = var.security_groups
      dns_name        = "${var.name}.elb.test.invalid"
      zone_id         = "ZSTANDIN"
      tags            = var.tags
    }
  }
}

locals {
  lb_arn      = var.lb_arn == null ? terraform_data.lb[0].id : var.lb_arn
  lb_dns_name = var.lb_arn == null ? terraform_data.lb[0].output.values.dns_name : "existing.elb.test.invalid"
  lb_zone_id  = var.lb_arn == null ? terraform_data.lb[0].output.values.zone_id : "ZSTANDIN"
}

resource "terraform_data" "target_group" {
  triggers_replace = {
    name_prefix = var.target_group_name_prefix
    vpc_id      = var.vpc_id
    protocol    = var.protocol
    port        = module.healthcheck.node_port
    target_type = var.target_type
  }
  input = {
    stands_in_for = "aws_lb_target_group"
    values = {
      name_prefix            = var.target_group_name_prefix
      vpc_id                 = var.vpc_id
      protocol               = var.protocol
      port                   = module.healthcheck.node_port
      target_type            = var.target_type
      preserve_client_ip     = "true"
      proxy_protocol_v2      = var.proxy_protocol_v2
      deregistration_delay   = tostring(var.deregistration_delay)
      connection_termination = var.connection_termination
      tags                   = merge(var.tags, { Name = var.name })
      health_check = [{
        enabled             = true
        protocol            = upper(module.healthcheck.mode)
        port                = tostring(module.healthcheck.port)
        path                = module.healthcheck.mode == "tcp" ? null : var.healthcheck_path
        matcher             = module.healthcheck.mode == "tcp" ? null : "200"
        interval            = var.healthcheck_interval
        timeout             = var.healthcheck_timeout
        healthy_threshold   = var.healthy_threshold
        unhealthy_threshold = var.unhealthy_threshold
      }]
    }
  }

  lifecycle {
    create_before_destroy = true
  }
}

resource "terraform_data" "target_group_attachment" {
  for_each = toset(var.targets)

  triggers_replace = {
    target_group_arn = terraform_data.target_group.id
    target_id        = each.value
    port             = module.healthcheck.node_port
  }
  input = {
    stands_in_for = "aws_lb_target_group_attachment"
    values = {
      target_group_arn = terraform_data.target_group.id
      target_id        = each.value
      port             = module.healthcheck.node_port
    }
  }

  lifecycle {
    create_before_destroy = true
  }
}

resource "terraform_data" "listener" {
  triggers_replace = { load_balancer_arn = local.lb_arn }
  input = {
    stands_in_for = "aws_lb_listener"
    values = {
      load_balancer_arn = local.lb_arn
      protocol          = var.protocol
      port              = var.port
      tags              = var.tags
      default_action = [{
        type             = "forward"
        target_group_arn = terraform_data.target_group.id
      }]
    }
  }
}
