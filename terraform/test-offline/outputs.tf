# Exactly exoscale-nlb's output names and shapes (a test compares the names).

output "lb_id" {
  description = "ID of the stand-in NLB."
  value       = local.nlb_id
}

output "lb_address" {
  description = "A documentation address (TEST-NET-1) in place of the NLB's public IP."
  value       = var.nlb_id == null ? terraform_data.nlb[0].output.values.ip_address : "192.0.2.10"
}

output "listener_id" {
  description = "ID of the stand-in NLB service."
  value       = terraform_data.nlb_service.id
}

output "port" {
  description = "Port the NLB would listen on."
  value       = var.port
}

output "node_port" {
  description = "nodePort the NLB would forward to."
  value       = terraform_data.nlb_service.output.values.target_port
}

output "healthcheck" {
  description = "The health check the NLB service would get."
  value = {
    mode     = module.healthcheck.mode
    port     = module.healthcheck.port
    path     = module.healthcheck.mode == "tcp" ? null : var.healthcheck_uri
    interval = var.healthcheck_interval
    timeout  = var.healthcheck_timeout
    retries  = var.healthcheck_retries
  }
}
