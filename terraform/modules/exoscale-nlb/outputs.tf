# Output names shared with aws-nlb and the offline test root: `nodeport-lb cloud
# --inventory-out` reads them.

output "lb_id" {
  description = "ID of the NLB."
  value       = local.nlb_id
}

output "lb_address" {
  description = "Public IPv4 address of the NLB."
  value       = local.nlb_ip_address
}

output "listener_id" {
  description = "ID of the NLB service."
  value       = exoscale_nlb_service.this.id
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
    mode     = module.healthcheck.mode
    port     = module.healthcheck.port
    path     = module.healthcheck.mode == "tcp" ? null : var.healthcheck_uri
    interval = var.healthcheck_interval
    timeout  = var.healthcheck_timeout
    retries  = var.healthcheck_retries
  }
}
