package store

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// FuzzSettingsChange feeds a settings change as the API reads it (JSON)
// and as the CLI reads it (KEY=VALUE lines). A change is refused, or what
// it makes is valid: every name is a valid one, the accepted statuses
// parse, and no secret's value shows once masked.
func FuzzSettingsChange(f *testing.F) {
	f.Add([]byte(`{"set":{"A":"1","B.c":"x=y"},"secret":true}`), "A=1\nB=\n_x.y=z=w")
	f.Add([]byte(`{"warmup_status":"200-399,404","start_time_limit":30}`), "1A=2")
	f.Add([]byte(`{"unset":["A"],"command":"java -jar app.jar"}`), "PORT=1")
	f.Add([]byte(`{"health_threshold":-1}`), "NOEQUALS")
	f.Fuzz(func(t *testing.T, body []byte, pairs string) {
		var c Change
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		if dec.Decode(&c) == nil {
			checkApplied(t, c)
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
	masked := s.Masked()
	for _, k := range s.Secrets {
		if got := masked.Env[k]; got != SecretMask {
			t.Fatalf("secret %s shows %q once masked, want %s", k, got, SecretMask)
		}
	}
}
