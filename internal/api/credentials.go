package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/slipway-dev/slipway/internal/store"
)

func now() time.Time { return time.Now().UTC() }

// NewCredential is the answer to creating a credential: the token is shown
// this once.
type NewCredential struct {
	Credential
	Token string `json:"token"`
	// SCMURL is the app's App Service deploy endpoints (its SCM site) as
	// this client reaches them, for a publish profile; AppURL where the
	// app is served. Empty where there are none.
	SCMURL string `json:"scm_url,omitempty"`
	AppURL string `json:"app_url,omitempty"`
}

// CreateCredentialRequest is the body of POST …/credentials.
type CreateCredentialRequest struct {
	Name   string `json:"name"`
	Author string `json:"author"`
}

func (s *Server) createCredential(w http.ResponseWriter, r *http.Request) error {
	var req CreateCredentialRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	c, err := s.CreateCredential(r, r.PathValue("app"), req)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, c)
	return nil
}

// CreateCredential makes a deploy credential of app; its token is in the
// answer only. r is the request that asks for it.
func (s *Server) CreateCredential(r *http.Request, app string, req CreateCredentialRequest) (NewCredential, error) {
	if _, err := s.opts.Store.App(r.Context(), app); err != nil {
		return NewCredential{}, err
	}
	if len(req.Name) > 100 {
		return NewCredential{}, errorf(http.StatusBadRequest, "name is %d characters long; keep it to 100", len(req.Name))
	}
	for {
		b := make([]byte, 6)
		rand.Read(b)
		c := store.Credential{ID: hex.EncodeToString(b), App: app, Name: req.Name, Author: req.Author, Created: now()}
		token, hash := NewToken(c.ID)
		c.Hash = hash
		err := s.opts.Store.CreateCredential(r.Context(), c)
		if errors.Is(err, store.ErrExists) {
			continue // 48 random bits met another: draw again
		}
		if err != nil {
			return NewCredential{}, err
		}
		answer := NewCredential{Credential: credentialOf(c), Token: token}
		if s.opts.SCM != nil {
			answer.SCMURL, answer.AppURL = s.opts.SCM.URL(r, app), s.appURL(app)
		}
		return answer, nil
	}
}

func (s *Server) listCredentials(w http.ResponseWriter, r *http.Request) error {
	out, err := s.Credentials(r.Context(), r.PathValue("app"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// Credentials lists app's deploy credentials, without their tokens.
func (s *Server) Credentials(ctx context.Context, app string) ([]Credential, error) {
	if _, err := s.opts.Store.App(ctx, app); err != nil {
		return nil, err
	}
	creds, err := s.opts.Store.Credentials(ctx, app)
	if err != nil {
		return nil, err
	}
	out := make([]Credential, 0, len(creds))
	for _, c := range creds {
		out = append(out, credentialOf(c))
	}
	return out, nil
}

func (s *Server) revokeCredential(w http.ResponseWriter, r *http.Request) error {
	if err := s.RevokeCredential(r.Context(), r.PathValue("app"), r.PathValue("credential")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// RevokeCredential revokes app's credential id: its token stops working
// at once.
func (s *Server) RevokeCredential(ctx context.Context, app, id string) error {
	c, err := s.opts.Store.Credential(ctx, id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && c.App != app) {
		return &store.NotFoundError{Kind: "credential", App: app, ID: id} // another app's is none of this one's
	}
	if err != nil {
		return err
	}
	return s.opts.Store.DeleteCredential(ctx, id)
}

// appURL is where a publish profile says app is served: its first https
// URL, else its first.
func (s *Server) appURL(app string) string {
	urls := s.opts.Listeners.urls(s.opts.Deploys.Hosts(app))
	for _, u := range urls {
		if strings.HasPrefix(u, "https://") {
			return u
		}
	}
	if len(urls) == 0 {
		return ""
	}
	return urls[0]
}
