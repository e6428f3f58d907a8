# One AWS Network Load Balancer listener + target group for one port of a Kubernetes Service.
# Names follow what `nodeport-lb cloud render --provider aws` prints.

variable "name" {
  description = "Name of the target group (and of the NLB when this module creates it); at most 32 characters."
  type        = string

  validation {
    condition     = length(var.name) <= 32
    error_message = "AWS limits load balancer and target group names to 32 characters."
  }
}

variable "vpc_id" {
  description = "VPC of the Kubernetes nodes."
  type        = string
}

variable "subnet_ids" {
  description = "Subnets for a new NLB (ignored when lb_arn is set)."
  type        = list(string)
  default     = []
}

variable "lb_arn" {
  description = "ARN of an existing NLB to add the listener to; null creates an NLB."
  type        = string
  default     = null
}

variable "security_groups" {
  description = "Security groups for a new NLB (AWS attaches them only at creation); null: none, the nodes' security groups admit the clients."
  type        = list(string)
  default     = null
}

variable "target_group_name_prefix" {
  description = "Prefix of the target group's generated name (at most 6 characters): a replaced target group gets a new name, so it can be created before the old one is destroyed."
  type        = string
  default     = "nplb-"

  validation {
    condition     = can(regex("^[0-9A-Za-z][0-9A-Za-z-]{0,5}$", var.target_group_name_prefix))
    error_message = "target_group_name_prefix: 1-6 letters, digits or hyphens, not starting with a hyphen (AWS appends 26 characters to make a name of at most 32)."
  }
}

variable "internal" {
  description = "Whether a new NLB is internal."
  type        = bool
  default     = false
}

variable "protocol" {
  description = "Protocol of the Service port: TCP or UDP."
  type        = string
  default     = "TCP"

  validation {
    condition     = contains(["TCP", "UDP"], var.protocol)
    error_message = "protocol must be TCP or UDP."
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

variable "target_type" {
  description = "ip (targets are node addresses) or instance (targets are EC2 instance IDs)."
  type        = string
  default     = "ip"

  validation {
    condition     = contains(["ip", "instance"], var.target_type)
    error_message = "target_type must be ip or instance."
  }
}

variable "targets" {
  description = "Node addresses (target_type ip) or instance IDs (target_type instance) to register."
  type        = list(string)
  default     = []
}

variable "deregistration_delay" {
  description = "Seconds a removed node keeps its established connections (0-3600). The default, AWS's own, is far longer than the health check's detection time (interval x unhealthy_threshold = 20 s), so connections that a terminating pod still serves can finish."
  type        = number
  default     = 300

  validation {
    condition     = var.deregistration_delay >= 0 && var.deregistration_delay <= 3600 && floor(var.deregistration_delay) == var.deregistration_delay
    error_message = "deregistration_delay must be a whole number of seconds in 0-3600."
  }
}

variable "connection_termination" {
  description = "Close a removed node's remaining connections when the deregistration delay ends (false: they may outlive it)."
  type        = bool
  default     = false
}

variable "proxy_protocol_v2" {
  description = "Prepend a PROXY protocol v2 header to every connection (the application must parse it)."
  type        = bool
  default     = false

  # With instance targets the NLB already preserves the client's address, which the pod of an
  # externalTrafficPolicy: Local Service sees unchanged; a PROXY header on top only reaches an
  # application that does not expect it, which AWS's load balancer controller warns against.
  validation {
    condition     = !(var.proxy_protocol_v2 && var.target_type == "instance" && var.external_traffic_policy == "Local")
    error_message = "proxy_protocol_v2 is refused with target_type instance for externalTrafficPolicy: Local: the NLB already preserves the client's address there and the pod sees it as is; a PROXY v2 header would reach an application that does not expect one (AWS's load balancer controller warns against this combination). Leave proxy_protocol_v2 off, or use target_type ip for an application that parses PROXY v2."
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

variable "healthcheck_path" {
  description = "Path of the HTTP check; kube-proxy answers on any path, /healthz is what AWS's cloud controller uses."
  type        = string
  default     = "/healthz"
}

variable "healthcheck_interval" {
  description = "Seconds between checks (5-300)."
  type        = number
  default     = 10
}

variable "healthcheck_timeout" {
  description = "Seconds to wait for an answer (2-120)."
  type        = number
  default     = 6
}

variable "healthy_threshold" {
  description = "Consecutive successes before a node takes traffic (2-10)."
  type        = number
  default     = 2
}

variable "unhealthy_threshold" {
  description = "Consecutive failures before a node is taken out (2-10)."
  type        = number
  default     = 2
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
