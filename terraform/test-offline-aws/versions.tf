terraform {
  # No required_providers on purpose: only the built-in terraform_data is used, so
  # `terraform init` downloads nothing and the whole driver cycle runs offline in CI.
  required_version = ">= 1.9"
}
