package settings

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
)

// Change is one change to an app's settings, however many keys it touches.
// A nil field is left as it is.
//
// In JSON the options sit beside the other keys, under their Key:
// {"set": {"A": "1"}, "drain_timeout": 10, "access_log": true}.
type Change struct {
	Set   map[string]string
	Unset []string
	// Secret marks the values in Set as secrets; setting a variable without
	// it makes the variable an ordinary one again.
	Secret bool
	// Secrets names the variables of Set that are secrets when Secret is
	// false, so that one change can set ordinary variables and secrets
	// together (the dashboard's table does); each must be in Set.
	Secrets []string
	// Command sets the startup command; "" goes back to the stack default.
	Command *string
	// Options holds new values of options by their Key, each of its field's
	// type: int, string or bool. An option not in it is left as it is; 0
	// and "" go back to the default.
	Options map[string]any
}

// The keys of Change's JSON that are not options.
const (
	keySet     = "set"
	keyUnset   = "unset"
	keySecret  = "secret"
	keySecrets = "secrets"
	keyCommand = "command"
)

// Empty reports whether the change changes nothing at all.
func (c Change) Empty() bool {
	return len(c.Set) == 0 && len(c.Unset) == 0 && c.Command == nil && len(c.Options) == 0
}

// Apply returns s with the change made, validated as a whole; if the
// change is refused, it returns s as it was (s itself is never modified).
func (c Change) Apply(s Settings) (Settings, error) {
	if c.Empty() {
		return s, invalid("the change is empty; give KEY=VALUE pairs, names to unset, or options")
	}
	for _, k := range c.Secrets {
		if _, ok := c.Set[k]; !ok {
			return s, invalid("secrets names %s, which the change does not set; a secret is marked as it is set, with its value", k)
		}
	}
	ns := s.Clone()
	c.applyEnv(&ns)
	if c.Command != nil {
		ns.Command = *c.Command
	}
	for _, k := range slices.Sorted(maps.Keys(c.Options)) {
		o, ok := lookup(k)
		if !ok {
			return s, invalid("there is no option %q", k)
		}
		if v := c.Options[k]; !o.value.set(&ns, v) {
			return s, invalid("option %s takes a value of type %s, not %T", k, o.value.typeName(), v)
		}
	}
	if err := ns.Validate(); err != nil {
		return s, err
	}
	return ns, nil
}

func (c Change) applyEnv(s *Settings) {
	if len(c.Set) > 0 && s.Env == nil {
		s.Env = make(map[string]string)
	}
	for k, v := range c.Set {
		s.Env[k] = v
		s.Secrets = slices.DeleteFunc(s.Secrets, func(x string) bool { return x == k })
		if c.Secret || slices.Contains(c.Secrets, k) {
			s.Secrets = append(s.Secrets, k)
		}
	}
	for _, k := range c.Unset {
		delete(s.Env, k)
		s.Secrets = slices.DeleteFunc(s.Secrets, func(x string) bool { return x == k })
	}
	slices.Sort(s.Secrets)
}

// MarshalJSON writes the options beside the other keys, as the API reads
// them; empty fields are left out.
func (c Change) MarshalJSON() ([]byte, error) {
	m := make(map[string]any, len(c.Options)+4)
	maps.Copy(m, c.Options)
	if len(c.Set) > 0 {
		m[keySet] = c.Set
	}
	if len(c.Unset) > 0 {
		m[keyUnset] = c.Unset
	}
	if c.Secret {
		m[keySecret] = true
	}
	if len(c.Secrets) > 0 {
		m[keySecrets] = c.Secrets
	}
	if c.Command != nil {
		m[keyCommand] = *c.Command
	}
	return json.Marshal(m)
}

// UnmarshalJSON reads a change as MarshalJSON writes it. It refuses an
// unknown key, as a decoder with DisallowUnknownFields would (the API's
// does, and it cannot see into this method), and a null value leaves its
// field as it is. Keys are matched exactly, not regardless of case.
func (c *Change) UnmarshalJSON(b []byte) error {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	*c = Change{}
	for _, k := range slices.Sorted(maps.Keys(raw)) {
		if string(raw[k]) == "null" {
			continue
		}
		if err := c.decodeKey(k, raw[k]); err != nil {
			return err
		}
	}
	return nil
}

func (c *Change) decodeKey(k string, raw json.RawMessage) error {
	var err error
	switch k {
	case keySet:
		err = json.Unmarshal(raw, &c.Set)
	case keyUnset:
		err = json.Unmarshal(raw, &c.Unset)
	case keySecret:
		err = json.Unmarshal(raw, &c.Secret)
	case keySecrets:
		err = json.Unmarshal(raw, &c.Secrets)
	case keyCommand:
		c.Command = new(string)
		err = json.Unmarshal(raw, c.Command)
	default:
		return c.decodeOption(k, raw)
	}
	if err != nil {
		return fmt.Errorf("json: field %q: %w", k, err)
	}
	return nil
}

func (c *Change) decodeOption(k string, raw json.RawMessage) error {
	o, ok := lookup(k)
	if !ok {
		return fmt.Errorf("json: unknown field %q", k)
	}
	v, err := o.value.decode(raw)
	if err != nil {
		return fmt.Errorf("json: field %q: %w", k, err)
	}
	if c.Options == nil {
		c.Options = make(map[string]any)
	}
	c.Options[k] = v
	return nil
}
