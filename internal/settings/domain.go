package settings

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/idna"
)

// ErrInvalidDomain is wrapped by ParseDomain's errors.
var ErrInvalidDomain = errors.New("invalid domain name")

// Bounds of an app's custom domains.
const (
	// MaxDomains is how many custom domains one app may have.
	MaxDomains = 100
	// MaxDomainLength is DNS's bound on a name, without its trailing dot
	// (RFC 1035 2.3.4: 255 octets on the wire).
	MaxDomainLength = 253
)

// domainHelp says what a valid custom domain looks like.
const domainHelp = "a custom domain is a lowercase DNS name of two or more labels, like shop.example.com: " +
	"each label 1 to 63 letters, digits and '-', not starting or ending with '-', the last not all digits, " +
	"at most 253 characters in all; '*.' may lead it as a whole label, like *.shop.example.com, " +
	"for the names one label under it"

var dnsLabel = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// ParseDomain checks a custom domain name and returns it as it is stored
// and routed: in lower case, without a trailing dot. A wildcard,
// "*.shop.example.com", stands for the names exactly one label under
// shop.example.com, as in TLS. A name in another script than Latin
// letters must be given in its ASCII (punycode) form, which the error
// spells out: the router compares Host headers, which carry that form.
func ParseDomain(name string) (string, error) {
	if len(name) > MaxDomainLength+1 {
		return "", fmt.Errorf("%w: a name of %d characters is longer than DNS allows; %s", ErrInvalidDomain, len(name), domainHelp)
	}
	for i := 0; i < len(name); i++ {
		if name[i] >= 0x80 {
			return "", nonASCII(name)
		}
	}
	n := strings.ToLower(strings.TrimSuffix(name, "."))
	rest, wild := strings.CutPrefix(n, "*.")
	labels := strings.Split(rest, ".")
	switch {
	case n == "":
		return "", invalidDomain(name, "it is empty")
	case strings.Contains(rest, "*"):
		return "", invalidDomain(name, "'*' stands only as the whole first label")
	case len(labels) < 2 && wild:
		return "", invalidDomain(name, "a wildcard needs two or more labels after '*.'")
	case len(labels) < 2:
		return "", invalidDomain(name, "it has a single label")
	case len(n) > MaxDomainLength:
		return "", invalidDomain(name, fmt.Sprintf("it is %d characters long", len(n)))
	}
	for _, l := range labels {
		if !dnsLabel.MatchString(l) {
			return "", invalidDomain(name, fmt.Sprintf("label %q is not a DNS label", l))
		}
		if strings.HasPrefix(l, "xn--") {
			if _, err := idna.Registration.ToUnicode(l); err != nil {
				return "", invalidDomain(name, fmt.Sprintf("label %q is not valid punycode", l))
			}
		}
	}
	if strings.Trim(labels[len(labels)-1], "0123456789") == "" {
		return "", invalidDomain(name, "its last label is all digits (an IP address is no domain name)")
	}
	return n, nil
}

func invalidDomain(name, why string) error {
	return fmt.Errorf("%w %q: %s; %s", ErrInvalidDomain, name, why, domainHelp)
}

// nonASCII refuses an internationalized name, giving its ASCII form when
// it has a valid one.
func nonASCII(name string) error {
	if utf8.ValidString(name) {
		if a, err := idna.Lookup.ToASCII(strings.TrimSuffix(name, ".")); err == nil {
			if _, err := ParseDomain(a); err == nil {
				return fmt.Errorf("%w %q: give it in its ASCII (punycode) form, %s, as DNS and the Host header carry it", ErrInvalidDomain, name, a)
			}
		}
	}
	return invalidDomain(name, "it has characters other than letters, digits, '-' and '.'")
}

// IsWildcard reports whether a custom domain (as ParseDomain returns it)
// is a wildcard, like *.shop.example.com.
func IsWildcard(domain string) bool { return strings.HasPrefix(domain, "*.") }
