# An Exoscale NLB in front of the example Service (default/python-lb: port 80 -> nodePort 31001,
# healthCheckNodePort 31897) on the nodes' instance pool. `terraform init && terraform plan`
# here, with EXOSCALE_API_KEY/EXOSCALE_API_SECRET in the environment; `nodeport-lb cloud`
# writes the same module call for you from the live Service.

terraform {
  required_version = ">= 1.9"

  required_providers {
    exoscale = {
      source  = "exoscale/exoscale"
      version = ">= 0.54"
    }
  }
}

provider "exoscale" {}

variable "instance_pool_id" {
  description = "ID of the instance pool running the Kubernetes nodes."
  type        = string
}

module "python_lb" {
  source = "../../modules/exoscale-nlb"

  zone             = "ch-gva-2"
  instance_pool_id = var.instance_pool_id
  name             = "default-python-lb-http"
  port             = 80
  target_port      = 31001 # the Service port's nodePort
  healthcheck_port = 31897 # the Service's healthCheckNodePort
}

output "address" {
  description = "The NLB's public IPv4 address."
  value       = module.python_lb.lb_address
}
