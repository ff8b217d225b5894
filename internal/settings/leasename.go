package settings

import (
	"errors"
	"fmt"
	"regexp"
)

// MaxLeaseNameBytes bounds the name of a lease (see the lease package).
const MaxLeaseNameBytes = 128

var leaseName = regexp.MustCompile(`^[a-z0-9]([a-z0-9._-]{0,126}[a-z0-9])?$`)

// ErrInvalidLeaseName is wrapped by ValidateLeaseName's errors.
var ErrInvalidLeaseName = errors.New("invalid lease name")

// ValidateLeaseName checks the name of a lease: it is a key in the store,
// a path segment of the lease endpoint and, for the single runner, a file
// name, so it is kept to what is safe in all three.
func ValidateLeaseName(name string) error {
	if !leaseName.MatchString(name) {
		shown := name
		if len(shown) > 64 {
			shown = shown[:64] + "…"
		}
		return fmt.Errorf("%w %q: use 1 to %d lowercase letters, digits, '.', '_' and '-', starting and ending with a letter or digit",
			ErrInvalidLeaseName, shown, MaxLeaseNameBytes)
	}
	return nil
}
