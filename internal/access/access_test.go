package access

import (
	"errors"
	"net/netip"
	"testing"
)

func mustRules(t *testing.T, specs ...[3]string) Rules {
	t.Helper()
	var rs Rules
	for i, s := range specs {
		r, err := ParseRule((i+1)*100, s[0], s[1], s[2])
		if err != nil {
			t.Fatal(err)
		}
		rs = rs.Put(r)
	}
	return rs
}

func TestParseRule(t *testing.T) {
	for _, c := range []struct {
		name, action, network string
		priority              int
		want                  string // the canonical network, or "" for an error
	}{
		{"v4 prefix", Allow, "10.0.0.0/8", 100, "10.0.0.0/8"},
		{"v6 prefix", Deny, "2001:db8::/32", 100, "2001:db8::/32"},
		{"v4 address", Allow, "192.0.2.7", 100, "192.0.2.7/32"},
		{"v6 address", Allow, "2001:db8::1", 100, "2001:db8::1/128"},
		{"v4 in v6", Allow, "::ffff:10.0.0.0/104", 100, "10.0.0.0/8"},
		{"mapped address", Allow, "::ffff:192.0.2.7", 100, "192.0.2.7/32"},
		{"spaces", Allow, " 10.0.0.0/8 ", 100, "10.0.0.0/8"},
		{"host bits", Allow, "10.1.2.3/8", 100, ""},
		{"garbage", Allow, "ten/8", 100, ""},
		{"zone", Allow, "fe80::1%eth0", 100, ""},
		{"bad action", "permit", "10.0.0.0/8", 100, ""},
		{"priority zero", Allow, "10.0.0.0/8", 0, ""},
		{"priority too high", Allow, "10.0.0.0/8", MaxPriority + 1, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			r, err := ParseRule(c.priority, c.action, c.network, "")
			switch {
			case c.want == "" && err == nil:
				t.Errorf("accepted as %+v", r)
			case c.want == "" && !errors.Is(err, ErrInvalid):
				t.Errorf("error %v is not ErrInvalid", err)
			case c.want != "" && err != nil:
				t.Errorf("refused: %v", err)
			case c.want != "" && r.Network != c.want:
				t.Errorf("network %q, want %q", r.Network, c.want)
			}
		})
	}
}

func TestMatcher(t *testing.T) {
	office := mustRules(t, [3]string{Deny, "10.9.0.0/16", "lab"}, [3]string{Allow, "10.0.0.0/8", "office"}, [3]string{Allow, "2001:db8::/32", "office v6"})
	blocklist := mustRules(t, [3]string{Deny, "203.0.113.0/24", "abuse"}, [3]string{Deny, "2001:db8:bad::/48", ""})
	for _, c := range []struct {
		name   string
		rules  Rules
		client string
		want   bool
	}{
		{"no rules allow all", nil, "198.51.100.1", true},
		{"allowed network", office, "10.1.2.3", true},
		{"earlier deny wins", office, "10.9.1.1", false},
		{"allow rules deny the rest", office, "198.51.100.1", false},
		{"v6 allowed", office, "2001:db8::42", true},
		{"v6 elsewhere", office, "2001:dead::1", false},
		{"mapped v4 matches v4 rule", office, "::ffff:10.1.2.3", true},
		{"deny-only list allows the rest", blocklist, "198.51.100.1", true},
		{"deny-only list denies its own", blocklist, "203.0.113.9", false},
		{"v6 denied", blocklist, "2001:db8:bad::1", false},
		{"v6 not denied", blocklist, "2001:db8:900d::1", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := c.rules.Compile().Allows(netip.MustParseAddr(c.client)); got != c.want {
				t.Errorf("Allows(%s) = %v, want %v", c.client, got, c.want)
			}
		})
	}
	if (Rules{}).Compile().Allows(netip.Addr{}) != true || office.Compile().Allows(netip.Addr{}) {
		t.Errorf("an invalid address must match no rule and get the default action")
	}
}

func TestRulesValidateAndEdit(t *testing.T) {
	rs := mustRules(t, [3]string{Allow, "10.0.0.0/8", ""})
	rs = rs.Put(Rule{Priority: 50, Action: Deny, Network: "10.9.0.0/16"})
	if rs[0].Priority != 50 || rs[1].Priority != 100 {
		t.Errorf("Put keeps no order: %+v", rs)
	}
	rs = rs.Put(Rule{Priority: 100, Action: Deny, Network: "10.0.0.0/8"})
	if len(rs) != 2 || rs[1].Action != Deny {
		t.Errorf("Put of a taken priority does not replace: %+v", rs)
	}
	if err := append(rs, Rule{Priority: 50, Action: Allow, Network: "192.0.2.0/24"}).Validate(); err == nil {
		t.Errorf("two rules of one priority are accepted")
	}
	rs, ok := rs.Remove(50)
	if !ok || len(rs) != 1 {
		t.Errorf("Remove(50) = %+v, %v", rs, ok)
	}
	if _, ok := rs.Remove(7); ok {
		t.Errorf("Remove of a missing priority says it removed one")
	}
}

func TestClientIP(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	for _, c := range []struct {
		name    string
		peer    string
		xff     []string
		trusted []netip.Prefix
		want    string
	}{
		{"no proxies: the peer", "192.0.2.1:5000", nil, nil, "192.0.2.1"},
		{"no proxies: spoofed header ignored", "192.0.2.1:5000", []string{"10.1.1.1"}, nil, "192.0.2.1"},
		{"untrusted peer: spoofed header ignored", "192.0.2.1:5000", []string{"10.1.1.1"}, trusted, "192.0.2.1"},
		{"trusted peer: the hop before it", "127.0.0.1:5000", []string{"198.51.100.7"}, trusted, "198.51.100.7"},
		{"walks past trusted hops", "127.0.0.1:5000", []string{"198.51.100.7, 10.2.2.2"}, trusted, "198.51.100.7"},
		{"a spoofed left part does not count", "127.0.0.1:5000", []string{"10.5.5.5, 203.0.113.66, 10.2.2.2"}, trusted, "203.0.113.66"},
		{"several header lines", "127.0.0.1:5000", []string{"203.0.113.66", "10.2.2.2"}, trusted, "203.0.113.66"},
		{"v6 client through v6 proxy", "[::1]:5000", []string{"2001:db8::7"}, trusted, "2001:db8::7"},
		{"v6 client with port in the header", "127.0.0.1:1", []string{"[2001:db8::7]:443"}, trusted, "2001:db8::7"},
		{"only trusted hops: the leftmost", "127.0.0.1:5000", []string{"10.1.1.1, 10.2.2.2"}, trusted, "10.1.1.1"},
		{"malformed hop: the proxy that passed it", "127.0.0.1:5000", []string{"nonsense, 10.2.2.2"}, trusted, "10.2.2.2"},
		{"trusted peer without a header", "127.0.0.1:5000", nil, trusted, "127.0.0.1"},
		{"mapped peer", "[::ffff:192.0.2.1]:80", nil, nil, "192.0.2.1"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := ClientIP(c.peer, c.xff, c.trusted); got != netip.MustParseAddr(c.want) {
				t.Errorf("ClientIP = %v, want %s", got, c.want)
			}
		})
	}
}
