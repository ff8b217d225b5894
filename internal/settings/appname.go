package settings

import (
	"errors"
	"fmt"
	"regexp"
)

var appName = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// ErrInvalidName is wrapped by ValidateAppName's errors.
var ErrInvalidName = errors.New("invalid app name")

// ValidateAppName checks that name is a DNS label: it becomes a host name.
func ValidateAppName(name string) error {
	if !appName.MatchString(name) {
		return fmt.Errorf("%w %q: use 1 to 63 lowercase letters, digits and '-', starting and ending with a letter or digit", ErrInvalidName, name)
	}
	return nil
}
