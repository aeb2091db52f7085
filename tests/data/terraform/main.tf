# Known misconfigurations for tests/integration/test_import_checkov.py: checkov must fail
# these checks (no encryption, no versioning, no access logging on the bucket; SSH open to
# the world). Never applied anywhere.
provider "aws" {
  region = "eu-west-1"
}

resource "aws_s3_bucket" "data" {
  bucket = "policyscope-fixture-data"
}

resource "aws_security_group" "ssh_open" {
  name        = "ssh-open"
  description = "SSH from anywhere"

  ingress {
    description = "SSH"
    from_port   = 22
    to_port     = 22
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0"]
  }
}
