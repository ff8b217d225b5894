package settings

import (
	"errors"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

func TestSettingsValidate(t *testing.T) {
	tests := []struct {
		name string
		s    Settings
		want string // in the error; "" for valid
	}{
		{"zero is valid", Settings{}, ""},
		{"all set", Settings{Env: map[string]string{"A_B.c": "1"}, Instances: 32, WarmupPath: "/health", WarmupStatus: "200,204", StartTimeLimit: 1800}, ""},
		{"env name with dash", Settings{Env: map[string]string{"A-B": "1"}}, "may hold only letters"},
		{"env name starting with a digit", Settings{Env: map[string]string{"1A": "1"}}, "may not start with a digit"},
		{"reserved env name", Settings{Env: map[string]string{"SLIPWAY_X": "1"}}, "set by the platform"},
		{"too many instances", Settings{Instances: 33}, "instances must be between 1 and 32, not 33"},
		{"negative instances", Settings{Instances: -1}, "between 1 and 32"},
		{"warmup path without slash", Settings{WarmupPath: "health"}, `warmup path "health" must start with '/'`},
		{"health path without slash", Settings{HealthPath: "health"}, `health path "health" must start with '/'`},
		{"path with a bad escape", Settings{WarmupPath: "/%zz"}, "is not a URL path"},
		{"bad status", Settings{WarmupStatus: "2xx"}, "accepted statuses"},
		{"start limit too long", Settings{StartTimeLimit: 1801}, "start time limit must be between 1 and 1800 seconds, not 1801"},
		{"negative drain", Settings{DrainTimeout: -5}, "drain timeout must be between 1 and 3600 seconds, not -5"},
		{"long stop grace", Settings{StopGrace: 99999}, "stop grace period must be between"},
		{"negative threshold", Settings{HealthThreshold: -1}, "health threshold must be between 1 and 3600, not -1"},
		{"secret without a variable", Settings{Env: map[string]string{"A": "1"}, Secrets: []string{"B"}}, "secret B names no environment variable"},
		{"secret with its variable", Settings{Env: map[string]string{"A": "1"}, Secrets: []string{"A"}}, ""},
		{"stack java", Settings{Stack: "java"}, ""},
		{"stack tomcat", Settings{Stack: "tomcat"}, ""},
		{"stack command", Settings{Stack: "command"}, ""},
		{"unknown stack", Settings{Stack: "jetty"}, `stack "jetty": want one of java, tomcat, command`},
		{"stack in capitals", Settings{Stack: "Tomcat"}, `stack "Tomcat": want one of`},
		{"java 17", Settings{JavaVersion: "17"}, ""},
		{"java 8", Settings{JavaVersion: "8"}, ""},
		{"java 999", Settings{JavaVersion: "999"}, ""},
		{"java 7", Settings{JavaVersion: "7"}, `Java version "7": want a Java feature release from 8 to 999`},
		{"java 1000", Settings{JavaVersion: "1000"}, `Java version "1000"`},
		{"java 1.8", Settings{JavaVersion: "1.8"}, "(Java 1.8 is 8)"},
		{"java with an update", Settings{JavaVersion: "17.0.2"}, "(the feature release alone, like 17)"},
		{"java with a leading zero", Settings{JavaVersion: "017"}, `Java version "017"`},
		{"java with a sign", Settings{JavaVersion: "+17"}, `Java version "+17"`},
		{"java with a space", Settings{JavaVersion: " 17"}, `Java version " 17"`},
		{"java by name", Settings{JavaVersion: "temurin-21"}, `Java version "temurin-21"`},
		{"single runner", Settings{SingleRunner: "nightly-batch.v2"}, ""},
		{"single runner with a slash", Settings{SingleRunner: "../x"}, `single runner: invalid lease name "../x"`},
		{"single runner in capitals", Settings{SingleRunner: "Nightly"}, "lowercase letters"},
		{"single runner too long", Settings{SingleRunner: strings.Repeat("a", 129)}, "1 to 128"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.s.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("got %v, want valid", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want) || !errors.Is(err, ErrInvalidSettings)):
				t.Errorf("got %v, want an ErrInvalidSettings saying %q", err, tt.want)
			}
		})
	}
}

// envOf returns n variables V0, V1, … whose names and values take size
// bytes in all (size must leave each at least its name).
func envOf(n, size int) map[string]string {
	env := make(map[string]string, n)
	for i := range n {
		k := "V" + strconv.Itoa(i)
		v := size / n
		if i < size%n {
			v++
		}
		env[k] = strings.Repeat("x", v-len(k))
	}
	return env
}

// TestBounds checks each bound just under it, at it and over it.
func TestBounds(t *testing.T) {
	opt := func(key string, v int) Settings {
		var s Settings
		o, _ := lookup(key)
		*o.Field(&s).(*int) = v
		return s
	}
	tests := []struct {
		name string
		s    Settings
		want string // in the error; "" for valid
	}{
		{"env count under", Settings{Env: envOf(999, 999*8)}, ""},
		{"env count at", Settings{Env: envOf(1000, 1000*8)}, ""},
		{"env count over", Settings{Env: envOf(1001, 1001*8)}, "1001 environment variables, at most 1000 are allowed; unset some"},
		{"name under", Settings{Env: map[string]string{"A" + strings.Repeat("b", 254): ""}}, ""},
		{"name at", Settings{Env: map[string]string{"A" + strings.Repeat("b", 255): ""}}, ""},
		{"name over", Settings{Env: map[string]string{"A" + strings.Repeat("b", 256): ""}}, "is 257 bytes, at most 256 are allowed; choose a shorter name"},
		{"value under", Settings{Env: map[string]string{"A": strings.Repeat("x", 32<<10-1)}}, ""},
		{"value at", Settings{Env: map[string]string{"A": strings.Repeat("x", 32<<10)}}, ""},
		{"value over", Settings{Env: map[string]string{"A": strings.Repeat("x", 32<<10+1)}}, "the value of A is 32769 bytes, at most 32768 are allowed"},
		{"value with NUL", Settings{Env: map[string]string{"A": "x\x00y"}}, "the value of A contains a NUL byte"},
		{"all env under", Settings{Env: envOf(8, 256<<10-1)}, ""},
		{"all env at", Settings{Env: envOf(8, 256<<10)}, ""},
		{"all env over", Settings{Env: envOf(9, 256<<10+1)}, "take 262145 bytes in all, at most 262144 are allowed"},
		{"command under", Settings{Command: strings.Repeat("x", 16<<10-1)}, ""},
		{"command at", Settings{Command: strings.Repeat("x", 16<<10)}, ""},
		{"command over", Settings{Command: strings.Repeat("x", 16<<10+1)}, "the command is 16385 bytes, at most 16384 are allowed"},
		{"command with NUL", Settings{Command: "java\x00-jar"}, "the command contains a NUL byte"},
		{"instances under", Settings{Instances: 31}, ""},
		{"instances at", Settings{Instances: 32}, ""},
		{"instances over", Settings{Instances: 33}, "instances must be between 1 and 32, not 33"},
		{"path under", Settings{WarmupPath: "/" + strings.Repeat("a", 1022)}, ""},
		{"path at", Settings{WarmupPath: "/" + strings.Repeat("a", 1023)}, ""},
		{"path over", Settings{WarmupPath: "/" + strings.Repeat("a", 1024)}, "warmup path is 1025 bytes, at most 1024 are allowed"},
		{"health path over", Settings{HealthPath: "/" + strings.Repeat("a", 1024)}, "health path is 1025 bytes"},
		{"path with CR LF", Settings{WarmupPath: "/a\r\nHost: evil"}, "holds a control character at byte 2"},
		{"path with NUL", Settings{HealthPath: "/\x00"}, "health path \"/\\x00\" holds a control character"},
		{"path with DEL", Settings{WarmupPath: "/\x7f"}, "control character"},
		{"path with a C1 control", Settings{WarmupPath: "/\u0085"}, "control character"},
		{"path with a space and a query", Settings{WarmupPath: "/a b?x=1"}, ""},
	}
	for _, b := range []struct {
		key  string
		min  int
		max  int
		unit string
	}{
		{"start_time_limit", 1, 1800, " seconds"},
		{"drain_timeout", 1, 3600, " seconds"},
		{"stop_grace", 1, 3600, " seconds"},
		{"health_interval", 1, 3600, " seconds"},
		{"health_timeout", 1, 3600, " seconds"},
		{"health_threshold", 1, 3600, ""},
		{"hold_timeout", 1, 3600, " seconds"},
	} {
		o, _ := lookup(b.key)
		refused := func(v int) string {
			return o.Name + " must be between " + strconv.Itoa(b.min) + " and " + strconv.Itoa(b.max) + b.unit + ", not " + strconv.Itoa(v)
		}
		tests = append(tests, []struct {
			name string
			s    Settings
			want string
		}{
			{b.key + " default", opt(b.key, 0), ""},
			{b.key + " negative", opt(b.key, -1), refused(-1)},
			{b.key + " least", opt(b.key, b.min), ""},
			{b.key + " under", opt(b.key, b.max-1), ""},
			{b.key + " at", opt(b.key, b.max), ""},
			{b.key + " over", opt(b.key, b.max+1), refused(b.max + 1)},
		}...)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.s.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("got %v, want valid", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want) || !errors.Is(err, ErrInvalidSettings)):
				t.Errorf("got %.200v, want an ErrInvalidSettings saying %q", err, tt.want)
			}
		})
	}
}

func TestWithDefaults(t *testing.T) {
	all := Settings{Instances: 1, WarmupPath: "/", WarmupStatus: "200-399", StartTimeLimit: 230, DrainTimeout: 30, StopGrace: 30,
		HealthPath: "/", HealthInterval: 10, HealthTimeout: 5, HealthThreshold: 3, HoldTimeout: 10}
	set := Settings{Env: map[string]string{"A": "1"}, Command: "run", Instances: 3, WarmupPath: "/ready", WarmupStatus: "204",
		StartTimeLimit: 60, DrainTimeout: 5, StopGrace: 7, HealthPath: "/live", HealthInterval: 2, HealthTimeout: 1,
		HealthThreshold: 9, HoldTimeout: 4, AccessLog: true}
	withWarmup := all
	withWarmup.WarmupPath, withWarmup.HealthPath = "/ready", "/ready"
	tests := []struct {
		name string
		s    Settings
		want Settings
	}{
		{"zero", Settings{}, all},
		{"everything set is kept", set, set},
		{"the health path follows the warmup path", Settings{WarmupPath: "/ready"}, withWarmup},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.s.WithDefaults(); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
			if err := tt.s.WithDefaults().Validate(); err != nil {
				t.Errorf("the defaults are invalid: %v", err)
			}
		})
	}
}

func TestValidateLeaseName(t *testing.T) {
	for _, name := range []string{"a", "nightly", "report-mailer", "queue_poller.v2", "0", strings.Repeat("a", 128)} {
		if err := ValidateLeaseName(name); err != nil {
			t.Errorf("%q: %v, want valid", name, err)
		}
	}
	for _, name := range []string{"", "-a", "a-", ".", "..", "a/b", "A", "a b", "a\x00", "é", strings.Repeat("a", 129), "a\n"} {
		if err := ValidateLeaseName(name); !errors.Is(err, ErrInvalidLeaseName) {
			t.Errorf("%q: %v, want ErrInvalidLeaseName", name, err)
		}
	}
}

func TestChanges(t *testing.T) {
	base := Settings{Env: map[string]string{"KEEP": "1", "GONE": "2", "HUSH": "3"}, Secrets: []string{"HUSH"}}
	tests := []struct {
		name      string
		prev, now Settings
		want      []string
	}{
		{"nothing", base, base, nil},
		{"env", base, Settings{Env: map[string]string{"KEEP": "1", "NEW": "x=y", "HUSH": "4"}, Secrets: []string{"HUSH"}},
			[]string{"set HUSH (secret)", "set NEW=x=y", "unset GONE"}},
		{"a variable made secret", Settings{Env: map[string]string{"A": "1"}}, Settings{Env: map[string]string{"A": "1"}, Secrets: []string{"A"}},
			[]string{"set A (secret)"}},
		{"command", Settings{}, Settings{Command: "java -jar x.jar"}, []string{"command: java -jar x.jar"}},
		{"command reset", Settings{Command: "run"}, Settings{}, []string{"command reset to the stack default"}},
		{"instances are not compared", Settings{Instances: 1}, Settings{Instances: 5}, nil},
		{"a default written out is no change", Settings{}, Settings{DrainTimeout: 30, WarmupPath: "/"}, nil},
		{"warmup path", Settings{}, Settings{WarmupPath: "/ready"}, []string{"warmup path: /ready", "health path: /ready"}},
		{"warmup path, health path set", Settings{HealthPath: "/live"}, Settings{WarmupPath: "/ready", HealthPath: "/live"}, []string{"warmup path: /ready"}},
		{"warmup status", Settings{}, Settings{WarmupStatus: "204"}, []string{"warmup status: 204"}},
		{"start time limit", Settings{}, Settings{StartTimeLimit: 60}, []string{"start time limit: 60"}},
		{"drain timeout", Settings{}, Settings{DrainTimeout: 5}, []string{"drain timeout: 5"}},
		{"stop grace", Settings{}, Settings{StopGrace: 7}, []string{"stop grace period: 7"}},
		{"health path", Settings{}, Settings{HealthPath: "/live"}, []string{"health path: /live"}},
		{"health interval", Settings{}, Settings{HealthInterval: 2}, []string{"health interval: 2"}},
		{"health timeout", Settings{}, Settings{HealthTimeout: 1}, []string{"health timeout: 1"}},
		{"health threshold", Settings{}, Settings{HealthThreshold: 9}, []string{"health threshold: 9"}},
		{"hold timeout", Settings{}, Settings{HoldTimeout: 4}, []string{"hold timeout: 4"}},
		{"access log on", Settings{}, Settings{AccessLog: true}, []string{"access log: true"}},
		{"access log off", Settings{AccessLog: true}, Settings{}, []string{"access log: false"}},
		{"stack", Settings{}, Settings{Stack: "tomcat"}, []string{"stack: tomcat"}},
		{"stack back to the artifact's", Settings{Stack: "java"}, Settings{}, []string{"stack: from the artifact"}},
		{"java version", Settings{JavaVersion: "17"}, Settings{JavaVersion: "21"}, []string{"Java version: 21"}},
		{"java version back to the default", Settings{JavaVersion: "17"}, Settings{}, []string{"Java version: the node's default"}},
		{"back to a default", Settings{StopGrace: 7}, Settings{}, []string{"stop grace period: 30"}},
		{"single runner", Settings{}, Settings{SingleRunner: "nightly"}, []string{"single runner: nightly"}},
		{"single runner off", Settings{SingleRunner: "nightly"}, Settings{}, []string{"single runner: none"}},
		{"in order", Settings{}, Settings{Env: map[string]string{"A": "1"}, Command: "run", HoldTimeout: 4, WarmupStatus: "204"},
			[]string{"set A=1", "command: run", "warmup status: 204", "hold timeout: 4"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.now.Changes(tt.prev); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestMasked(t *testing.T) {
	s := Settings{Env: map[string]string{"A": "plain", "B": "hidden"}, Secrets: []string{"B"}}
	got := s.Masked()
	if want := map[string]string{"A": "plain", "B": SecretMask}; !reflect.DeepEqual(got.Env, want) {
		t.Errorf("got %v, want %v", got.Env, want)
	}
	if s.Env["B"] != "hidden" {
		t.Errorf("Masked changed the settings it was given: %v", s.Env)
	}
}

func TestParseStatusSet(t *testing.T) {
	set, err := ParseStatusSet("200-299, 302,404")
	if err != nil {
		t.Fatal(err)
	}
	for code, want := range map[int]bool{200: true, 250: true, 299: true, 300: false, 302: true, 404: true, 500: false} {
		if got := set.Contains(code); got != want {
			t.Errorf("Contains(%d) = %v, want %v", code, got, want)
		}
	}
	for _, bad := range []string{"", "abc", "300-200", "99", "600", "200-", "-"} {
		if _, err := ParseStatusSet(bad); err == nil {
			t.Errorf("ParseStatusSet(%q) accepted it", bad)
		}
	}
}

func TestValidateAppName(t *testing.T) {
	for name, ok := range map[string]bool{
		"promo": true, "a": true, "a-1": true, strings.Repeat("a", 63): true,
		"": false, "-a": false, "a-": false, "Promo": false, "a.b": false, "a_b": false, strings.Repeat("a", 64): false,
	} {
		if err := ValidateAppName(name); (err == nil) != ok {
			t.Errorf("ValidateAppName(%q) = %v, want ok=%v", name, err, ok)
		}
	}
}
