package settings

import (
	"errors"
	"testing"
)

// TestCheck: a change that leaves nothing different for the app is
// ErrUnchanged, saying why; one that changes anything is not; a refused
// one keeps Apply's error.
func TestCheck(t *testing.T) {
	base := Settings{Env: map[string]string{"A": "1", "S": "x"}, Secrets: []string{"S"}, Command: "run", DrainTimeout: 5}
	tests := []struct {
		name string
		c    Change
		want string // the whole error; "" for none
	}{
		{"unset of a missing key", Change{Unset: []string{"NOPE"}}, "nothing changed: NOPE is not set"},
		{"set to the same value", Change{Set: map[string]string{"A": "1"}}, "nothing changed: A already has that value"},
		{"a secret set to the same value, still secret", Change{Set: map[string]string{"S": "x"}, Secret: true}, "nothing changed: S already has that value"},
		{"the same command", Change{Command: ptr("run")}, "nothing changed: the startup command is that already"},
		{"an option to its value", Change{Options: map[string]any{"drain_timeout": 5}}, "nothing changed: drain timeout is 5s already"},
		{"an option to the value its default gives", Change{Options: map[string]any{"stop_grace": 30}}, "nothing changed: stop grace period is 30s already"},
		{"all at once", Change{Set: map[string]string{"A": "1"}, Unset: []string{"B", "C"}, Options: map[string]any{"access_log": false}},
			"nothing changed: A already has that value; B is not set; C is not set; access log is false already"},
		{"a secret made plain", Change{Set: map[string]string{"S": "x"}}, ""},
		{"a plain value made secret", Change{Set: map[string]string{"A": "1"}, Secret: true}, ""},
		{"one of two unsets", Change{Unset: []string{"NOPE", "A"}}, ""},
		{"a new value", Change{Set: map[string]string{"A": "2"}}, ""},
		{"back to the stack's command", Change{Command: ptr("")}, ""},
		{"an option", Change{Options: map[string]any{"drain_timeout": 0}}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.c.Check(base)
			if tt.want == "" {
				if err != nil {
					t.Errorf("got %v, want none", err)
				}
				return
			}
			if !errors.Is(err, ErrUnchanged) || err.Error() != tt.want {
				t.Errorf("got %v, want ErrUnchanged %q", err, tt.want)
			}
		})
	}
	if err := (Change{Options: map[string]any{"drain_timeout": -1}}).Check(base); !errors.Is(err, ErrInvalidSettings) {
		t.Errorf("a refused change: got %v, want ErrInvalidSettings", err)
	}
}

func TestScale(t *testing.T) {
	tests := []struct {
		name    string
		s       Settings
		n       int
		want    int   // the new count, when it changes
		wantErr error // else
	}{
		{"up", Settings{Instances: 2}, 3, 3, nil},
		{"down from the default", Settings{}, 2, 2, nil},
		{"the same", Settings{Instances: 2}, 2, 0, ErrUnchanged},
		{"the default, unset", Settings{}, 1, 0, ErrUnchanged},
		{"zero", Settings{}, 0, 0, ErrInvalidSettings},
		{"too many", Settings{}, MaxInstances + 1, 0, ErrInvalidSettings},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.s.Scale(tt.n)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) || got.Instances != tt.s.Instances {
					t.Errorf("got %d, %v; want %v and the count unchanged", got.Instances, err, tt.wantErr)
				}
				return
			}
			if err != nil || got.Instances != tt.want {
				t.Errorf("got %d, %v; want %d", got.Instances, err, tt.want)
			}
		})
	}
}
