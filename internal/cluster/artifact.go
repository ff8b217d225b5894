package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
)

// artifactPrefix is where a node's peer link serves its artifacts, by
// digest, for the nodes that lack one.
const artifactPrefix = "/slipway/artifacts/"

// Artifacts is the node's artifact store, as the peer link needs it.
type Artifacts interface {
	Open(digest string) (*os.File, int64, error)
	Import(digest string, r io.Reader, size int64) error
}

// SetArtifacts gives the peer link the node's artifacts.
func (c *Cluster) SetArtifacts(a Artifacts) { c.arts.Store(&a) }

func (c *Cluster) serveArtifact(w http.ResponseWriter, r *http.Request) {
	a := c.arts.Load()
	digest := strings.TrimPrefix(r.URL.Path, artifactPrefix)
	if a == nil || r.Method != http.MethodGet || strings.ContainsAny(digest, "/.") {
		http.NotFound(w, r)
		return
	}
	f, size, err := (*a).Open(digest)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	defer f.Close()
	w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
	io.Copy(w, f)
}

// Fetch copies the artifact with digest from a node that has it, over
// the peer link; it is checked against its digest as it is stored.
func (c *Cluster) Fetch(ctx context.Context, digest string) error {
	a := c.arts.Load()
	if a == nil {
		return errors.New("the node is starting")
	}
	nodes, err := c.st.Nodes(ctx)
	if err != nil {
		return err
	}
	tr, err := c.transport()
	if err != nil {
		return err
	}
	client := &http.Client{Transport: tr}
	var errs []error
	for _, n := range nodes {
		if n.Name == c.opts.Name || n.PeerURL == "" {
			continue
		}
		err := c.fetchFrom(ctx, client, n.PeerURL, digest, *a)
		if err == nil {
			c.log.Info("cluster: copied an artifact from a peer", "digest", digest, "from", n.Name)
			return nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", n.Name, err))
	}
	return fmt.Errorf("no node could give the artifact %s: %w", digest, errors.Join(errs...))
}

func (c *Cluster) fetchFrom(ctx context.Context, client *http.Client, peerURL, digest string, a Artifacts) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, peerURL+artifactPrefix+digest, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s", resp.Status)
	}
	if resp.ContentLength < 0 {
		return errors.New("no length")
	}
	return a.Import(digest, resp.Body, resp.ContentLength)
}
