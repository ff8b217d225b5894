package api

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/slipway-dev/slipway/internal/settings"
	"github.com/slipway-dev/slipway/internal/store"
)

// war is a war whose one class names the servlet API api ("jakarta" or
// "javax") in its constant pool, as javac writes it.
func war(t *testing.T, api string) string {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, _ := zw.Create("WEB-INF/classes/shop/Hello.class")
	w.Write([]byte("\xca\xfe\xba\xbe\x00\x00\x00\x3d\x01\x00\x1e" + api + "/servlet/http/HttpServlet"))
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

// TestStackRefusals: what a node cannot run is refused before anything
// is recorded, with a status that says whose the fault is (400: the
// artifact or the settings; 409: what the node lacks, which installing
// it mends) and a message that says what to do. The node here has a JDK
// of Java 17 only, and no Tomcat.
func TestStackRefusals(t *testing.T) {
	a := newTestAPI(t)
	a.createApp(store.App{Name: "shop"})
	a.createApp(store.App{Name: "j21", Settings: settings.Settings{JavaVersion: "21"}})
	a.createApp(store.App{Name: "cmd", Settings: settings.Settings{Stack: settings.StackCommand}})
	a.createApp(store.App{Name: "onjava", Settings: settings.Settings{Stack: settings.StackJava}})
	jar := func() string {
		var buf bytes.Buffer
		zw := zip.NewWriter(&buf)
		w, _ := zw.Create("META-INF/MANIFEST.MF")
		w.Write([]byte("Manifest-Version: 1.0\nMain-Class: App\n"))
		zw.Close()
		return buf.String()
	}()
	site := func() string {
		var buf bytes.Buffer
		zw := zip.NewWriter(&buf)
		zw.Create("index.html")
		zw.Close()
		return buf.String()
	}()
	tests := []struct {
		name, app, file, body string
		code                  int
		want                  []string
	}{
		{"javax war on tomcat", "shop", "old.war", war(t, "javax"), http.StatusBadRequest,
			[]string{"the war uses the javax.servlet API, which Tomcat 10 cannot run", "Jakarta EE 9", "--stack java"}},
		{"jakarta war without Tomcat", "shop", "shop.war", war(t, "jakarta"), http.StatusConflict,
			[]string{"Apache Tomcat 10.1 is not installed on this node", "apt-get install libtomcat10-java"}},
		{"a JDK the node lacks", "j21", "app.jar", jar, http.StatusConflict,
			[]string{"Java 21 is not installed; this node has Java 17 (17.0.99, ", "--java-version"}},
		{"the command stack without a command", "cmd", "app.jar", jar, http.StatusBadRequest,
			[]string{"the command stack has no default startup command", "set-command"}},
		{"a zip on java", "onjava", "site.zip", site, http.StatusBadRequest,
			[]string{"the java stack runs a jar or an executable war with java -jar, not a zip"}},
		{"a plain war on java", "onjava", "shop.war", war(t, "jakarta"), http.StatusBadRequest,
			[]string{"the war's manifest names no Main-Class, so 'java -jar' cannot run it; run it with --stack tomcat"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, b := a.do("POST", "/api/v1/apps/"+tt.app+"/deployments?filename="+tt.file, a.admin, tt.body)
			var got Error
			json.Unmarshal(b, &got)
			if code != tt.code {
				t.Errorf("got %d %s, want %d", code, b, tt.code)
			}
			for _, w := range tt.want {
				if !strings.Contains(got.Error, w) {
					t.Errorf("the error lacks %q: %s", w, got.Error)
				}
			}
			if rels, err := a.st.Releases(context.Background(), tt.app); err != nil || len(rels) != 0 {
				t.Errorf("the refused deploy left releases %v (%v)", rels, err)
			}
		})
	}
}
