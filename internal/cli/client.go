package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// client talks to the daemon's API.
type client struct {
	base  string
	token string
	http  *http.Client
}

func (g *globals) client() *client {
	return &client{base: strings.TrimRight(g.url, "/"), token: g.token, http: &http.Client{Transport: g.rt}}
}

// apiError is an error answer from the daemon.
type apiError struct {
	Status  int
	Message string
}

func (e *apiError) Error() string { return e.Message }

// do sends a request and decodes a JSON answer into out (if not nil).
func (c *client) do(ctx context.Context, method, path string, body io.Reader, out any) error {
	resp, err := c.send(ctx, method, path, body, -1)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("reading the daemon's answer: %w", err)
	}
	return nil
}

// send sends a request; an answer of 400 or more becomes an *apiError.
// size is the body's length, -1 if unknown.
func (c *client) send(ctx context.Context, method, path string, body io.Reader, size int64) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return nil, err
	}
	if size >= 0 {
		req.ContentLength = size
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if body != nil && req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("cannot reach the slipway daemon at %s (is 'slipway server' running? set --url or SLIPWAY_URL): %w", c.base, err)
	}
	if resp.StatusCode < 400 {
		return resp, nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var e struct{ Error string }
	if json.Unmarshal(b, &e) != nil || e.Error == "" {
		e.Error = strings.TrimSpace(string(b))
	}
	return nil, &apiError{Status: resp.StatusCode, Message: e.Error}
}

// stream reads NDJSON lines from path, calling fn with each raw line until
// fn returns false or the stream ends.
func (c *client) stream(ctx context.Context, path string, fn func([]byte) (bool, error)) error {
	resp, err := c.send(ctx, http.MethodGet, path, nil, -1)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		more, err := fn(sc.Bytes())
		if err != nil || !more {
			return err
		}
	}
	if err := sc.Err(); err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("the stream from the daemon broke off: %w", err)
	}
	return nil
}
