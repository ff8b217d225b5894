package runtime

import (
	"encoding/hex"
	"encoding/xml"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// tomcat finds the Tomcat of Debian's libtomcat10-java, which the tests
// of the tomcat stack run (scripts/test installs it).
func tomcat(t *testing.T) *Tomcat {
	t.Helper()
	tc, err := FindTomcat(DefaultTomcatLib)
	if err != nil {
		t.Fatalf("%v (scripts/test installs it)", err)
	}
	return tc
}

func TestFindTomcat(t *testing.T) {
	tc := tomcat(t)
	if !strings.HasPrefix(tc.Version, "10.1.") {
		t.Errorf("version %q, want 10.1.x", tc.Version)
	}
	names := make([]string, len(tc.Classpath))
	for i, p := range tc.Classpath {
		names[i] = filepath.Base(p)
	}
	for _, want := range []string{"tomcat10-catalina.jar", "tomcat10-coyote.jar", "tomcat10-juli.jar", "tomcat10-servlet-api.jar", "tomcat10-jasper.jar", "eclipse-jdt-core.jar"} {
		if !slices.Contains(names, want) {
			t.Errorf("the class path lacks %s: %v", want, names)
		}
	}
	for _, n := range names {
		if n == "tomcat10-catalina-ant.jar" || strings.Contains(n, "10.1.") {
			t.Errorf("the class path holds %s: the Ant tasks, or a jar by its versioned name (twice)", n)
		}
	}

	_, err := FindTomcat(t.TempDir())
	if !errors.Is(err, ErrNoTomcat) || !strings.Contains(err.Error(), "apt-get install libtomcat10-java") {
		t.Errorf("no Tomcat: got %v, want ErrNoTomcat saying what to install", err)
	}
}

// TestMakeBase makes a CATALINA_BASE where a path holds what XML, an
// argument file and a properties file must escape, and checks what each
// file says once read as its reader reads it.
func TestMakeBase(t *testing.T) {
	tc := tomcat(t)
	root := filepath.Join(t.TempDir(), `a "q" & <b> $x`)
	os.Mkdir(root, 0o700)
	base := filepath.Join(root, "catalina")
	webapp := filepath.Join(root, "ROOT")
	err := tc.MakeBase(TomcatBase{Dir: base, Port: 41234, Webapp: webapp, Properties: map[string]string{"GREETING": "hi"}})
	if err != nil {
		t.Fatal(err)
	}
	var server struct {
		Port    string `xml:"port,attr"`
		Service struct {
			Connector struct {
				Port       string `xml:"port,attr"`
				Address    string `xml:"address,attr"`
				BindOnInit string `xml:"bindOnInit,attr"`
			}
			Engine struct {
				Host struct {
					Context struct {
						Path    string `xml:"path,attr"`
						DocBase string `xml:"docBase,attr"`
						WorkDir string `xml:"workDir,attr"`
					}
				}
			}
		}
	}
	readXML(t, filepath.Join(base, "conf", "server.xml"), &server)
	c := server.Service.Connector
	if server.Port != "-1" || c.Port != "41234" || c.Address != "127.0.0.1" || c.BindOnInit != "false" {
		t.Errorf("server.xml: shutdown port %s, connector %+v; want -1, 127.0.0.1:41234 bound at start", server.Port, c)
	}
	if ctx := server.Service.Engine.Host.Context; ctx.Path != "" || ctx.DocBase != webapp || ctx.WorkDir != filepath.Join(base, "work") {
		t.Errorf("server.xml's Context: %+v", ctx)
	}
	type mime struct {
		Extension string `xml:"extension"`
		Type      string `xml:"mime-type"`
	}
	var web struct {
		Servlets []string `xml:"servlet>servlet-name"`
		Mime     []mime   `xml:"mime-mapping"`
	}
	readXML(t, filepath.Join(base, "conf", "web.xml"), &web)
	if !slices.Equal(web.Servlets, []string{"default", "jsp"}) || len(web.Mime) < 500 {
		t.Errorf("web.xml: servlets %v, %d MIME types; want default and jsp, and Tomcat's MIME types", web.Servlets, len(web.Mime))
	}
	if i := slices.IndexFunc(web.Mime, func(m mime) bool { return m.Extension == "css" }); i < 0 || web.Mime[i].Type != "text/css" {
		t.Errorf("web.xml maps no css to text/css")
	}
	for _, d := range []string{"work", "temp", "logs", "webapps"} {
		if fi, err := os.Stat(filepath.Join(base, d)); err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o700 {
			t.Errorf("%s: %v %v", d, fi, err)
		}
	}
	if err := tc.MakeBase(TomcatBase{Dir: base, Port: 1, Webapp: webapp}); err == nil {
		t.Errorf("MakeBase made a base where one is: it must make a directory of its own")
	}
}

func readXML(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := xml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// TestTomcatReadsTheProperties runs java with the argument file of a
// CATALINA_BASE, and Tomcat's own CatalinaProperties, which makes the
// app's settings system properties: every value arrives as it was, and
// the properties Slipway sets on the command line stay Slipway's.
func TestTomcatReadsTheProperties(t *testing.T) {
	tc := tomcat(t)
	classes := t.TempDir()
	if out, err := exec.Command("javac", "-d", classes, filepath.Join("testdata", "Dump.java")).CombinedOutput(); err != nil {
		t.Fatalf("javac: %v\n%s", err, out)
	}
	root := filepath.Join(t.TempDir(), `with space, "quotes" \ and $HOME`)
	os.Mkdir(root, 0o700)
	base := filepath.Join(root, "catalina")
	props := map[string]string{
		"GREETING":         "grüß dich",
		"A.b_c":            `x=y:z #not a comment ! \ back\slash \\ \u0041 ${catalina.base}`,
		"LEADING":          "  two spaces, then\ttab\nnewline\r\f",
		"TRAILING":         "trailing space ",
		"EMPTY":            "",
		"EMOJI":            "🚢 ship",
		"CONTROL":          "\x01\x1f\x7f\u0085",
		"catalina.base":    "/not/slipways",
		"java.io.tmpdir":   "/not/slipways",
		"common.loader":    "",
		"HASH_AT_START":    "#x",
		"EQUALS_AT_START":  "=x",
		"BACKSLASH_AT_END": `x\`,
	}
	if err := tc.MakeBase(TomcatBase{Dir: base, Port: 1, Webapp: root, Properties: props}); err != nil {
		t.Fatal(err)
	}
	names := []string{"catalina.home", "java.util.logging.config.file"}
	for k := range props {
		names = append(names, k)
	}
	cp := classes + string(os.PathListSeparator) + strings.Join(tc.Classpath, string(os.PathListSeparator))
	args := append([]string{"@" + filepath.Join(base, "conf", "jvm.args"), "-cp", cp, "Dump"}, names...)
	out, err := exec.Command("java", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("java: %v\n%s", err, out)
	}
	got := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		k, h, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		b, err := hex.DecodeString(h)
		if err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		got[k] = string(b)
	}
	want := map[string]string{}
	for k, v := range props {
		want[k] = v
	}
	want["catalina.base"], want["catalina.home"] = base, base
	want["java.io.tmpdir"] = filepath.Join(base, "temp")
	want["java.util.logging.config.file"] = filepath.Join(base, "conf", "logging.properties")
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s: got %q, want %q", k, got[k], w)
		}
	}
}
