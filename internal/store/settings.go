package store

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Defaults for an app's settings. Times are in seconds.
const (
	DefaultInstances          = 1
	MaxInstances              = 32
	DefaultWarmupPath         = "/"
	DefaultWarmupStatus       = "200-399"
	DefaultStartTimeLimitSecs = 230
	MaxStartTimeLimitSecs     = 1800
	DefaultDrainTimeoutSecs   = 30
	DefaultStopGraceSecs      = 30
	MaxTimeoutSecs            = 3600
)

// Settings is an app's configuration. A zero field means its default, so
// stored settings stay small and defaults can improve later.
type Settings struct {
	// Env holds the app's environment variables.
	Env map[string]string `json:"env,omitempty"`
	// Command replaces the stack's startup command; run by /bin/sh in the
	// release directory.
	Command string `json:"command,omitempty"`
	// Instances is how many instances run the release (1–32).
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
}

// WithDefaults returns s with every zero field set to its default.
func (s Settings) WithDefaults() Settings {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&s.Instances, DefaultInstances)
	def(&s.StartTimeLimit, DefaultStartTimeLimitSecs)
	def(&s.DrainTimeout, DefaultDrainTimeoutSecs)
	def(&s.StopGrace, DefaultStopGraceSecs)
	if s.WarmupPath == "" {
		s.WarmupPath = DefaultWarmupPath
	}
	if s.WarmupStatus == "" {
		s.WarmupStatus = DefaultWarmupStatus
	}
	return s
}

// ErrInvalidSettings is wrapped by every error Validate returns.
var ErrInvalidSettings = errors.New("invalid settings")

var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.]*$`)

// Validate checks the settings; the CLI and the daemon both call it.
func (s Settings) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidSettings, fmt.Sprintf(format, args...))
	}
	for k := range s.Env {
		if !envName.MatchString(k) {
			return bad("environment variable name %q may hold only letters, digits, '_' and '.', and may not start with a digit", k)
		}
	}
	if s.Instances < 0 || s.Instances > MaxInstances {
		return bad("instances must be between 1 and %d, not %d", MaxInstances, s.Instances)
	}
	if s.WarmupPath != "" && !strings.HasPrefix(s.WarmupPath, "/") {
		return bad("warmup path %q must start with '/'", s.WarmupPath)
	}
	if s.WarmupStatus != "" {
		if _, err := ParseStatusSet(s.WarmupStatus); err != nil {
			return bad("%v", err)
		}
	}
	if s.StartTimeLimit < 0 || s.StartTimeLimit > MaxStartTimeLimitSecs {
		return bad("start time limit must be between 1 and %d seconds, not %d", MaxStartTimeLimitSecs, s.StartTimeLimit)
	}
	for name, v := range map[string]int{"drain timeout": s.DrainTimeout, "stop grace period": s.StopGrace} {
		if v < 0 || v > MaxTimeoutSecs {
			return bad("%s must be between 1 and %d seconds, not %d", name, MaxTimeoutSecs, v)
		}
	}
	return nil
}

// StatusSet is a set of accepted HTTP statuses, as inclusive ranges.
type StatusSet [][2]int

// ParseStatusSet reads "200-399" or "200,204,300-302".
func ParseStatusSet(s string) (StatusSet, error) {
	var set StatusSet
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(strings.TrimSpace(part), "-")
		if !isRange {
			hi = lo
		}
		a, err1 := strconv.Atoi(strings.TrimSpace(lo))
		b, err2 := strconv.Atoi(strings.TrimSpace(hi))
		if err1 != nil || err2 != nil || a < 100 || b > 599 || a > b {
			return nil, fmt.Errorf("accepted statuses %q: write codes from 100 to 599 as a list of codes or ranges, like \"200-399\" or \"200,204\"", s)
		}
		set = append(set, [2]int{a, b})
	}
	return set, nil
}

// Contains reports whether code is in the set.
func (set StatusSet) Contains(code int) bool {
	for _, r := range set {
		if code >= r[0] && code <= r[1] {
			return true
		}
	}
	return false
}

var appName = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// ErrInvalidName is wrapped by ValidateAppName's errors.
var ErrInvalidName = errors.New("invalid app name")

// ValidateAppName checks that name is a DNS label: it becomes a host name.
func ValidateAppName(name string) error {
	if !appName.MatchString(name) {
		return fmt.Errorf("%w %q: use 1 to 63 lowercase letters, digits and '-', starting and ending with a letter or digit", ErrInvalidName, name)
	}
	return nil
}
