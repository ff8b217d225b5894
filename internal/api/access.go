package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/slipway-dev/slipway/internal/access"
)

func (s *Server) showPolicy(w http.ResponseWriter, r *http.Request) error {
	p, err := s.Policy(r.Context(), r.PathValue("app"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, p)
	return nil
}

// Policy is app's access policy, as GET …/access answers.
func (s *Server) Policy(ctx context.Context, app string) (Policy, error) {
	if _, err := s.opts.Store.App(ctx, app); err != nil {
		return Policy{}, err
	}
	p, err := s.opts.Store.Policy(ctx, app)
	if err != nil {
		return Policy{}, err
	}
	return s.policy(app, p), nil
}

// policy is the app's policy as the API shows it, with a warning when
// https-only is on and nothing here serves HTTPS: no HTTPS listener, and
// no trusted proxy that could end TLS in front of the router and say so
// in X-Forwarded-Proto. Every plain request is then redirected to where
// nothing answers.
func (s *Server) policy(app string, p access.Policy) Policy {
	out := policyOf(p)
	if p.HTTPSOnly && !s.opts.HTTPSListener && len(s.opts.TrustedProxies) == 0 {
		out.Warning = fmt.Sprintf("https-only is on, but this daemon has no HTTPS listener (--https-listen) and no trusted proxy "+
			"(--trusted-proxies) to end TLS in front of it: plain HTTP requests are redirected to HTTPS, which nothing here serves, "+
			"so app %s is unreachable; turn it off with 'slipway access https-only -a %s off', or start the server with --https-listen", app, app)
	}
	return out
}

// AddRuleRequest is the body of POST …/access/rules.
type AddRuleRequest struct {
	// Scope is "app" (the default) or "deploy".
	Scope    string `json:"scope"`
	Priority int    `json:"priority"`
	Action   string `json:"action"`
	Network  string `json:"network"`
	Name     string `json:"name"`
}

func (s *Server) addRule(w http.ResponseWriter, r *http.Request) error {
	var req AddRuleRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	return s.writePolicy(w)(s.AddRule(r.Context(), r.PathValue("app"), req))
}

// AddRule adds an access rule to app's policy, or replaces the one of its
// priority, and applies the policy at once.
func (s *Server) AddRule(ctx context.Context, app string, req AddRuleRequest) (Policy, error) {
	rule, err := access.ParseRule(req.Priority, req.Action, req.Network, req.Name)
	if err != nil {
		return Policy{}, errorf(http.StatusBadRequest, "%v", err)
	}
	return s.UpdatePolicy(ctx, app, func(p *access.Policy) error {
		list, err := scopeOf(p, req.Scope)
		if err != nil {
			return err
		}
		*list = list.Put(rule)
		return nil
	})
}

func (s *Server) removeRule(w http.ResponseWriter, r *http.Request) error {
	prio, err := strconv.Atoi(r.PathValue("priority"))
	if err != nil {
		return errorf(http.StatusBadRequest, "priority %q is not a number", r.PathValue("priority"))
	}
	return s.writePolicy(w)(s.RemoveRule(r.Context(), r.PathValue("app"), r.PathValue("scope"), prio))
}

// RemoveRule removes the rule of a priority from a scope of app's policy
// and applies the policy at once.
func (s *Server) RemoveRule(ctx context.Context, app, scope string, prio int) (Policy, error) {
	return s.UpdatePolicy(ctx, app, func(p *access.Policy) error {
		list, err := scopeOf(p, scope)
		if err != nil {
			return err
		}
		var ok bool
		if *list, ok = list.Remove(prio); !ok {
			return errorf(http.StatusNotFound, "there is no %s rule of priority %d; see 'slipway access list -a %s'", scope, prio, app)
		}
		return nil
	})
}

// writePolicy returns a function that writes a policy or returns the
// error it comes with.
func (s *Server) writePolicy(w http.ResponseWriter) func(Policy, error) error {
	return func(p Policy, err error) error {
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, p)
		return nil
	}
}

// PolicyChange is the body of PATCH …/access.
type PolicyChange struct {
	HTTPSOnly *bool `json:"https_only"`
}

func (s *Server) changePolicy(w http.ResponseWriter, r *http.Request) error {
	var req PolicyChange
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	return s.writePolicy(w)(s.UpdatePolicy(r.Context(), r.PathValue("app"), func(p *access.Policy) error {
		if req.HTTPSOnly != nil {
			p.HTTPSOnly = *req.HTTPSOnly
		}
		return nil
	}))
}

func scopeOf(p *access.Policy, scope string) (*access.Rules, error) {
	if scope == "" {
		scope = access.ScopeApp
	}
	if list := p.Scope(scope); list != nil {
		return list, nil
	}
	return nil, errorf(http.StatusBadRequest, "scope %q: use app (the app's traffic) or deploy (its deploy endpoints)", scope)
}

// UpdatePolicy changes app's restrictions with fn and applies them at
// once.
func (s *Server) UpdatePolicy(ctx context.Context, app string, fn func(*access.Policy) error) (Policy, error) {
	if _, err := s.opts.Store.App(ctx, app); err != nil {
		return Policy{}, err
	}
	p, err := s.opts.Store.UpdatePolicy(ctx, app, fn)
	if errors.Is(err, access.ErrInvalid) {
		return Policy{}, errorf(http.StatusBadRequest, "%v", err)
	}
	if err != nil {
		return Policy{}, err
	}
	s.opts.Deploys.SetPolicy(app, p)
	return s.policy(app, p), nil
}
