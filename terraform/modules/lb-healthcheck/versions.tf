terraform {
  # Cross-variable validation (a rule on one variable that reads another) needs 1.9.
  required_version = ">= 1.9"
}
