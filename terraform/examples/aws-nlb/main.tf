# An AWS NLB in front of the example Service (default/python-lb: port 80 -> nodePort 31001,
# healthCheckNodePort 31897) on three nodes. `terraform init && terraform plan` here, with AWS
# credentials in the environment; `nodeport-lb cloud` writes the same module call for you from
# the live Service.

terraform {
  required_version = ">= 1.9"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.0"
    }
  }

  # Keep the state remotely, e.g.:
  # backend "s3" {
  #   bucket = "tf-state"
  #   key    = "nodeport-lb/default-python-lb-http.tfstate"
  #   region = "eu-central-1"
  # }
}

provider "aws" {
  region = var.region
}

variable "region" {
  description = "AWS region of the cluster."
  type        = string
  default     = "eu-central-1"
}

module "python_lb" {
  source = "../../modules/aws-nlb"

  name             = "default-python-lb-http"
  vpc_id           = "vpc-0123456789abcdef0"
  subnet_ids       = ["subnet-0123456789abcdef0", "subnet-0fedcba9876543210"]
  security_groups  = ["sg-0123456789abcdef0"]
  port             = 80
  target_port      = 31001 # the Service port's nodePort
  healthcheck_port = 31897 # the Service's healthCheckNodePort
  targets          = ["10.0.1.10", "10.0.1.11", "10.0.1.12"]

  deregistration_delay = 300
  tags                 = { team = "web" }
}

output "dns_name" {
  description = "Point a CNAME (or an alias record with zone_id) at this."
  value       = module.python_lb.lb_dns_name
}

output "zone_id" {
  description = "Hosted zone of the NLB's DNS name, for a Route 53 alias record."
  value       = module.python_lb.lb_zone_id
}
