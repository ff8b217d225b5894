package cli

import (
	"reflect"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/slipway-dev/slipway/internal/settings"
)

// TestOptionFlags: the verbs that take options keep the flags they had
// before the flags came from the table of options.
func TestOptionFlags(t *testing.T) {
	g := &globals{}
	tests := []struct {
		verb  string
		cmd   *cobra.Command
		flags []string
	}{
		{"config options", newConfigOptionsCmd(g), []string{"warmup-path", "warmup-status", "start-time-limit", "drain-timeout", "stop-grace",
			"health-path", "health-interval", "health-timeout", "health-threshold", "hold-timeout", "access-log", "no-restart"}},
		{"apps create", newAppsCreateCmd(g), []string{"env", "command", "start-time-limit", "warmup-path", "warmup-status", "drain-timeout", "stop-grace"}},
	}
	for _, tt := range tests {
		for _, name := range tt.flags {
			if tt.cmd.Flags().Lookup(name) == nil {
				t.Errorf("%s has no --%s", tt.verb, name)
			}
		}
	}
}

// TestOptionChange: only the options whose flags are given are changed,
// to the values given, 0 included.
func TestOptionChange(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want map[string]any
	}{
		{"none", nil, map[string]any{}},
		{"each kind", []string{"--drain-timeout", "0", "--warmup-path=/ready", "--access-log"},
			map[string]any{"drain_timeout": 0, "warmup_path": "/ready", "access_log": true}},
		{"a bool turned off", []string{"--access-log=false", "--stop-grace", "7"},
			map[string]any{"access_log": false, "stop_grace": 7}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var vals settings.Settings
			fl := pflag.NewFlagSet("options", pflag.ContinueOnError)
			addOptionFlags(fl, &vals)
			if err := fl.Parse(tt.args); err != nil {
				t.Fatal(err)
			}
			if got := optionChange(fl, vals).Options; !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}
