package config

import (
	"fmt"
	"time"

	"go.yaml.in/yaml/v3"
)

// Duration is a time.Duration written with a unit in YAML ("60s", "10m").
type Duration time.Duration

// UnmarshalYAML accepts only strings that time.ParseDuration reads: a bare
// number would leave the unit to guesswork.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode || n.Tag != "!!str" {
		return fmt.Errorf("line %d: want a duration with a unit, like \"60s\" or \"10m\", got %q", n.Line, n.Value)
	}
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: want a duration with a unit, like \"60s\" or \"10m\", got %q", n.Line, n.Value)
	}
	*d = Duration(v)
	return nil
}
