package settings

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// oldChange is Change as it was before the table of options: a field per
// option. The JSON of Change must stay what it made.
type oldChange struct {
	Set             map[string]string `json:"set,omitempty"`
	Unset           []string          `json:"unset,omitempty"`
	Secret          bool              `json:"secret,omitempty"`
	Command         *string           `json:"command,omitempty"`
	WarmupPath      *string           `json:"warmup_path,omitempty"`
	WarmupStatus    *string           `json:"warmup_status,omitempty"`
	StartTimeLimit  *int              `json:"start_time_limit,omitempty"`
	DrainTimeout    *int              `json:"drain_timeout,omitempty"`
	StopGrace       *int              `json:"stop_grace,omitempty"`
	HealthPath      *string           `json:"health_path,omitempty"`
	HealthInterval  *int              `json:"health_interval,omitempty"`
	HealthTimeout   *int              `json:"health_timeout,omitempty"`
	HealthThreshold *int              `json:"health_threshold,omitempty"`
	HoldTimeout     *int              `json:"hold_timeout,omitempty"`
	AccessLog       *bool             `json:"access_log,omitempty"`
}

func ptr[T any](v T) *T { return &v }

func TestChangeJSON(t *testing.T) {
	tests := []struct {
		name string
		c    Change
		old  oldChange
		want string // json.Marshal(c); map keys come out sorted
	}{
		{"empty", Change{}, oldChange{}, `{}`},
		{"env", Change{Set: map[string]string{"A": "1"}, Unset: []string{"B"}, Secret: true},
			oldChange{Set: map[string]string{"A": "1"}, Unset: []string{"B"}, Secret: true},
			`{"secret":true,"set":{"A":"1"},"unset":["B"]}`},
		{"command back to the default", Change{Command: ptr("")}, oldChange{Command: ptr("")}, `{"command":""}`},
		{"every option", Change{Command: ptr("run"), Options: map[string]any{
			"warmup_path": "/ready", "warmup_status": "204", "start_time_limit": 60, "drain_timeout": 0, "stop_grace": 7,
			"health_path": "", "health_interval": 2, "health_timeout": 1, "health_threshold": 9, "hold_timeout": 4, "access_log": false}},
			oldChange{Command: ptr("run"), WarmupPath: ptr("/ready"), WarmupStatus: ptr("204"), StartTimeLimit: ptr(60), DrainTimeout: ptr(0),
				StopGrace: ptr(7), HealthPath: ptr(""), HealthInterval: ptr(2), HealthTimeout: ptr(1), HealthThreshold: ptr(9), HoldTimeout: ptr(4), AccessLog: ptr(false)},
			`{"access_log":false,"command":"run","drain_timeout":0,"health_interval":2,"health_path":"","health_threshold":9,"health_timeout":1,` +
				`"hold_timeout":4,"start_time_limit":60,"stop_grace":7,"warmup_path":"/ready","warmup_status":"204"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := json.Marshal(tt.c)
			if err != nil {
				t.Fatal(err)
			}
			if got := string(b); got != tt.want {
				t.Errorf("Marshal: got %s, want %s", got, tt.want)
			}
			var old oldChange // what the old decoder makes of the new JSON
			dec := json.NewDecoder(bytes.NewReader(b))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&old); err != nil || !reflect.DeepEqual(old, tt.old) {
				t.Errorf("the old Change reads %s as %+v (%v), want %+v", b, old, err, tt.old)
			}
			oldJSON, _ := json.Marshal(tt.old) // and the new decoder, of the old JSON
			var got Change
			if err := json.Unmarshal(oldJSON, &got); err != nil || !reflect.DeepEqual(got, tt.c) {
				t.Errorf("Unmarshal(%s): got %+v (%v), want %+v", oldJSON, got, err, tt.c)
			}
		})
	}
}

func TestChangeUnmarshal(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want Change
		err  string // in the error; "" for none
	}{
		{"null is nothing", `null`, Change{}, ""},
		{"null leaves a field as it is", `{"command":null,"drain_timeout":null,"set":null}`, Change{}, ""},
		{"an unknown key", `{"sett":{}}`, Change{}, `json: unknown field "sett"`},
		{"keys are matched exactly", `{"Drain_Timeout":5}`, Change{}, "unknown field"},
		{"an int option given a string", `{"drain_timeout":"5"}`, Change{}, `field "drain_timeout"`},
		{"an int option given a fraction", `{"drain_timeout":1.5}`, Change{}, `field "drain_timeout"`},
		{"a bool option given a number", `{"access_log":1}`, Change{}, `field "access_log"`},
		{"set given a list", `{"set":["A=1"]}`, Change{}, `field "set"`},
		{"not an object", `[]`, Change{}, "cannot unmarshal"},
		{"the last of a repeated key", `{"stop_grace":1,"stop_grace":2}`, Change{Options: map[string]any{"stop_grace": 2}}, ""},
		{"secrets among the variables set", `{"secrets":["K"],"set":{"A":"1","K":"k"}}`, Change{Set: map[string]string{"A": "1", "K": "k"}, Secrets: []string{"K"}}, ""},
		{"secrets given a string", `{"secrets":"K"}`, Change{}, `field "secrets"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got Change
			err := json.Unmarshal([]byte(tt.in), &got)
			switch {
			case tt.err == "" && err != nil:
				t.Fatalf("got %v, want no error", err)
			case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
				t.Fatalf("got %v, want an error saying %q", err, tt.err)
			}
			if err == nil && !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestChangeEmpty(t *testing.T) {
	tests := []struct {
		name string
		c    Change
		want bool
	}{
		{"zero", Change{}, true},
		{"empty map and list", Change{Set: map[string]string{}, Unset: []string{}, Options: map[string]any{}}, true},
		{"secret alone", Change{Secret: true}, true},
		{"set", Change{Set: map[string]string{"A": ""}}, false},
		{"unset", Change{Unset: []string{"A"}}, false},
		{"command", Change{Command: ptr("")}, false},
		{"an option to its default", Change{Options: map[string]any{"hold_timeout": 0}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.c.Empty(); got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestApply(t *testing.T) {
	base := Settings{Env: map[string]string{"A": "1", "S": "x"}, Secrets: []string{"S"}, Instances: 2, DrainTimeout: 5}
	tests := []struct {
		name string
		c    Change
		want Settings
	}{
		{"set and unset", Change{Set: map[string]string{"B": "2"}, Unset: []string{"A"}},
			Settings{Env: map[string]string{"B": "2", "S": "x"}, Secrets: []string{"S"}, Instances: 2, DrainTimeout: 5}},
		{"set as secret", Change{Set: map[string]string{"A": "9"}, Secret: true},
			Settings{Env: map[string]string{"A": "9", "S": "x"}, Secrets: []string{"A", "S"}, Instances: 2, DrainTimeout: 5}},
		{"a secret and an ordinary variable at once", Change{Set: map[string]string{"A": "9", "K": "k", "S": "y"}, Secrets: []string{"K"}},
			Settings{Env: map[string]string{"A": "9", "K": "k", "S": "y"}, Secrets: []string{"K"}, Instances: 2, DrainTimeout: 5}},
		{"a secret set again plainly", Change{Set: map[string]string{"S": "y"}},
			Settings{Env: map[string]string{"A": "1", "S": "y"}, Secrets: []string{}, Instances: 2, DrainTimeout: 5}},
		{"unsetting a secret forgets it", Change{Unset: []string{"S"}},
			Settings{Env: map[string]string{"A": "1"}, Secrets: []string{}, Instances: 2, DrainTimeout: 5}},
		{"command", Change{Command: ptr("run")},
			Settings{Env: base.Env, Secrets: base.Secrets, Command: "run", Instances: 2, DrainTimeout: 5}},
		{"options", Change{Options: map[string]any{"drain_timeout": 0, "access_log": true, "warmup_path": "/ready"}},
			Settings{Env: base.Env, Secrets: base.Secrets, Instances: 2, AccessLog: true, WarmupPath: "/ready"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.c.Apply(base)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

// TestApplyAllOrNothing: a change refused in any part leaves the settings
// as they were, and the settings given are never modified.
func TestApplyAllOrNothing(t *testing.T) {
	base := Settings{Env: map[string]string{"A": "1", "S": "x"}, Secrets: []string{"S"}, StopGrace: 10}
	big := strings.Repeat("x", MaxEnvValueBytes)
	many := envOf(MaxEnvVars-1, (MaxEnvVars-1)*8) // with A and S, one too many
	tests := []struct {
		name string
		c    Change
		want string // in the error
	}{
		{"empty", Change{}, "the change is empty"},
		{"a good variable and a bad option", Change{Set: map[string]string{"B": "2"}, Unset: []string{"S"},
			Options: map[string]any{"stop_grace": 99999, "access_log": true}}, "stop grace period must be between"},
		{"a bad name among good ones", Change{Set: map[string]string{"B": "2", "1C": "3"}}, "may not start with a digit"},
		{"one variable too many", Change{Set: many}, "1001 environment variables, at most 1000"},
		{"too much in all", Change{Set: map[string]string{"V1": big, "V2": big, "V3": big, "V4": big, "V5": big, "V6": big, "V7": big, "V8": big}},
			"bytes in all, at most 262144"},
		{"a value with NUL", Change{Set: map[string]string{"B": "\x00"}, Command: ptr("run")}, "NUL"},
		{"an oversize command", Change{Command: ptr(strings.Repeat("x", MaxCommandBytes+1))}, "the command is 16385 bytes"},
		{"an unknown option", Change{Set: map[string]string{"B": "2"}, Options: map[string]any{"drain": 5}}, `there is no option "drain"`},
		{"an option of the wrong type", Change{Options: map[string]any{"drain_timeout": "5"}}, "option drain_timeout takes a value of type int, not string"},
		{"a bad path", Change{Options: map[string]any{"warmup_path": "/a\nb"}}, "control character"},
		{"a secret the change does not set", Change{Set: map[string]string{"B": "2"}, Secrets: []string{"S"}}, "secrets names S, which the change does not set"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := base.Clone()
			got, err := tt.c.Apply(base)
			if err == nil || !errors.Is(err, ErrInvalidSettings) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %.200v, want an ErrInvalidSettings saying %q", err, tt.want)
			}
			if !reflect.DeepEqual(got, before) {
				t.Errorf("a refused change returned %.200v, want the settings as they were", got)
			}
			if !reflect.DeepEqual(base, before) {
				t.Errorf("Apply modified the settings it was given: %.200v", base)
			}
		})
	}
}
