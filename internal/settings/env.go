package settings

import (
	"maps"
	"regexp"
	"slices"
	"strings"
)

var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.]*$`)

// ValidateEnvName checks an environment variable's name; its errors wrap
// ErrInvalidSettings.
func ValidateEnvName(k string) error {
	if len(k) > MaxEnvNameBytes {
		return invalid("environment variable name %.40q… is %d bytes, at most %d are allowed; choose a shorter name", k, len(k), MaxEnvNameBytes)
	}
	if !envName.MatchString(k) {
		return invalid("environment variable name %q may hold only letters, digits, '_' and '.', and may not start with a digit", k)
	}
	if reservedEnv(k) {
		return invalid("environment variable %s is set by the platform (the port and address the app must listen on, and SLIPWAY_*); choose another name", k)
	}
	return nil
}

func reservedEnv(k string) bool {
	switch k {
	case "PORT", "SERVER_PORT", "SERVER_ADDRESS":
		return true
	}
	return strings.HasPrefix(k, "SLIPWAY_")
}

// validateEnv checks names, values and the bounds of MaxEnvVars and its
// neighbours, in the order of the names so that the error is the same each
// time.
func validateEnv(env map[string]string) error {
	if len(env) > MaxEnvVars {
		return invalid("%d environment variables, at most %d are allowed; unset some, or combine related ones into one", len(env), MaxEnvVars)
	}
	total := 0
	for _, k := range slices.Sorted(maps.Keys(env)) {
		if err := ValidateEnvName(k); err != nil {
			return err
		}
		v := env[k]
		if len(v) > MaxEnvValueBytes {
			return invalid("the value of %s is %d bytes, at most %d are allowed (32 KiB); put larger data in a file the app reads", k, len(v), MaxEnvValueBytes)
		}
		if strings.IndexByte(v, 0) >= 0 {
			return invalid("the value of %s contains a NUL byte, which a process's environment cannot carry; remove it", k)
		}
		total += len(k) + len(v)
	}
	if total > MaxEnvBytes {
		return invalid("the environment variables take %d bytes in all, at most %d are allowed (256 KiB); unset some, or move large values into a file the app reads", total, MaxEnvBytes)
	}
	return nil
}

// ParseEnvPairs reads KEY=VALUE pairs, as the CLI takes them; the value
// may hold "=" and be empty. Names are checked as ValidateEnvName does;
// the bounds on the whole environment are left to Validate.
func ParseEnvPairs(pairs []string) (map[string]string, error) {
	if len(pairs) == 0 {
		return nil, nil
	}
	env := make(map[string]string, len(pairs))
	for _, p := range pairs {
		k, v, ok := strings.Cut(p, "=")
		if !ok {
			return nil, invalid("%q is not KEY=VALUE", p)
		}
		if err := ValidateEnvName(k); err != nil {
			return nil, err
		}
		env[k] = v
	}
	return env, nil
}
