// Package installtest holds the acceptance test of the README's getting
// started path: `make install` into the plugin directory Terraform and
// OpenTofu search without any CLI configuration, then `init`, `plan` and
// `apply` against a real `zonegit-replicate serve`, offline. It has no code
// of its own.
package installtest
