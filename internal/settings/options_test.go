package settings

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// TestOptionsTable checks the table against the Settings type: each option
// is a distinct field whose JSON key is the option's Key, and the keys and
// flags are unique and do not clash with Change's other keys.
func TestOptionsTable(t *testing.T) {
	keys, flags, fields := map[string]bool{}, map[string]bool{}, map[any]bool{}
	var shared Settings // one value, so that two options of one field show
	for _, k := range []string{keySet, keyUnset, keySecret, keyCommand} {
		keys[k] = true
	}
	for _, o := range Options() {
		if keys[o.Key] || flags[o.Flag] {
			t.Errorf("option %s: its key or flag is taken", o.Key)
		}
		keys[o.Key], flags[o.Flag] = true, true
		if want := strings.ReplaceAll(o.Key, "_", "-"); o.Flag != want {
			t.Errorf("option %s: flag %q, want %q", o.Key, o.Flag, want)
		}
		if p := o.Field(&shared); fields[p] {
			t.Errorf("option %s: its field is another option's", o.Key)
		} else {
			fields[p] = true
		}
		var s Settings
		if got := jsonKeysOf(t, s); len(got) != 0 {
			t.Errorf("option %s: zero settings marshal to %v, want {}", o.Key, got)
		}
		setNonZero(t, o, &s)
		if got, want := jsonKeysOf(t, s), []string{o.Key}; !reflect.DeepEqual(got, want) {
			t.Errorf("option %s: settings with only it set marshal to the keys %v, want %v", o.Key, got, want)
		}
		if o.IsSet(Settings{}) || !o.IsSet(s) {
			t.Errorf("option %s: IsSet is wrong", o.Key)
		}
	}
}

// TestEveryFieldIsAnOption: a field of Settings is an option of the table,
// or one of the few settings with rules of their own.
func TestEveryFieldIsAnOption(t *testing.T) {
	own := map[string]bool{"env": true, "secrets": true, "command": true, "instances": true}
	typ := reflect.TypeFor[Settings]()
	for i := range typ.NumField() {
		key, _, _ := strings.Cut(typ.Field(i).Tag.Get("json"), ",")
		if _, ok := lookup(key); !ok && !own[key] {
			t.Errorf("field %s (%q) is not in the table of options", typ.Field(i).Name, key)
		}
	}
}

func setNonZero(t *testing.T, o Option, s *Settings) {
	t.Helper()
	switch p := o.Field(s).(type) {
	case *int:
		*p = 1
	case *string:
		*p = "/x"
	case *bool:
		*p = true
	default:
		t.Fatalf("option %s: a field of type %T", o.Key, p)
	}
}

func jsonKeysOf(t *testing.T, s Settings) []string {
	t.Helper()
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	return keys
}

// TestOptionUsage pins the flags' help: the default and the bound come
// from the table.
func TestOptionUsage(t *testing.T) {
	tests := map[string]string{
		"warmup_path":      "the path requested until an instance is ready (default /)",
		"warmup_status":    "the statuses that count as ready, like 200-399 or 200,204 (default 200-399)",
		"start_time_limit": "seconds an instance may take to become ready (default 230, at most 1800)",
		"stop_grace":       "seconds between SIGTERM and SIGKILL (default 30, at most 3600)",
		"health_path":      "the path checked while an instance serves (default: the warmup path)",
		"health_threshold": "failed checks in a row before an instance is replaced (default 3, at most 3600)",
		"access_log":       "write a line per request to the app's log (--access-log=false turns it off)",
		"java_version":     "the Java feature release to run on, like 17 or 21: a JDK the node has (default: the node's default, the java on the daemon's PATH)",
		"single_runner":    "a lease NAME the platform holds for one instance of the live release, which finds the file $SLIPWAY_LEASE_DIR/NAME (default: none)",
	}
	for key, want := range tests {
		o, ok := lookup(key)
		if !ok {
			t.Fatalf("no option %s", key)
		}
		if got := o.Usage(); got != want {
			t.Errorf("%s: got %q, want %q", key, got, want)
		}
	}
}

func TestOptionFormat(t *testing.T) {
	e := Settings{}.WithDefaults()
	tests := map[string]string{
		"warmup_path":      "/",
		"warmup_status":    "200-399",
		"start_time_limit": "230s",
		"drain_timeout":    "30s",
		"stop_grace":       "30s",
		"health_path":      "/",
		"health_interval":  "10s",
		"health_timeout":   "5s",
		"health_threshold": "3",
		"hold_timeout":     "10s",
		"access_log":       "false",
		"stack":            "from the artifact",
		"java_version":     "the node's default",
		"placement":        "every node",
		"single_runner":    "none",
	}
	if len(tests) != len(Options()) {
		t.Errorf("%d options tested, want all %d", len(tests), len(Options()))
	}
	for key, want := range tests {
		o, _ := lookup(key)
		if got := o.Format(e); got != want {
			t.Errorf("%s: got %q, want %q", key, got, want)
		}
	}
}

func TestPlacement(t *testing.T) {
	labels := map[string]string{"zone": "west", "disk": "ssd"}
	for p, want := range map[string]bool{"": true, "zone=west": true, "zone=west,disk=ssd": true, "zone=east": false, "gpu=yes": false} {
		if got := Places(p, labels); got != want {
			t.Errorf("Places(%q) = %v, want %v", p, got, want)
		}
	}
	for _, bad := range []string{"zone", "=west", "zone=west,", "zone=we st"} {
		if err := (Settings{Placement: bad}).Validate(); !errors.Is(err, ErrInvalidSettings) {
			t.Errorf("placement %q: err %v, want ErrInvalidSettings", bad, err)
		}
	}
}
