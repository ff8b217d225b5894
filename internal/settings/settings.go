// Package settings holds the rules of an app's settings: the Settings type,
// its defaults and bounds, validation, the diff shown to people, and Change,
// the unit in which settings change. The store keeps Settings as they are;
// the CLI and the daemon both validate them here.
//
// The scalar options (warmup, health, drain, …) are described once, in the
// table of options.go; defaults, validation, the diff, Change and the CLI's
// flags are derived from it.
package settings

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Bounds of the settings that are not options (options.go has theirs).
// Every one is checked before anything is stored.
const (
	DefaultInstances = 1
	MaxInstances     = 32
	// MaxEnvVars bounds the number of environment variables.
	MaxEnvVars = 1000
	// MaxEnvNameBytes bounds a variable's name.
	MaxEnvNameBytes = 256
	// MaxEnvValueBytes bounds a variable's value (32 KiB).
	MaxEnvValueBytes = 32 << 10
	// MaxEnvBytes bounds all names and values together (256 KiB), well
	// under what exec accepts for a whole environment.
	MaxEnvBytes = 256 << 10
	// MaxCommandBytes bounds the startup command (16 KiB).
	MaxCommandBytes = 16 << 10
)

// Settings is an app's configuration. A zero field means its default, so
// stored settings stay small and defaults can improve later. A new scalar
// option is a field here and a line in the table of options.go.
type Settings struct {
	// Env holds the app's environment variables.
	Env map[string]string `json:"env,omitempty"`
	// Secrets names the variables of Env whose values are never shown
	// again: the API, the CLI and the logs show them as "****".
	Secrets []string `json:"secrets,omitempty"`
	// Command replaces the stack's startup command; run by /bin/sh in the
	// release directory.
	Command string `json:"command,omitempty"`
	// Stack says how the artifact runs: StackJava, StackTomcat or
	// StackCommand; "" for the one the artifact asks for.
	Stack string `json:"stack,omitempty"`
	// JavaVersion is the Java feature release the app runs on ("17"),
	// from the JDKs the node has; "" for the node's default java.
	JavaVersion string `json:"java_version,omitempty"`
	// Placement is the labels a node of a cluster must have to run the
	// app's instances, like "zone=west,disk=ssd"; every node when empty.
	// The other nodes forward the app's requests to those that run it.
	Placement string `json:"placement,omitempty"`
	// Instances is how many instances run the app (1–32). It belongs to the
	// app, not to a release: a rollback keeps the current scale. It is not
	// an option of the table: it is changed by scaling, not by a Change,
	// and a release does not record it.
	Instances int `json:"instances,omitempty"`
	// WarmupPath is requested until it answers with a WarmupStatus.
	WarmupPath string `json:"warmup_path,omitempty"`
	// WarmupStatus lists accepted statuses: "200-399", "200,204", …
	WarmupStatus string `json:"warmup_status,omitempty"`
	// StartTimeLimit bounds the warmup, in seconds (at most 1800).
	StartTimeLimit int `json:"start_time_limit,omitempty"`
	// DrainTimeout bounds the wait for requests in flight on old instances.
	DrainTimeout int `json:"drain_timeout,omitempty"`
	// StopGrace is the time between SIGTERM and SIGKILL.
	StopGrace int `json:"stop_grace,omitempty"`
	// HealthPath is requested every HealthInterval seconds once an instance
	// is live; "" means the warmup path. An answer outside WarmupStatus, or
	// none within HealthTimeout seconds, is a failure; HealthThreshold
	// failures in a row make the instance unhealthy, and it is replaced.
	HealthPath      string `json:"health_path,omitempty"`
	HealthInterval  int    `json:"health_interval,omitempty"`
	HealthTimeout   int    `json:"health_timeout,omitempty"`
	HealthThreshold int    `json:"health_threshold,omitempty"`
	// HoldTimeout is how long, in seconds, a request waits for a ready
	// instance when the app has none for a moment, before it gets 503.
	HoldTimeout int `json:"hold_timeout,omitempty"`
	// AccessLog writes a line per request to the app's log: method, path,
	// status, duration, bytes, instance and client address. Off by default.
	AccessLog bool `json:"access_log,omitempty"`
	// SingleRunner names a lease that the platform holds for one instance
	// of the live release, for an app that cannot take one itself: that
	// instance finds the file $SLIPWAY_LEASE_DIR/NAME. "" for none.
	SingleRunner string `json:"single_runner,omitempty"`
}

// WithDefaults returns s with every zero field set to its default.
func (s Settings) WithDefaults() Settings {
	if s.Instances == 0 {
		s.Instances = DefaultInstances
	}
	for _, o := range options {
		o.value.fillDefault(&s)
	}
	return s
}

// ErrInvalidSettings is wrapped by every error Validate returns.
var ErrInvalidSettings = errors.New("invalid settings")

// invalid returns an error wrapping ErrInvalidSettings.
func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidSettings, fmt.Sprintf(format, args...))
}

// Validate checks the settings, bounds included; the CLI and the daemon
// both call it, and Change.Apply calls it on what a change makes.
func (s Settings) Validate() error {
	if err := validateEnv(s.Env); err != nil {
		return err
	}
	for _, k := range s.Secrets {
		if _, ok := s.Env[k]; !ok {
			return invalid("secret %s names no environment variable; set it with 'slipway config set --secret', or leave it out of the secrets", k)
		}
	}
	if err := validateCommand(s.Command); err != nil {
		return err
	}
	if s.Instances < 0 || s.Instances > MaxInstances {
		return invalid("instances must be between 1 and %d, not %d", MaxInstances, s.Instances)
	}
	for _, o := range options {
		if err := o.check(s); err != nil {
			return err
		}
	}
	return nil
}

func validateCommand(c string) error {
	if len(c) > MaxCommandBytes {
		return invalid("the command is %d bytes, at most %d are allowed (16 KiB); put it in a script in the artifact and run that", len(c), MaxCommandBytes)
	}
	if strings.IndexByte(c, 0) >= 0 {
		return invalid("the command contains a NUL byte, which /bin/sh cannot be given; remove it")
	}
	return nil
}

// SecretMask stands for a secret's value wherever settings are shown.
const SecretMask = "****"

// IsSecret reports whether the variable k is marked secret.
func (s Settings) IsSecret(k string) bool { return slices.Contains(s.Secrets, k) }

// Masked returns a copy of s safe to show: secret values replaced.
func (s Settings) Masked() Settings {
	if len(s.Secrets) == 0 {
		return s
	}
	env := make(map[string]string, len(s.Env))
	for k, v := range s.Env {
		if s.IsSecret(k) {
			v = SecretMask
		}
		env[k] = v
	}
	s.Env = env
	return s
}

// Clone returns a deep copy of s.
func (s Settings) Clone() Settings {
	s.Env = maps.Clone(s.Env)
	s.Secrets = slices.Clone(s.Secrets)
	return s
}

// Changes lists how s differs from prev, for people: values of secrets are
// left out. Instances are not compared: they are not part of a release.
func (s Settings) Changes(prev Settings) []string {
	out := envChanges(s, prev)
	if s.Command != prev.Command {
		if s.Command == "" {
			out = append(out, "command reset to the stack default")
		} else {
			out = append(out, "command: "+s.Command)
		}
	}
	a, b := s.WithDefaults(), prev.WithDefaults()
	for _, o := range options {
		if o.Value(a) != o.Value(b) {
			out = append(out, o.Name+": "+o.value.change(a))
		}
	}
	return out
}

func envChanges(s, prev Settings) []string {
	var out []string
	for _, k := range slices.Sorted(maps.Keys(s.Env)) {
		v := s.Env[k]
		pv, had := prev.Env[k]
		switch {
		case had && pv == v && s.IsSecret(k) == prev.IsSecret(k):
		case s.IsSecret(k):
			out = append(out, "set "+k+" (secret)")
		default:
			out = append(out, "set "+k+"="+v)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(prev.Env)) {
		if _, ok := s.Env[k]; !ok {
			out = append(out, "unset "+k)
		}
	}
	return out
}
