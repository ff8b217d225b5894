package settings

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// ErrUnchanged says that a change leaves an app's settings as they are,
// so it makes no release and no deployment. It is not a failure: the
// caller says so, and changes nothing.
var ErrUnchanged = errors.New("nothing changed")

// Check returns Apply's error if c is refused, an error wrapping
// ErrUnchanged that says why if c changes nothing of s that the app
// would see ("nothing changed: A is not set"), and nil otherwise.
//
// "Nothing the app would see" is what a release records: Changes lists
// nothing. So an option set to the value its default gives it already is
// no change, though the stored form would differ (0 for "the default"
// against the number): taking that live would start a release that
// changes nothing.
func (c Change) Check(s Settings) error {
	ns, err := c.Apply(s)
	if err != nil {
		return err
	}
	if len(ns.Changes(s)) > 0 {
		return nil
	}
	return fmt.Errorf("%w: %s", ErrUnchanged, strings.Join(c.why(s), "; "))
}

// why says, part by part, why c changes nothing of s.
func (c Change) why(s Settings) []string {
	var out []string
	for _, k := range slices.Sorted(maps.Keys(c.Set)) {
		out = append(out, k+" already has that value")
	}
	for _, k := range c.Unset {
		out = append(out, k+" is not set")
	}
	switch {
	case c.Command == nil:
	case *c.Command == "":
		out = append(out, "the startup command is the stack's already")
	default:
		out = append(out, "the startup command is that already")
	}
	eff := s.WithDefaults()
	for _, o := range options {
		if _, ok := c.Options[o.Key]; ok {
			out = append(out, fmt.Sprintf("%s is %s already", o.Name, o.Format(eff)))
		}
	}
	return out
}

// Scale returns s with n instances. It fails with ErrInvalidSettings if n
// is out of bounds, and with ErrUnchanged if s has n instances already
// (an unset count counts as its default).
func (s Settings) Scale(n int) (Settings, error) {
	if n < 1 || n > MaxInstances {
		return s, invalid("instances must be between 1 and %d, not %d", MaxInstances, n)
	}
	if s.WithDefaults().Instances == n {
		return s, fmt.Errorf("%w: the instance count is %d already", ErrUnchanged, n)
	}
	s.Instances = n
	return s, nil
}
