# Exactly aws-nlb's output names (a test compares them), from the stand-in resources.

output "lb_id" {
  description = "ARN of the NLB."
  value       = local.lb_arn
}

output "lb_address" {
  description = "DNS name of the NLB."
  value       = local.lb_dns_name
}

output "lb_dns_name" {
  description = "DNS name of the NLB (for a CNAME, or an alias record with lb_zone_id)."
  value       = local.lb_dns_name
}

output "lb_zone_id" {
  description = "Route 53 hosted zone of the NLB's DNS name, for an alias record."
  value       = local.lb_zone_id
}

output "listener_id" {
  description = "ARN of the listener."
  value       = terraform_data.listener.id
}

output "target_group_arn" {
  description = "ARN of the target group."
  value       = terraform_data.target_group.id
}

output "target_group_name" {
  description = "Generated name of the target group (its Name tag is var.name)."
  value       = "${var.target_group_name_prefix}standin"
}

output "port" {
  description = "Port the NLB listens on."
  value       = var.port
}

output "node_port" {
  description = "nodePort the NLB forwards to."
  value       = module.healthcheck.node_port
}

output "healthcheck" {
  description = "The health check as configured."
  value = {
    mode                = module.healthcheck.mode
    port                = module.healthcheck.port
    path                = module.healthcheck.mode == "tcp" ? null : var.healthcheck_path
    interval            = var.healthcheck_interval
    timeout             = var.healthcheck_timeout
    healthy_threshold   = var.healthy_threshold
    unhealthy_threshold = var.unhealthy_threshold
  }
}
