variable "external_traffic_policy" {
  description = "The Service's spec.externalTrafficPolicy: Local or Cluster."
  type        = string
  default     = "Local"

  validation {
    condition     = contains(["Local", "Cluster"], var.external_traffic_policy)
    error_message = "external_traffic_policy must be \"Local\" or \"Cluster\"."
  }
}

variable "mode" {
  description = "Health-check protocol: http, https or tcp (lower case; providers that want upper case convert)."
  type        = string
  default     = "http"

  validation {
    condition     = contains(["http", "https", "tcp"], var.mode)
    error_message = "healthcheck mode must be one of http, https, tcp."
  }

  # The healthCheckNodePort is open on every node whether or not it has a local pod: only the
  # HTTP status (200 / 503) says which nodes may take traffic. A TCP check always passes.
  validation {
    condition     = !(var.external_traffic_policy == "Local" && var.mode == "tcp")
    error_message = "a tcp health check is refused for externalTrafficPolicy: Local: the healthCheckNodePort is open on every node, so a TCP check always passes and nodes without a local pod keep receiving traffic that they drop. Use http (kube-proxy answers 200 with local endpoints, 503 without)."
  }
}

variable "port" {
  description = "Health-check port: the Service's healthCheckNodePort for Local, the node proxy's healthz port (10256) for Cluster."
  type        = number

  validation {
    condition     = var.port >= 1 && var.port <= 65535 && floor(var.port) == var.port
    error_message = "healthcheck port must be an integer in 1-65535."
  }

  validation {
    condition = var.external_traffic_policy != "Local" || (
      var.port >= tonumber(split("-", var.node_port_range)[0]) &&
      var.port <= tonumber(split("-", var.node_port_range)[1])
    )
    error_message = "for externalTrafficPolicy: Local the health check must target the healthCheckNodePort, which lies in the node port range (node_port_range)."
  }
}

variable "node_port" {
  description = "The nodePort traffic is forwarded to; it must lie in the node port range."
  type        = number

  validation {
    condition = (
      var.node_port >= tonumber(split("-", var.node_port_range)[0]) &&
      var.node_port <= tonumber(split("-", var.node_port_range)[1])
    )
    error_message = "the nodePort (target_port) must lie in the node port range (node_port_range)."
  }
}

variable "node_port_range" {
  description = "The API server's --service-node-port-range, LOW-HIGH."
  type        = string
  default     = "30000-32767"

  validation {
    condition = (
      can(regex("^[0-9]+-[0-9]+$", var.node_port_range)) &&
      try(tonumber(split("-", var.node_port_range)[0]) <= tonumber(split("-", var.node_port_range)[1]), false)
    )
    error_message = "node_port_range must be LOW-HIGH, e.g. 30000-32767."
  }
}
