package settings

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// FuzzSettingsChange feeds a settings change as the API reads it (JSON)
// and as the CLI reads it (KEY=VALUE lines). A change is refused, or what
// it makes is valid: every name is a valid one, the accepted statuses
// parse, the bounds hold, and no secret's value shows once masked. A
// change read from JSON and written again means the same.
func FuzzSettingsChange(f *testing.F) {
	f.Add([]byte(`{"set":{"A":"1","B.c":"x=y"},"secret":true}`), "A=1\nB=\n_x.y=z=w")
	f.Add([]byte(`{"warmup_status":"200-399,404","start_time_limit":30}`), "1A=2")
	f.Add([]byte(`{"unset":["A"],"command":"java -jar app.jar"}`), "PORT=1")
	f.Add([]byte(`{"health_threshold":-1}`), "NOEQUALS")
	f.Add([]byte(`{"warmup_path":"/a\r\nb","health_path":"/%zz","access_log":true}`), "A=\x00")
	f.Add([]byte(`{"set":{"A":"\u0000"},"command":"a\u0000b","drain_timeout":null}`), "B=1\nB=2")
	f.Add([]byte(`{"stop_grace":3600,"hold_timeout":3601,"Stop_Grace":1}`), "SERVER_PORT=1")
	f.Fuzz(func(t *testing.T, body []byte, pairs string) {
		var c Change
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		if dec.Decode(&c) == nil {
			checkApplied(t, c)
			checkRoundTrip(t, c)
		}
		env, err := ParseEnvPairs(strings.Split(pairs, "\n"))
		if err != nil {
			return
		}
		for k := range env {
			if ValidateEnvName(k) != nil {
				t.Fatalf("ParseEnvPairs accepted the name %q", k)
			}
		}
		checkApplied(t, Change{Set: env, Secret: true})
	})
}

func checkApplied(t *testing.T, c Change) {
	t.Helper()
	s, err := c.Apply(Settings{})
	if err != nil {
		return
	}
	if err := s.Validate(); err != nil {
		t.Fatalf("Apply accepted settings that Validate refuses: %v", err)
	}
	for k := range s.Env {
		if ValidateEnvName(k) != nil {
			t.Fatalf("the change set the invalid name %q", k)
		}
	}
	if _, err := ParseStatusSet(s.WithDefaults().WarmupStatus); err != nil {
		t.Fatalf("accepted statuses %q do not parse: %v", s.WarmupStatus, err)
	}
	if err := validateEnv(s.Env); err != nil || len(s.Command) > MaxCommandBytes || strings.ContainsRune(s.Command, 0) {
		t.Fatalf("Apply accepted settings out of bounds (%v)", err)
	}
	masked := s.Masked()
	for _, k := range s.Secrets {
		if got := masked.Env[k]; got != SecretMask {
			t.Fatalf("secret %s shows %q once masked, want %s", k, got, SecretMask)
		}
	}
}

// checkRoundTrip: c written as JSON and read again makes the same settings,
// or is refused the same way.
func checkRoundTrip(t *testing.T, c Change) {
	t.Helper()
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatalf("Marshal(%+v): %v", c, err)
	}
	var again Change
	if err := json.Unmarshal(b, &again); err != nil {
		t.Fatalf("Unmarshal(%s): %v", b, err)
	}
	s1, err1 := c.Apply(Settings{})
	s2, err2 := again.Apply(Settings{})
	if (err1 == nil) != (err2 == nil) || !reflect.DeepEqual(s1, s2) {
		t.Fatalf("%s applies as %+v (%v), but %+v (%v) before it was written", b, s2, err2, s1, err1)
	}
}
