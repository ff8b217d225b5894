package settings

import (
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"unicode"
)

// maxSecs bounds the time options that have no bound of their own.
const maxSecs = 3600

// MaxPathBytes bounds the warmup and health paths.
const MaxPathBytes = 1024

// options describes each scalar option once. WithDefaults, Validate,
// Changes, Change (its JSON, Empty and Apply) and the CLI's flags all read
// it, in this order, which is also the order of Changes' lines. An option
// whose default comes from another (health_path from warmup_path) comes
// after it.
var options = []Option{
	{Key: "stack", Flag: "stack", Name: "stack", Help: "how the artifact runs: java (java -jar), tomcat (a plain war, served at / by Tomcat 10.1) or command (the startup command)",
		value: text{field: func(s *Settings) *string { return &s.Stack }, unset: "from the artifact", rule: checkStack,
			defText: "from the artifact: a jar runs on java, a war on tomcat (on java if it is an executable Spring Boot war), a zip on command"}},
	{Key: "java_version", Flag: "java-version", Name: "Java version", Help: "the Java feature release to run on, like 17 or 21: a JDK the node has",
		value: text{field: func(s *Settings) *string { return &s.JavaVersion }, unset: "the node's default", rule: checkJavaVersion,
			defText: "the node's default, the java on the daemon's PATH"}},
	{Key: "placement", Flag: "placement", Name: "placement", Help: "on a cluster, the labels a node must have to run the app, like zone=west,disk=ssd",
		value: text{field: func(s *Settings) *string { return &s.Placement }, unset: "every node", rule: checkPlacement,
			defText: "every node of the cluster"}},
	{Key: "warmup_path", Flag: "warmup-path", Name: "warmup path", Help: "the path requested until an instance is ready",
		value: text{field: func(s *Settings) *string { return &s.WarmupPath }, def: "/", rule: checkPath}},
	{Key: "warmup_status", Flag: "warmup-status", Name: "warmup status", Help: "the statuses that count as ready, like 200-399 or 200,204",
		value: text{field: func(s *Settings) *string { return &s.WarmupStatus }, def: "200-399", rule: checkStatusSet}},
	{Key: "start_time_limit", Flag: "start-time-limit", Name: "start time limit", Help: "seconds an instance may take to become ready",
		value: number{field: func(s *Settings) *int { return &s.StartTimeLimit }, def: 230, min: 1, max: 1800, seconds: true}},
	{Key: "drain_timeout", Flag: "drain-timeout", Name: "drain timeout", Help: "seconds old instances get to finish their requests",
		value: number{field: func(s *Settings) *int { return &s.DrainTimeout }, def: 30, min: 1, max: maxSecs, seconds: true}},
	{Key: "stop_grace", Flag: "stop-grace", Name: "stop grace period", Help: "seconds between SIGTERM and SIGKILL",
		value: number{field: func(s *Settings) *int { return &s.StopGrace }, def: 30, min: 1, max: maxSecs, seconds: true}},
	{Key: "health_path", Flag: "health-path", Name: "health path", Help: "the path checked while an instance serves",
		value: text{field: func(s *Settings) *string { return &s.HealthPath }, defFrom: warmupPath, defText: "the warmup path", rule: checkPath}},
	{Key: "health_interval", Flag: "health-interval", Name: "health interval", Help: "seconds between health checks",
		value: number{field: func(s *Settings) *int { return &s.HealthInterval }, def: 10, min: 1, max: maxSecs, seconds: true}},
	{Key: "health_timeout", Flag: "health-timeout", Name: "health timeout", Help: "seconds a health check may take",
		value: number{field: func(s *Settings) *int { return &s.HealthTimeout }, def: 5, min: 1, max: maxSecs, seconds: true}},
	{Key: "health_threshold", Flag: "health-threshold", Name: "health threshold", Help: "failed checks in a row before an instance is replaced",
		value: number{field: func(s *Settings) *int { return &s.HealthThreshold }, def: 3, min: 1, max: maxSecs}},
	{Key: "hold_timeout", Flag: "hold-timeout", Name: "hold timeout", Help: "seconds a request waits when no instance is ready, before 503",
		value: number{field: func(s *Settings) *int { return &s.HoldTimeout }, def: 10, min: 1, max: maxSecs, seconds: true}},
	{Key: "access_log", Flag: "access-log", Name: "access log", Help: "write a line per request to the app's log (--access-log=false turns it off)",
		value: toggle{field: func(s *Settings) *bool { return &s.AccessLog }}},
	{Key: "single_runner", Flag: "single-runner", Name: "single runner", Help: "a lease NAME the platform holds for one instance of the live release, which finds the file $SLIPWAY_LEASE_DIR/NAME",
		value: text{field: func(s *Settings) *string { return &s.SingleRunner }, unset: "none", defText: "none", rule: checkLeaseName}},
}

func warmupPath(s Settings) string { return s.WarmupPath }

// Option is one scalar option of Settings: an int, a string or a bool
// field whose zero value means its default.
type Option struct {
	// Key names the option in the JSON of Settings and of Change.
	Key string
	// Flag names the CLI flag, without "--".
	Flag string
	// Name is for people: in errors, Changes and `config list`.
	Name string
	// Help is the flag's help; Usage adds the default and the bounds.
	Help string
	// value is the field, its default and its rule.
	value value
}

// value is what an option knows of its field: its type, through the
// embedded field[T], and its default and rule.
type value interface {
	ptr(s *Settings) any
	get(s Settings) any
	set(s *Settings, v any) bool
	decode(raw json.RawMessage) (any, error)
	isZero(s Settings) bool
	typeName() string
	fillDefault(s *Settings)
	check(name string, s Settings) error
	format(s Settings) string
	// change is the value in s as Changes shows it.
	change(s Settings) string
	usage() string
}

// Options returns the table of options, in its order.
func Options() []Option { return slices.Clone(options) }

// lookup finds the option named key.
func lookup(key string) (Option, bool) {
	i := slices.IndexFunc(options, func(o Option) bool { return o.Key == key })
	if i < 0 {
		return Option{}, false
	}
	return options[i], true
}

// Field returns a pointer to the option's field of s: an *int, a *string
// or a *bool. The CLI binds its flags to it.
func (o Option) Field(s *Settings) any { return o.value.ptr(s) }

// Value returns the option's value in s: an int, a string or a bool, as
// Change.Options holds it.
func (o Option) Value(s Settings) any { return o.value.get(s) }

// IsSet reports whether s sets the option, rather than leaving it to its
// default.
func (o Option) IsSet(s Settings) bool { return !o.value.isZero(s) }

// Format returns the option's value in s for people, with its unit: "30s".
func (o Option) Format(s Settings) string { return o.value.format(s) }

// Usage returns the flag's help with the default and the bounds.
func (o Option) Usage() string { return o.Help + o.value.usage() }

func (o Option) check(s Settings) error {
	if err := o.value.check(o.Name, s); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidSettings, err)
	}
	return nil
}

// field is the accessor of an option's field; the kinds below embed it.
type field[T comparable] func(*Settings) *T

func (f field[T]) ptr(s *Settings) any { return f(s) }
func (f field[T]) get(s Settings) any  { return *f(&s) }

func (f field[T]) set(s *Settings, v any) bool {
	x, ok := v.(T)
	if ok {
		*f(s) = x
	}
	return ok
}

func (f field[T]) decode(raw json.RawMessage) (any, error) {
	var x T
	err := json.Unmarshal(raw, &x)
	return x, err
}

func (f field[T]) isZero(s Settings) bool {
	var zero T
	return *f(&s) == zero
}

func (f field[T]) typeName() string {
	var zero T
	return fmt.Sprintf("%T", zero)
}

// number is an int option: a count, or a time in seconds.
type number struct {
	field[int]
	def, min, max int
	seconds       bool // the unit
}

func (n number) fillDefault(s *Settings) {
	if p := n.field(s); *p == 0 {
		*p = n.def
	}
}

func (n number) check(name string, s Settings) error {
	v := *n.field(&s)
	if v != 0 && (v < n.min || v > n.max) {
		unit := ""
		if n.seconds {
			unit = " seconds"
		}
		return fmt.Errorf("%s must be between %d and %d%s, not %d", name, n.min, n.max, unit, v)
	}
	return nil
}

func (n number) format(s Settings) string {
	v := strconv.Itoa(*n.field(&s))
	if n.seconds {
		v += "s"
	}
	return v
}

func (n number) change(s Settings) string { return strconv.Itoa(*n.field(&s)) }

func (n number) usage() string { return fmt.Sprintf(" (default %d, at most %d)", n.def, n.max) }

// text is a string option with a rule.
type text struct {
	field[string]
	def string
	// defFrom, if set, gives the default instead of def, from settings
	// whose options before this one have their defaults; defText says
	// what it is, for the flag's help (and says what a default of ""
	// means, without defFrom).
	defFrom func(Settings) string
	defText string
	// unset is shown for the value "", which an option whose default is
	// "" keeps: what the option is then.
	unset string
	// rule checks a value that is not "": checkPath or checkStatusSet.
	rule func(name, v string) error
}

func (t text) fillDefault(s *Settings) {
	p := t.field(s)
	switch {
	case *p != "":
	case t.defFrom != nil:
		*p = t.defFrom(*s)
	default:
		*p = t.def
	}
}

func (t text) check(name string, s Settings) error {
	if v := *t.field(&s); v != "" {
		return t.rule(name, v)
	}
	return nil
}

func (t text) format(s Settings) string {
	if v := *t.field(&s); v != "" {
		return v
	}
	return t.unset
}

func (t text) change(s Settings) string { return t.format(s) }

func (t text) usage() string {
	if t.defText != "" {
		return " (default: " + t.defText + ")"
	}
	return " (default " + t.def + ")"
}

// checkPath is the rule of a path requested from an instance: it goes
// into a request line as it is.
func checkPath(name, p string) error {
	if len(p) > MaxPathBytes {
		return fmt.Errorf("%s is %d bytes, at most %d are allowed; choose a shorter path", name, len(p), MaxPathBytes)
	}
	if !strings.HasPrefix(p, "/") {
		return fmt.Errorf("%s %q must start with '/'", name, p)
	}
	if i := strings.IndexFunc(p, unicode.IsControl); i >= 0 {
		return fmt.Errorf("%s %q holds a control character at byte %d; remove it", name, p, i)
	}
	if _, err := url.ParseRequestURI(p); err != nil {
		return fmt.Errorf("%s %q is not a URL path (escape '%%' as %%25)", name, p)
	}
	return nil
}

// checkLeaseName is the rule of a lease's name (see ValidateLeaseName).
func checkLeaseName(name, v string) error {
	if err := ValidateLeaseName(v); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

func checkStatusSet(name, v string) error {
	if _, err := ParseStatusSet(v); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

// toggle is a bool option, off by default.
type toggle struct {
	field[bool]
}

func (toggle) fillDefault(*Settings)        {}
func (toggle) check(string, Settings) error { return nil }
func (t toggle) format(s Settings) string   { return strconv.FormatBool(*t.field(&s)) }
func (t toggle) change(s Settings) string   { return t.format(s) }
func (toggle) usage() string                { return "" }

// MaxPlacementLabels bounds a placement.
const MaxPlacementLabels = 16

func checkPlacement(name, p string) error {
	_, err := ParsePlacement(p)
	return err
}

// ParsePlacement reads a placement: comma-separated KEY=VALUE labels.
func ParsePlacement(p string) (map[string]string, error) {
	out := map[string]string{}
	if p == "" {
		return out, nil
	}
	pairs := strings.Split(p, ",")
	if len(pairs) > MaxPlacementLabels {
		return nil, fmt.Errorf("placement: at most %d labels, not %d", MaxPlacementLabels, len(pairs))
	}
	for _, pair := range pairs {
		k, v, ok := strings.Cut(pair, "=")
		if !ok || k == "" || len(k) > 63 || len(v) > 255 || strings.ContainsFunc(pair, func(r rune) bool { return r < 0x21 || r > 0x7e }) {
			return nil, fmt.Errorf("placement %q: want KEY=VALUE labels separated by commas, printable ASCII without spaces, like zone=west,disk=ssd", p)
		}
		out[k] = v
	}
	return out, nil
}

// Places reports whether a node with labels may run an app placed by p.
func Places(p string, labels map[string]string) bool {
	want, err := ParsePlacement(p)
	if err != nil {
		return false
	}
	for k, v := range want {
		if got, ok := labels[k]; !ok || got != v {
			return false
		}
	}
	return true
}
