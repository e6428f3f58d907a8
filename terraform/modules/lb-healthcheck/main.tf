# No resources: this module is the one copy of the health-check rules that every cloud module
# applies, kept free of providers so `terraform test` can exercise it offline.
locals {
  range = [for bound in split("-", var.node_port_range) : tonumber(bound)]
}
