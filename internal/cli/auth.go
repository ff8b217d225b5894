package cli

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/slipway-dev/slipway/internal/atomicfile"
	"github.com/slipway-dev/slipway/internal/daemon"
)

// userConfig is what `slipway login` keeps in the user's config directory
// (mode 0600): a token per daemon URL, and the URL logged in to last,
// used when neither --url nor SLIPWAY_URL says otherwise.
type userConfig struct {
	URL     string            `json:"url,omitempty"`
	Servers map[string]server `json:"servers"`
}

type server struct {
	Token string `json:"token"`
}

func configPath() (string, error) {
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("finding your config directory: %w", err)
	}
	return filepath.Join(dir, "slipway", "config.json"), nil
}

func loadConfig() (userConfig, error) {
	c := userConfig{Servers: map[string]server{}}
	path, err := configPath()
	if err != nil {
		return c, err
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return c, err
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return c, fmt.Errorf("%s is not valid JSON (%v); fix or remove it, then log in again", path, err)
	}
	if c.Servers == nil {
		c.Servers = map[string]server{}
	}
	return c, nil
}

func saveConfig(c userConfig) error {
	path, err := configPath()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	b, _ := json.MarshalIndent(c, "", "  ")
	return atomicfile.WriteFile(path, b, 0o600)
}

// resolve fills in the URL and token the flags left open: the URL from
// the last login; the token from the login of that URL, else from
// admin.token in the local daemon's data directory (SLIPWAY_DATA_DIR, or
// the default), for the operator on the server machine. It notes where
// the token came from (tokenFrom), for the errors that refuse it.
// urlFrom and tokenFrom say where --url and --token were set: "--url",
// "SLIPWAY_URL", or "" when they were not.
func (g *globals) resolve(urlFrom, tokenFrom string) error {
	cfg, err := loadConfig()
	if err != nil {
		return err
	}
	if urlFrom == "" && cfg.URL != "" {
		g.url, urlFrom = cfg.URL, "the last 'slipway login'"
	}
	if urlFrom == "" {
		urlFrom = "the default --url"
	}
	if err := checkURL(g.url, urlFrom); err != nil {
		return err
	}
	g.url = strings.TrimRight(g.url, "/")
	if g.token != "" {
		g.tokenFrom = tokenFrom
		return nil
	}
	path, _ := configPath()
	if s, ok := cfg.Servers[g.url]; ok {
		g.token, g.tokenFrom = s.Token, fmt.Sprintf("the login for %s (kept in %s; 'slipway logout' forgets it)", g.url, path)
		return nil
	}
	dataDir := os.Getenv("SLIPWAY_DATA_DIR")
	if dataDir == "" {
		dataDir = daemon.DefaultDataDir()
	}
	file := "the local daemon's data directory (none without a home directory; set SLIPWAY_DATA_DIR)"
	if dataDir != "" {
		file = daemon.AdminTokenFile(dataDir)
		if b, err := os.ReadFile(file); err == nil {
			g.token, g.tokenFrom = strings.TrimSpace(string(b)), "the local daemon's admin.token ("+file+")"
			return nil
		}
	}
	g.tokenFrom = fmt.Sprintf("no token was sent: neither --token nor SLIPWAY_TOKEN is set, there is no login for %s "+
		"('slipway login --url %s'), and no admin token in %s", g.url, g.url, file)
	return nil
}

// checkURL refuses a daemon URL that is not an absolute http or https URL,
// saying what to type; from says where it was given.
func checkURL(raw, from string) error {
	u, err := url.Parse(raw)
	if err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" && u.RawQuery == "" && u.Fragment == "" {
		return nil
	}
	example := DefaultURL
	if !strings.Contains(raw, "://") && raw != "" {
		example = "http://" + raw
	}
	return fmt.Errorf("%q (from %s) is not the URL of a Slipway API: give its scheme and address, like %s", raw, from, example)
}

// transport trusts --ca-cert as well as the system's roots.
func (g *globals) transport() (http.RoundTripper, error) {
	if g.caCert == "" {
		return http.DefaultTransport, nil
	}
	pem, err := os.ReadFile(g.caCert)
	if err != nil {
		return nil, fmt.Errorf("--ca-cert: %w", err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("--ca-cert %s holds no PEM certificate", g.caCert)
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig = &tls.Config{RootCAs: pool}
	return t, nil
}
