package store

import (
	"errors"
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
		{"too many instances", Settings{Instances: 33}, "between 1 and 32"},
		{"negative instances", Settings{Instances: -1}, "between 1 and 32"},
		{"warmup path without slash", Settings{WarmupPath: "health"}, "must start with '/'"},
		{"bad status", Settings{WarmupStatus: "2xx"}, "accepted statuses"},
		{"start limit too long", Settings{StartTimeLimit: 1801}, "between 1 and 1800"},
		{"negative drain", Settings{DrainTimeout: -5}, "drain timeout"},
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
