# The rules shared by every cloud module (tcp refused for Local, ports in the node port range).
module "healthcheck" {
  source = "../lb-healthcheck"

  external_traffic_policy = var.external_traffic_policy
  mode                    = var.healthcheck_mode
  port                    = var.healthcheck_port
  node_port               = var.target_port
  node_port_range         = var.node_port_range
}

resource "aws_lb" "this" {
  count = var.lb_arn == null ? 1 : 0

  name               = var.name
  load_balancer_type = "network"
  internal           = var.internal
  subnets            = var.subnet_ids
  # AWS attaches security groups to an NLB only when it is created (none: the nodes' own
  # security groups must admit the clients, whose addresses the NLB preserves).
  security_groups = var.security_groups
  tags            = var.tags
}

data "aws_lb" "existing" {
  count = var.lb_arn == null ? 0 : 1

  arn = var.lb_arn
}

locals {
  lb_arn      = var.lb_arn == null ? aws_lb.this[0].arn : var.lb_arn
  lb_dns_name = var.lb_arn == null ? aws_lb.this[0].dns_name : data.aws_lb.existing[0].dns_name
  lb_zone_id  = var.lb_arn == null ? aws_lb.this[0].zone_id : data.aws_lb.existing[0].zone_id
}

resource "aws_lb_target_group" "this" {
  # A new nodePort (or protocol, or VPC) forces a new target group. With a fixed name the new
  # one could not exist beside the old one, and the old one cannot go while the listener uses
  # it (ResourceInUse): a generated name from this prefix, created before the old group is
  # destroyed, lets the listener move over in place. The readable name is the Name tag.
  name_prefix = var.target_group_name_prefix
  vpc_id      = var.vpc_id
  protocol    = var.protocol
  port        = module.healthcheck.node_port
  target_type = var.target_type
  # The point of externalTrafficPolicy: Local is that the pod sees the client's address.
  preserve_client_ip     = true
  proxy_protocol_v2      = var.proxy_protocol_v2
  deregistration_delay   = var.deregistration_delay
  connection_termination = var.connection_termination
  tags                   = merge(var.tags, { Name = var.name })

  health_check {
    enabled  = true
    protocol = upper(module.healthcheck.mode)
    port     = tostring(module.healthcheck.port)
    path     = module.healthcheck.mode == "tcp" ? null : var.healthcheck_path
    # Only 200 means "this node has a local pod"; the NLB default (200-399) is looser.
    matcher             = module.healthcheck.mode == "tcp" ? null : "200"
    interval            = var.healthcheck_interval
    timeout             = var.healthcheck_timeout
    healthy_threshold   = var.healthy_threshold
    unhealthy_threshold = var.unhealthy_threshold
  }

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_lb_target_group_attachment" "this" {
  for_each = toset(var.targets)

  target_group_arn = aws_lb_target_group.this.arn
  target_id        = each.value
  port             = module.healthcheck.node_port

  # The nodes join the new target group before they leave the old one.
  lifecycle {
    create_before_destroy = true
  }
}

# The listener only changes its forward target when the target group is replaced: it is
# updated in place, so the NLB keeps listening throughout.
resource "aws_lb_listener" "this" {
  load_balancer_arn = local.lb_arn
  protocol          = var.protocol
  port              = var.port
  tags              = var.tags

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.this.arn
  }
}
