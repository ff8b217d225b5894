package cluster

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"sync"

	"github.com/slipway-dev/slipway/internal/logs"
)

// maxPeerLogLine bounds one line of a peer's log stream.
const maxPeerLogLine = 1 << 20

// PeerLogs asks every other node for the same log request as r, with r's
// token, over the peer link, and sends their lines (tagged with their
// node by them) until each stream ends or ctx does; the channel is closed
// then. A node that cannot be reached is left out.
func (c *Cluster) PeerLogs(ctx context.Context, r *http.Request) <-chan logs.Line {
	out := make(chan logs.Line, 256)
	nodes, err := c.st.Nodes(ctx)
	tr, terr := c.transport()
	if err != nil || terr != nil {
		close(out)
		return out
	}
	client := &http.Client{Transport: tr}
	var wg sync.WaitGroup
	for _, n := range nodes {
		if n.Name == c.opts.Name || n.PeerURL == "" {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.peerLogs(ctx, client, n.PeerURL, r, out)
		}()
	}
	go func() { wg.Wait(); close(out) }()
	return out
}

func (c *Cluster) peerLogs(ctx context.Context, client *http.Client, peerURL string, r *http.Request, out chan<- logs.Line) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, peerURL+apiPrefix+r.URL.Path+"?"+r.URL.RawQuery, nil)
	if err != nil {
		return
	}
	req.Header.Set("Authorization", r.Header.Get("Authorization"))
	if u, p, ok := r.BasicAuth(); ok && r.Header.Get("Authorization") == "" {
		req.SetBasicAuth(u, p)
	}
	resp, err := client.Do(req)
	if err != nil {
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), maxPeerLogLine)
	for sc.Scan() {
		var l logs.Line
		if json.Unmarshal(sc.Bytes(), &l) != nil || l.Stream == logs.StreamHeartbeat {
			continue
		}
		select {
		case out <- l:
		case <-ctx.Done():
			return
		}
	}
}
