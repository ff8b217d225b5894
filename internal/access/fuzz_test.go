package access

import (
	"net/netip"
	"strings"
	"testing"
)

// FuzzParseRule: a network is refused or put in a canonical form that
// parses back to itself and holds its own first address.
func FuzzParseRule(f *testing.F) {
	for _, s := range []string{"10.0.0.0/8", "2001:db8::/32", "192.0.2.7", "::ffff:10.0.0.0/104", "10.1.2.3/8", "fe80::1%eth0", "", "/", "1.2.3.4/33"} {
		f.Add(100, "allow", s)
	}
	f.Fuzz(func(t *testing.T, priority int, action, network string) {
		r, err := ParseRule(priority, action, network, "")
		if err != nil {
			return
		}
		again, err := ParseRule(priority, action, r.Network, "")
		if err != nil || again != r {
			t.Fatalf("canonical form %q does not parse back: %+v, %v", r.Network, again, err)
		}
		p := netip.MustParsePrefix(r.Network)
		if !(Rules{r}).Compile().Allows(p.Addr()) == (r.Action == Allow) {
			t.Fatalf("rule %+v does not decide for its own address %s", r, p.Addr())
		}
	})
}

// FuzzClientIP: whatever the header says, an untrusted peer is the client,
// and a trusted peer's client is the peer or a hop of the header.
func FuzzClientIP(f *testing.F) {
	f.Add("127.0.0.1:80", "198.51.100.7, 10.2.2.2")
	f.Add("192.0.2.1:80", "10.1.1.1")
	f.Add("[::1]:80", "[2001:db8::7]:443, nonsense")
	trusted := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	f.Fuzz(func(t *testing.T, peer, xff string) {
		got := ClientIP(peer, []string{xff}, trusted)
		p := parseHost(peer)
		if !isTrusted(p, trusted) {
			if got != p {
				t.Fatalf("untrusted peer %q: client %v, want the peer", peer, got)
			}
			return
		}
		if got == p {
			return
		}
		for _, hop := range strings.Split(xff, ",") {
			if parseHost(strings.TrimSpace(hop)) == got {
				return
			}
		}
		t.Fatalf("client %v is neither the peer %q nor a hop of %q", got, peer, xff)
	})
}
