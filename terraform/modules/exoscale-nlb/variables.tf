# One Exoscale NLB service for one port of a Kubernetes Service. Names follow what
# `nodeport-lb cloud render --provider exoscale` prints; defaults are HTTP on the hcnp with a working setup's timing.

variable "name" {
  description = "Name of the NLB service (and of the NLB when this module creates it)."
  type        = string
}

variable "description" {
  description = "Free-form description of the NLB service."
  type        = string
  default     = "managed by nodeport-lb"
}

variable "zone" {
  description = "Exoscale zone, e.g. ch-gva-2."
  type        = string
}

variable "instance_pool_id" {
  description = "ID of the instance pool running the Kubernetes nodes."
  type        = string
}

variable "nlb_id" {
  description = "ID of an existing NLB to add the service to; null creates an NLB named after `name`."
  type        = string
  default     = null
}

variable "protocol" {
  description = "Protocol of the Service port: tcp or udp."
  type        = string
  default     = "tcp"

  validation {
    condition     = contains(["tcp", "udp"], var.protocol)
    error_message = "protocol must be tcp or udp."
  }
}

variable "port" {
  description = "Port the NLB listens on (the Service's port)."
  type        = number
}

variable "target_port" {
  description = "Port traffic is forwarded to on every node: the Service port's nodePort."
  type        = number
}

variable "strategy" {
  description = "Load-balancing strategy: source-hash keeps a client on one node, round-robin spreads."
  type        = string
  default     = "source-hash"

  validation {
    condition     = contains(["source-hash", "round-robin"], var.strategy)
    error_message = "strategy must be source-hash or round-robin."
  }
}

variable "external_traffic_policy" {
  description = "The Service's externalTrafficPolicy (Local or Cluster); Local forbids a tcp health check."
  type        = string
  default     = "Local"
}

variable "node_port_range" {
  description = "The API server's --service-node-port-range, LOW-HIGH."
  type        = string
  default     = "30000-32767"
}

variable "healthcheck_mode" {
  description = "http (default), https or tcp; tcp is refused for externalTrafficPolicy: Local."
  type        = string
  default     = "http"
}

variable "healthcheck_port" {
  description = "The Service's healthCheckNodePort (Local) or the node proxy's healthz port 10256 (Cluster)."
  type        = number
}

variable "healthcheck_uri" {
  description = "Path of the HTTP check; kube-proxy answers on any path."
  type        = string
  default     = "/"
}

variable "healthcheck_interval" {
  description = "Seconds between checks."
  type        = number
  default     = 10
}

variable "healthcheck_timeout" {
  description = "Seconds to wait for an answer; at most the interval."
  type        = number
  default     = 3

  validation {
    condition     = var.healthcheck_timeout <= var.healthcheck_interval
    error_message = "healthcheck_timeout must not exceed healthcheck_interval."
  }
}

variable "healthcheck_retries" {
  description = "Failed checks before a node is taken out."
  type        = number
  default     = 1
}

variable "healthcheck_tls_sni" {
  description = "TLS SNI server name, only for the https mode."
  type        = string
  default     = null
}
