// Package access holds an app's access restrictions — ordered allow and
// deny rules on client addresses — and finds a request's client address
// behind trusted proxies. The router applies the rules to the app's
// traffic, the API to the app's deploy endpoints; both take the client
// address from ClientIP.
package access

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
)

// Actions of a rule.
const (
	Allow = "allow"
	Deny  = "deny"
)

// Scopes: which requests a rule list guards.
const (
	// ScopeApp guards the app's own traffic, through the router.
	ScopeApp = "app"
	// ScopeDeploy guards the app's deploy endpoints on the API.
	ScopeDeploy = "deploy"
)

// Bounds of a rule's priority; lower numbers are matched first.
const (
	MinPriority = 1
	MaxPriority = 65000
	// MaxRules bounds the rules of one list.
	MaxRules = 512
)

// ErrInvalid marks a rule or a list that is refused.
var ErrInvalid = errors.New("invalid access rule")

// Rule allows or denies the client addresses in one network.
type Rule struct {
	Priority int    `json:"priority"`
	Action   string `json:"action"`
	// Network is a CIDR prefix in canonical form, like 10.0.0.0/8 or
	// 2001:db8::/32; a single address is stored as a /32 or /128.
	Network string `json:"network"`
	// Name is a note for people, like "office" or "build agents".
	Name string `json:"name,omitempty"`
}

// ParseRule checks a rule and puts its network in canonical form.
func ParseRule(priority int, action, network, name string) (Rule, error) {
	if priority < MinPriority || priority > MaxPriority {
		return Rule{}, fmt.Errorf("%w: priority %d is out of range: give %d to %d, lower first", ErrInvalid, priority, MinPriority, MaxPriority)
	}
	if action != Allow && action != Deny {
		return Rule{}, fmt.Errorf("%w: action %q: use allow or deny", ErrInvalid, action)
	}
	p, err := ParseNetwork(network)
	if err != nil {
		return Rule{}, err
	}
	if len(name) > 100 || strings.ContainsFunc(name, func(r rune) bool { return r < ' ' || r == 0x7f }) {
		return Rule{}, fmt.Errorf("%w: name %q: use at most 100 printable characters", ErrInvalid, name)
	}
	return Rule{Priority: priority, Action: action, Network: p.String(), Name: name}, nil
}

// ParseNetwork reads a CIDR prefix (10.0.0.0/8, 2001:db8::/32) or a single
// address. Host bits set in a prefix are refused, since 10.1.2.3/8 is more
// likely a mistake than a wish for 10.0.0.0/8.
func ParseNetwork(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil || a.Zone() != "" {
			return netip.Prefix{}, fmt.Errorf("%w: %q is not an IP address or a CIDR network like 10.0.0.0/8 or 2001:db8::/32", ErrInvalid, s)
		}
		a = a.Unmap()
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%w: %q is not a CIDR network like 10.0.0.0/8 or 2001:db8::/32", ErrInvalid, s)
	}
	if p.Addr().Is4In6() {
		if p.Bits() < 96 {
			return netip.Prefix{}, fmt.Errorf("%w: %q: write IPv4 networks in IPv4 form", ErrInvalid, s)
		}
		p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
	}
	if p.Masked() != p {
		return netip.Prefix{}, fmt.Errorf("%w: %q has host bits set; did you mean %s?", ErrInvalid, s, p.Masked())
	}
	return p, nil
}

// ParseNetworks reads a comma-separated list of networks.
func ParseNetworks(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.Split(s, ",") {
		if strings.TrimSpace(f) == "" {
			continue
		}
		p, err := ParseNetwork(f)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// Rules is an ordered list of rules, lowest priority number first.
type Rules []Rule

// Validate checks every rule and that no two share a priority, so the
// order is never a matter of chance.
func (rs Rules) Validate() error {
	if len(rs) > MaxRules {
		return fmt.Errorf("%w: %d rules, more than the limit of %d", ErrInvalid, len(rs), MaxRules)
	}
	seen := map[int]bool{}
	for _, r := range rs {
		if _, err := ParseRule(r.Priority, r.Action, r.Network, r.Name); err != nil {
			return err
		}
		if seen[r.Priority] {
			return fmt.Errorf("%w: two rules have priority %d; give each its own", ErrInvalid, r.Priority)
		}
		seen[r.Priority] = true
	}
	return nil
}

// Put returns the list with r added, replacing the rule of the same
// priority, in order.
func (rs Rules) Put(r Rule) Rules {
	out := slices.DeleteFunc(slices.Clone(rs), func(x Rule) bool { return x.Priority == r.Priority })
	out = append(out, r)
	slices.SortFunc(out, func(a, b Rule) int { return a.Priority - b.Priority })
	return out
}

// Remove returns the list without the rule of priority p, and whether
// there was one.
func (rs Rules) Remove(p int) (Rules, bool) {
	out := slices.DeleteFunc(slices.Clone(rs), func(x Rule) bool { return x.Priority == p })
	return out, len(out) != len(rs)
}

// DefaultAction is what applies to a client no rule matches: allow while
// there is no allow rule, deny once there is one (a list of allowed
// networks means "only these").
func (rs Rules) DefaultAction() string {
	for _, r := range rs {
		if r.Action == Allow {
			return Deny
		}
	}
	return Allow
}

// Matcher is a compiled rule list, safe for concurrent use.
type Matcher struct {
	rules []compiled
	deny  bool // the default action is deny
}

type compiled struct {
	net   netip.Prefix
	allow bool
}

// Compile returns a Matcher for a valid list (see Validate), or nil for an
// empty one, which allows everyone.
func (rs Rules) Compile() *Matcher {
	if len(rs) == 0 {
		return nil
	}
	sorted := slices.SortedFunc(slices.Values(rs), func(a, b Rule) int { return a.Priority - b.Priority })
	m := &Matcher{deny: rs.DefaultAction() == Deny}
	for _, r := range sorted {
		p, err := ParseNetwork(r.Network)
		if err != nil {
			continue // Validate refuses it before it is stored
		}
		m.rules = append(m.rules, compiled{net: p, allow: r.Action == Allow})
	}
	return m
}

// Allows reports whether client may pass: the first rule whose network
// holds it decides, else the default action. A nil Matcher allows all; an
// invalid address matches no rule.
func (m *Matcher) Allows(client netip.Addr) bool {
	if m == nil {
		return true
	}
	client = client.Unmap()
	for _, r := range m.rules {
		if r.net.Contains(client) {
			return r.allow
		}
	}
	return !m.deny
}

// Policy is an app's access restrictions: a rule list for its traffic, one
// for its deploy endpoints, and whether plain HTTP is redirected to HTTPS.
// It is not part of the app's releases: a change applies at once.
type Policy struct {
	App       Rules `json:"app"`
	Deploy    Rules `json:"deploy"`
	HTTPSOnly bool  `json:"https_only"`
}

// Validate checks both lists.
func (p Policy) Validate() error {
	if err := p.App.Validate(); err != nil {
		return fmt.Errorf("app rules: %w", err)
	}
	if err := p.Deploy.Validate(); err != nil {
		return fmt.Errorf("deploy rules: %w", err)
	}
	return nil
}

// Scope returns a pointer to the list of scope, nil for an unknown scope.
func (p *Policy) Scope(scope string) *Rules {
	switch scope {
	case ScopeApp:
		return &p.App
	case ScopeDeploy:
		return &p.Deploy
	}
	return nil
}

// ClientIP finds a request's client. The peer (remoteAddr) is the client
// unless it is a trusted proxy; then X-Forwarded-For (all its header lines,
// in order) is walked from the right past trusted hops, and the first
// untrusted hop is the client. A malformed hop stops the walk: the last
// trusted hop, which passed it on, counts as the client. So a client can
// put anything in X-Forwarded-For and gain nothing: only hops added by
// trusted proxies are believed.
func ClientIP(remoteAddr string, xff []string, trusted []netip.Prefix) netip.Addr {
	peer := parseHost(remoteAddr)
	if len(trusted) == 0 || !isTrusted(peer, trusted) {
		return peer
	}
	client := peer
	for i := len(xff) - 1; i >= 0; i-- {
		hops := strings.Split(xff[i], ",")
		for j := len(hops) - 1; j >= 0; j-- {
			hop := parseHost(strings.TrimSpace(hops[j]))
			if !hop.IsValid() {
				return client
			}
			client = hop
			if !isTrusted(hop, trusted) {
				return client
			}
		}
	}
	return client
}

// IsTrusted reports whether the peer at remoteAddr is a trusted proxy.
func IsTrusted(remoteAddr string, trusted []netip.Prefix) bool {
	return len(trusted) > 0 && isTrusted(parseHost(remoteAddr), trusted)
}

func isTrusted(a netip.Addr, trusted []netip.Prefix) bool {
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// parseHost reads an address with or without a port ("1.2.3.4:5",
// "[::1]:5", "::1", "1.2.3.4"); the zero Addr when it is none.
func parseHost(s string) netip.Addr {
	if host, _, err := net.SplitHostPort(s); err == nil {
		s = host
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap().WithZone("")
}
