# Same names as exoscale-nlb's outputs.

output "lb_id" {
  description = "ID of the stand-in NLB."
  value       = terraform_data.nlb_service.output.nlb_id
}

output "lb_address" {
  description = "A documentation address (TEST-NET-1) in place of the NLB's public IP."
  value       = "192.0.2.10"
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
  value       = terraform_data.nlb_service.output.target_port
}

output "healthcheck" {
  description = "The health check the NLB service would get."
  value       = terraform_data.nlb_service.output.healthcheck
}
