package daemon

import (
	"strings"
	"testing"
)

// TestEtcdConfigValidate: --etcd-endpoints takes client URLs that keep
// the store's secrets off the wire (https, unix, plain http on loopback
// only), and its companions make sense only together.
func TestEtcdConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		c    ClusterConfig
		want string // "" for valid
	}{
		{"embedded", ClusterConfig{}, ""},
		{"https", ClusterConfig{Etcd: EtcdConfig{Endpoints: []string{"https://10.0.0.5:2379", "https://10.0.0.6:2379"}, CertFile: "c", KeyFile: "k"}}, ""},
		{"loopback http", ClusterConfig{Etcd: EtcdConfig{Endpoints: []string{"http://127.0.0.1:2379", "http://[::1]:2379", "http://localhost:2379"}}}, ""},
		{"unix", ClusterConfig{Etcd: EtcdConfig{Endpoints: []string{"unix:///run/etcd.sock"}}}, ""},
		{"http elsewhere", ClusterConfig{Etcd: EtcdConfig{Endpoints: []string{"http://10.0.0.5:2379"}}}, "plain http only to a loopback address"},
		{"no scheme", ClusterConfig{Etcd: EtcdConfig{Endpoints: []string{"10.0.0.5:2379"}}}, "want"},
		{"a path", ClusterConfig{Etcd: EtcdConfig{Endpoints: []string{"https://10.0.0.5:2379/v3"}}}, "want an etcd client URL"},
		{"a password", ClusterConfig{Etcd: EtcdConfig{Endpoints: []string{"https://root:pw@10.0.0.5:2379"}}}, "want an etcd client URL"},
		{"ftp", ClusterConfig{Etcd: EtcdConfig{Endpoints: []string{"ftp://10.0.0.5:2379"}}}, "want https://"},
		{"cert without key", ClusterConfig{Etcd: EtcdConfig{Endpoints: []string{"https://10.0.0.5:2379"}, CertFile: "c"}}, "go together"},
		{"certs without endpoints", ClusterConfig{Etcd: EtcdConfig{CAFile: "ca"}}, "go with --etcd-endpoints"},
		{"with --join", ClusterConfig{Join: "http://10.0.0.5:7070", JoinToken: "t", Etcd: EtcdConfig{Endpoints: []string{"https://10.0.0.5:2379"}}}, "no --join"},
		{"too many", ClusterConfig{Etcd: EtcdConfig{Endpoints: strings.Split(strings.Repeat("https://e:2379,", 17)[:15*17-1], ",")}}, "at most 16"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.c.validate()
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("validate: %v, want no error", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("validate: %v, want an error with %q", err, tc.want)
			}
		})
	}
}
