package store

import (
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
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
	DefaultHealthIntervalSecs = 10
	DefaultHealthTimeoutSecs  = 5
	DefaultHealthThreshold    = 3
	DefaultHoldTimeoutSecs    = 10
)

// Settings is an app's configuration. A zero field means its default, so
// stored settings stay small and defaults can improve later.
type Settings struct {
	// Env holds the app's environment variables.
	Env map[string]string `json:"env,omitempty"`
	// Secrets names the variables of Env whose values are never shown
	// again: the API, the CLI and the logs show them as "****".
	Secrets []string `json:"secrets,omitempty"`
	// Command replaces the stack's startup command; run by /bin/sh in the
	// release directory.
	Command string `json:"command,omitempty"`
	// Instances is how many instances run the app (1–32). It belongs to the
	// app, not to a release: a rollback keeps the current scale.
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
	def(&s.HealthInterval, DefaultHealthIntervalSecs)
	def(&s.HealthTimeout, DefaultHealthTimeoutSecs)
	def(&s.HealthThreshold, DefaultHealthThreshold)
	def(&s.HoldTimeout, DefaultHoldTimeoutSecs)
	if s.WarmupPath == "" {
		s.WarmupPath = DefaultWarmupPath
	}
	if s.WarmupStatus == "" {
		s.WarmupStatus = DefaultWarmupStatus
	}
	if s.HealthPath == "" {
		s.HealthPath = s.WarmupPath
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
		if err := ValidateEnvName(k); err != nil {
			return bad("%v", err)
		}
	}
	if s.Instances < 0 || s.Instances > MaxInstances {
		return bad("instances must be between 1 and %d, not %d", MaxInstances, s.Instances)
	}
	for name, p := range map[string]string{"warmup path": s.WarmupPath, "health path": s.HealthPath} {
		if p != "" && !strings.HasPrefix(p, "/") {
			return bad("%s %q must start with '/'", name, p)
		}
	}
	if s.WarmupStatus != "" {
		if _, err := ParseStatusSet(s.WarmupStatus); err != nil {
			return bad("%v", err)
		}
	}
	if s.StartTimeLimit < 0 || s.StartTimeLimit > MaxStartTimeLimitSecs {
		return bad("start time limit must be between 1 and %d seconds, not %d", MaxStartTimeLimitSecs, s.StartTimeLimit)
	}
	for name, v := range map[string]int{"drain timeout": s.DrainTimeout, "stop grace period": s.StopGrace,
		"health interval": s.HealthInterval, "health timeout": s.HealthTimeout, "health threshold": s.HealthThreshold, "hold timeout": s.HoldTimeout} {
		if v < 0 || v > MaxTimeoutSecs {
			return bad("%s must be between 1 and %d seconds, not %d", name, MaxTimeoutSecs, v)
		}
	}
	return nil
}

// ValidateEnvName checks an environment variable's name.
func ValidateEnvName(k string) error {
	if !envName.MatchString(k) {
		return fmt.Errorf("environment variable name %q may hold only letters, digits, '_' and '.', and may not start with a digit", k)
	}
	if reservedEnv(k) {
		return fmt.Errorf("environment variable %s is set by the platform (the port and address the app must listen on, and SLIPWAY_*); choose another name", k)
	}
	return nil
}

func reservedEnv(k string) bool {
	switch k {
	case "PORT", "SERVER_PORT", "SERVER_ADDRESS":
		return true
	}
	return strings.HasPrefix(k, "SLIPWAY_")
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
	var out []string
	keys := slices.Sorted(maps.Keys(s.Env))
	for _, k := range keys {
		v, old := s.Env[k], prev.Env
		pv, had := old[k]
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
	if s.Command != prev.Command {
		if s.Command == "" {
			out = append(out, "command reset to the stack default")
		} else {
			out = append(out, "command: "+s.Command)
		}
	}
	a, b := s.WithDefaults(), prev.WithDefaults()
	opt := func(name string, now, was any) {
		if now != was {
			out = append(out, fmt.Sprintf("%s: %v", name, now))
		}
	}
	opt("warmup path", a.WarmupPath, b.WarmupPath)
	opt("warmup status", a.WarmupStatus, b.WarmupStatus)
	opt("start time limit", a.StartTimeLimit, b.StartTimeLimit)
	opt("drain timeout", a.DrainTimeout, b.DrainTimeout)
	opt("stop grace", a.StopGrace, b.StopGrace)
	opt("health path", a.HealthPath, b.HealthPath)
	opt("health interval", a.HealthInterval, b.HealthInterval)
	opt("health timeout", a.HealthTimeout, b.HealthTimeout)
	opt("health threshold", a.HealthThreshold, b.HealthThreshold)
	opt("hold timeout", a.HoldTimeout, b.HoldTimeout)
	opt("access log", a.AccessLog, b.AccessLog)
	return out
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

// Change is one change to an app's settings, however many keys it touches.
// A nil field is left as it is.
type Change struct {
	Set   map[string]string `json:"set,omitempty"`
	Unset []string          `json:"unset,omitempty"`
	// Secret marks the values in Set as secrets; setting a variable without
	// it makes the variable an ordinary one again.
	Secret bool `json:"secret,omitempty"`
	// Command sets the startup command; "" goes back to the stack default.
	Command         *string `json:"command,omitempty"`
	WarmupPath      *string `json:"warmup_path,omitempty"`
	WarmupStatus    *string `json:"warmup_status,omitempty"`
	StartTimeLimit  *int    `json:"start_time_limit,omitempty"`
	DrainTimeout    *int    `json:"drain_timeout,omitempty"`
	StopGrace       *int    `json:"stop_grace,omitempty"`
	HealthPath      *string `json:"health_path,omitempty"`
	HealthInterval  *int    `json:"health_interval,omitempty"`
	HealthTimeout   *int    `json:"health_timeout,omitempty"`
	HealthThreshold *int    `json:"health_threshold,omitempty"`
	HoldTimeout     *int    `json:"hold_timeout,omitempty"`
	AccessLog       *bool   `json:"access_log,omitempty"`
}

// ParseEnvPairs reads KEY=VALUE pairs, as the CLI takes them; the value
// may hold "=" and be empty. Names are checked as ValidateEnvName does.
func ParseEnvPairs(pairs []string) (map[string]string, error) {
	if len(pairs) == 0 {
		return nil, nil
	}
	env := make(map[string]string, len(pairs))
	for _, p := range pairs {
		k, v, ok := strings.Cut(p, "=")
		if !ok {
			return nil, fmt.Errorf("%w: %q is not KEY=VALUE", ErrInvalidSettings, p)
		}
		if err := ValidateEnvName(k); err != nil {
			return nil, err
		}
		env[k] = v
	}
	return env, nil
}

// Empty reports whether the change changes nothing at all.
func (c Change) Empty() bool {
	return len(c.Set) == 0 && len(c.Unset) == 0 && c.Command == nil && c.WarmupPath == nil &&
		c.WarmupStatus == nil && c.StartTimeLimit == nil && c.DrainTimeout == nil && c.StopGrace == nil &&
		c.HealthPath == nil && c.HealthInterval == nil && c.HealthTimeout == nil && c.HealthThreshold == nil && c.HoldTimeout == nil && c.AccessLog == nil
}

// Apply returns s with the change made, validated.
func (c Change) Apply(s Settings) (Settings, error) {
	if c.Empty() {
		return s, fmt.Errorf("%w: the change is empty; give KEY=VALUE pairs, names to unset, or options", ErrInvalidSettings)
	}
	s = s.Clone()
	if len(c.Set) > 0 && s.Env == nil {
		s.Env = make(map[string]string)
	}
	for k, v := range c.Set {
		s.Env[k] = v
		s.Secrets = slices.DeleteFunc(s.Secrets, func(x string) bool { return x == k })
		if c.Secret {
			s.Secrets = append(s.Secrets, k)
		}
	}
	for _, k := range c.Unset {
		delete(s.Env, k)
		s.Secrets = slices.DeleteFunc(s.Secrets, func(x string) bool { return x == k })
	}
	slices.Sort(s.Secrets)
	setIf(&s.Command, c.Command)
	setIf(&s.WarmupPath, c.WarmupPath)
	setIf(&s.WarmupStatus, c.WarmupStatus)
	setIf(&s.StartTimeLimit, c.StartTimeLimit)
	setIf(&s.DrainTimeout, c.DrainTimeout)
	setIf(&s.StopGrace, c.StopGrace)
	setIf(&s.HealthPath, c.HealthPath)
	setIf(&s.HealthInterval, c.HealthInterval)
	setIf(&s.HealthTimeout, c.HealthTimeout)
	setIf(&s.HealthThreshold, c.HealthThreshold)
	setIf(&s.HoldTimeout, c.HoldTimeout)
	setIf(&s.AccessLog, c.AccessLog)
	return s, s.Validate()
}

func setIf[T any](dst *T, v *T) {
	if v != nil {
		*dst = *v
	}
}
