package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/slipway-dev/slipway/internal/api"
)

// client talks to the daemon's API.
type client struct {
	base  string
	token string
	// tokenFrom says where token came from, so that an error that refuses
	// it says which to fix (see globals.resolve); with no token, where
	// none was found.
	tokenFrom string
	http      *http.Client
}

func (g *globals) client() *client {
	return &client{base: strings.TrimRight(g.url, "/"), token: g.token, tokenFrom: g.tokenFrom, http: &http.Client{Transport: g.rt}}
}

// apiError is an error answer from the daemon.
type apiError struct {
	Status  int
	Message string
	// Running is the deployment that runs, on a 409 that a running
	// deployment caused.
	Running *api.Deployment
}

func (e *apiError) Error() string { return e.Message }

// Media types of the API's answers.
const (
	mediaJSON   = "application/json"
	mediaNDJSON = "application/x-ndjson"
)

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
	return c.decode(resp, out)
}

// decode reads a JSON answer into out.
func (c *client) decode(resp *http.Response, out any) error {
	if err := c.expect(resp, mediaJSON); err != nil {
		return err
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("reading the daemon's answer: %w", err)
	}
	return nil
}

// expect fails unless the answer is of the media type the API gives it:
// anything else comes from something that is not the API.
func (c *client) expect(resp *http.Response, media string) error {
	if is(resp, media) {
		return nil
	}
	return c.notAPI(resp)
}

func is(resp *http.Response, media string) bool {
	t, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	return t == media
}

// notAPI is the error for an answer that the API would not give, such as
// the router's HTML error page when --url names the router.
func (c *client) notAPI(resp *http.Response) error {
	what := resp.Header.Get("Content-Type")
	if what == "" {
		what = "no content type"
	}
	return fmt.Errorf("%s answered %s with %s, not as the Slipway API answers: is --url (or SLIPWAY_URL) the API's address? "+
		"The API listens on the server's --api-listen (default %s); the router, on --http-listen (default :8080), serves the apps",
		c.base, resp.Status, what, DefaultURL)
}

// send sends a request; an answer of 400 or more becomes an error (an
// *apiError if the API gave it). size is the body's length, -1 if unknown.
func (c *client) send(ctx context.Context, method, path string, body io.Reader, size int64) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return nil, err
	}
	if size >= 0 {
		req.ContentLength = size
	}
	if body != nil && req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", mediaJSON)
	}
	return c.sendRequest(req)
}

// sendRequest is send for a request made by the caller.
func (c *client) sendRequest(req *http.Request) (*http.Response, error) {
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("cannot reach the slipway daemon at %s (is 'slipway server' running? set --url or SLIPWAY_URL): %w", c.base, err)
	}
	if resp.StatusCode < 400 {
		return resp, nil
	}
	defer resp.Body.Close()
	if !is(resp, mediaJSON) {
		return nil, c.notAPI(resp)
	}
	var e api.Error
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&e); err != nil || e.Error == "" {
		return nil, c.notAPI(resp)
	}
	return nil, &apiError{Status: resp.StatusCode, Message: c.authContext(resp.StatusCode, e.Error), Running: e.Deployment}
}

// authContext adds to a refusal of the token where the token came from,
// so that the user knows which one to fix: the daemon cannot know.
func (c *client) authContext(status int, msg string) string {
	switch {
	case status == http.StatusUnauthorized && c.token == "":
		return c.tokenFrom
	case status == http.StatusUnauthorized:
		return fmt.Sprintf("the token from %s was refused: %s", c.tokenFrom, msg)
	case status == http.StatusForbidden:
		return fmt.Sprintf("%s (the token came from %s)", msg, c.tokenFrom)
	}
	return msg
}

// stream reads NDJSON lines from path, calling fn with each raw line until
// fn returns false or the stream ends.
func (c *client) stream(ctx context.Context, path string, fn func([]byte) (bool, error)) error {
	resp, err := c.send(ctx, http.MethodGet, path, nil, -1)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := c.expect(resp, mediaNDJSON); err != nil {
		return err
	}
	return readLines(resp.Body, fn)
}

// readLines calls fn with each line of r until fn returns false or r ends.
func readLines(r io.Reader, fn func([]byte) (bool, error)) error {
	sc := bufio.NewScanner(r)
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
