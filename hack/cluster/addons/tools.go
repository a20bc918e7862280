//go:build tools

// Package tools pins the commands built from this module that are not its own packages.
package tools

import (
	_ "github.com/traefik/traefik/v3/cmd/traefik"
)
