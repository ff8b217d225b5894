package daemon

import (
	"os"
	"path/filepath"
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
		{"unix", ClusterConfig{Etcd: EtcdConfig{Endpoints: []string{"unix:///run/etcd.sock"}}}, ""},
		{"unix with TLS", ClusterConfig{Etcd: EtcdConfig{Endpoints: []string{"unix:///run/etcd.sock"}, CAFile: "ca"}}, ""},
		// A local user can listen on a loopback port while etcd is down
		// (or restarts), and the client reconnects to whatever answers.
		{"loopback http", ClusterConfig{Etcd: EtcdConfig{Endpoints: []string{"http://127.0.0.1:2379"}}}, "no plain http"},
		{"localhost http", ClusterConfig{Etcd: EtcdConfig{Endpoints: []string{"http://localhost:2379"}}}, "no plain http"},
		{"http elsewhere", ClusterConfig{Etcd: EtcdConfig{Endpoints: []string{"http://10.0.0.5:2379"}}}, "no plain http"},
		// The etcd client picks its transport security by the first
		// endpoint for all of them: a plain first endpoint would send
		// the rest in the clear too.
		{"mixed schemes", ClusterConfig{Etcd: EtcdConfig{Endpoints: []string{"unix:///run/etcd.sock", "https://10.0.0.5:2379"}}}, "the same scheme"},
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

// TestEtcdSocketDir: a plain unix:// endpoint is as safe as the folder
// its socket is in: one that another user may write in lets that user
// put a socket of their own there while etcd is down, and be the store.
func TestEtcdSocketDir(t *testing.T) {
	for _, tc := range []struct {
		name string
		mode os.FileMode
		ca   bool
		want string // "" for accepted
	}{
		{"the owner's", 0o755, false, ""},
		{"anyone's", 0o777, false, "other users may write"},
		{"anyone's, sticky", 0o777 | os.ModeSticky, false, "other users may write"},
		{"its group's", 0o775, false, "other users may write"},
		{"anyone's, over TLS", 0o777, true, ""}, // the server's certificate says who it is
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "run")
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(dir, tc.mode); err != nil {
				t.Fatal(err)
			}
			e := EtcdConfig{Endpoints: []string{"unix://" + filepath.Join(dir, "etcd.sock")}}
			if tc.ca {
				e.CAFile = filepath.Join(dir, "ca.pem")
			}
			err := e.checkSockets()
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("checkSockets: %v, want no error", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("checkSockets: %v, want an error with %q", err, tc.want)
			}
		})
	}
}
