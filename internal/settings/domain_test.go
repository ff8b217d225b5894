package settings

import (
	"errors"
	"strings"
	"testing"
)

// TestParseDomain: what a custom domain may be, and what it becomes.
func TestParseDomain(t *testing.T) {
	label63 := strings.Repeat("a", 63)
	long := strings.Repeat(label63+".", 4)[:MaxDomainLength-4] + ".com" // 253 characters
	for _, tt := range []struct {
		name, in, want string
		why            string // a part of the error, when refused
	}{
		{"plain", "shop.example.com", "shop.example.com", ""},
		{"upper case and a trailing dot", "Shop.Example.COM.", "shop.example.com", ""},
		{"wildcard", "*.shop.example.com", "*.shop.example.com", ""},
		{"wildcard of a two-label name", "*.example.com", "*.example.com", ""},
		{"digits and hyphens", "1-2.a0.example.com", "1-2.a0.example.com", ""},
		{"punycode", "xn--bcher-kva.example.com", "xn--bcher-kva.example.com", ""},
		{"253 characters", long, long, ""},
		{"63-character label", label63 + ".com", label63 + ".com", ""},

		{"empty", "", "", "it is empty"},
		{"a dot", ".", "", "it is empty"},
		{"single label", "localhost", "", "a single label"},
		{"wildcard of a TLD", "*.com", "", "two or more labels after '*.'"},
		{"bare star", "*", "", "whole first label"},
		{"star inside", "a.*.example.com", "", "whole first label"},
		{"star in a label", "*a.example.com", "", "whole first label"},
		{"two stars", "*.*.example.com", "", "whole first label"},
		{"254 characters", "a" + long, "", "254 characters long"},
		{"far too long", strings.Repeat("a", 10000), "", "longer than DNS allows"},
		{"64-character label", label63 + "a.com", "", "not a DNS label"},
		{"empty label", "a..example.com", "", `label "" is not a DNS label`},
		{"leading dot", ".example.com", "", `label ""`},
		{"two trailing dots", "example.com..", "", `label ""`},
		{"leading hyphen", "-a.example.com", "", "not a DNS label"},
		{"trailing hyphen", "a-.example.com", "", "not a DNS label"},
		{"underscore", "_dmarc.example.com", "", "not a DNS label"},
		{"port", "example.com:8080", "", "not a DNS label"},
		{"path", "example.com/x", "", "not a DNS label"},
		{"space", "exa mple.com", "", "not a DNS label"},
		{"control", "exa\x00mple.com", "", "not a DNS label"},
		{"IPv4 address", "192.0.2.1", "", "all digits"},
		{"IPv6 address", "[2001:db8::1]", "", "a single label"},
		{"bad punycode", "xn--zz.example.com", "", "not valid punycode"},
		{"unicode", "Bücher.example.com", "", "xn--bcher-kva.example.com"},
		{"kelvin sign: refused, not mapped in silence", "\u212a.example.com", "", "ASCII (punycode) form, k.example.com"},
		{"upper-case unicode", "ÄPP.example.com", "", "xn--pp-uia.example.com"},
		{"invalid UTF-8", "\xff.example.com", "", "characters other than"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseDomain(tt.in)
			if tt.why == "" {
				if err != nil || got != tt.want {
					t.Fatalf("ParseDomain(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
				}
				return
			}
			if err == nil || !errors.Is(err, ErrInvalidDomain) || !strings.Contains(err.Error(), tt.why) {
				t.Fatalf("ParseDomain(%q) = %q, %v; want an ErrInvalidDomain saying %q", tt.in, got, err, tt.why)
			}
			if !strings.Contains(err.Error(), "like shop.example.com") && !strings.Contains(err.Error(), "punycode") {
				t.Errorf("the error does not say what a valid name looks like: %v", err)
			}
		})
	}
}

// FuzzParseDomain: what ParseDomain accepts is a name it accepts again
// unchanged, within DNS's bounds, in lower-case ASCII, with '*' only as a
// whole first label.
func FuzzParseDomain(f *testing.F) {
	for _, s := range []string{"shop.example.com", "*.Shop.example.com.", "xn--bcher-kva.example.com", "a..b", "*", "1.2.3.4", "Bücher.de"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		n, err := ParseDomain(in)
		if err != nil {
			if !errors.Is(err, ErrInvalidDomain) {
				t.Fatalf("ParseDomain(%q): %v does not wrap ErrInvalidDomain", in, err)
			}
			return
		}
		if again, err := ParseDomain(n); err != nil || again != n {
			t.Fatalf("ParseDomain(%q) = %q, but ParseDomain(%q) = %q, %v", in, n, n, again, err)
		}
		if len(n) > MaxDomainLength || n != strings.ToLower(n) || strings.HasSuffix(n, ".") {
			t.Fatalf("ParseDomain(%q) = %q: too long, not lower case, or with a trailing dot", in, n)
		}
		rest, _ := strings.CutPrefix(n, "*.")
		if strings.ContainsFunc(rest, func(r rune) bool { return !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '.') }) {
			t.Fatalf("ParseDomain(%q) = %q has a character a DNS name has not", in, n)
		}
	})
}
