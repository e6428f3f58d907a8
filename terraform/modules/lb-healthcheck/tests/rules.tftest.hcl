# Offline: this module has no providers, so `terraform init && terraform test` needs no download.

variables {
  external_traffic_policy = "Local"
  mode                    = "http"
  port                    = 31897
  node_port               = 31001
}

run "http_on_hcnp_for_local_is_accepted" {
  command = plan

  assert {
    condition     = output.mode == "http" && output.port == 31897 && output.node_port == 31001
    error_message = "the example Service (nodePort 31001, hcnp 31897) must pass unchanged"
  }
}

run "tcp_for_local_is_refused" {
  command = plan

  variables {
    mode = "tcp"
  }

  expect_failures = [var.mode]
}

run "tcp_for_cluster_is_allowed" {
  command = plan

  variables {
    external_traffic_policy = "Cluster"
    mode                    = "tcp"
    port                    = 10256
  }
}

run "hcnp_outside_range_is_refused_for_local" {
  command = plan

  variables {
    port = 10256
  }

  expect_failures = [var.port]
}

run "hcnp_in_custom_range_is_accepted" {
  command = plan

  variables {
    node_port_range = "20000-22767"
    port            = 21897
    node_port       = 21001
  }
}

run "node_port_outside_range_is_refused" {
  command = plan

  variables {
    node_port = 29999
  }

  expect_failures = [var.node_port]
}

run "malformed_range_is_refused" {
  command = plan

  variables {
    node_port_range = "30000"
  }

  expect_failures = [var.node_port_range]
}
