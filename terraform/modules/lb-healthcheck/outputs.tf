output "mode" {
  description = "The validated health-check mode."
  value       = var.mode
}

output "port" {
  description = "The validated health-check port."
  value       = var.port
}

output "node_port" {
  description = "The validated nodePort."
  value       = var.node_port
}

output "node_port_range" {
  description = "The node port range as [low, high]."
  value       = local.range
}
