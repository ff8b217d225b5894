package testapp

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
)

// ServletAPIJar is Tomcat 10's servlet API (jakarta.servlet), from
// Debian's libtomcat10-java, which the servlet test app is built against.
const ServletAPIJar = "/usr/share/java/tomcat10-servlet-api.jar"

// testdata is the repository's testdata directory.
func testdata(parts ...string) string {
	return filepath.Join(append([]string{filepath.Dir(filepath.Dir(source()))}, parts...)...)
}

// compiled holds the classes javac made of a set of sources, once per
// test binary.
type compiled struct {
	once sync.Once
	dir  string
	err  error
}

var servletClasses, javaxClasses, launcherClasses compiled

// javac compiles the Java files under src (with classpath, if not "") into
// a new temporary directory, once.
func (c *compiled) javac(classpath string, src ...string) (string, error) {
	c.once.Do(func() {
		dir, err := os.MkdirTemp("", "slipway-classes-")
		if err != nil {
			c.err = err
			return
		}
		args := []string{"--release", "17", "-d", dir}
		if classpath != "" {
			args = append(args, "-cp", classpath)
		}
		for _, s := range src {
			files, _ := filepath.Glob(filepath.Join(s, "*.java"))
			args = append(args, files...)
		}
		if out, err := exec.Command("javac", args...).CombinedOutput(); err != nil {
			c.err = fmt.Errorf("javac: %v\n%s", err, out)
			return
		}
		c.dir = dir
	})
	return c.dir, c.err
}

// ServletWar builds the plain servlet app of testdata/servletapp (a
// jakarta.servlet war, with no Main-Class) whose app.properties holds
// props, and returns its path.
func ServletWar(t testing.TB, name string, props map[string]string) string {
	t.Helper()
	if _, err := os.Stat(ServletAPIJar); err != nil {
		t.Fatalf("the servlet test app is built against Tomcat's servlet API, which is missing (apt-get install libtomcat10-java, as scripts/test does): %v", err)
	}
	classes, err := servletClasses.javac(ServletAPIJar, testdata("servletapp", "shop"))
	if err != nil {
		t.Fatalf("compiling the servlet test app: %v", err)
	}
	root := t.TempDir()
	copyTree(t, classes, filepath.Join(root, "WEB-INF", "classes"))
	write(t, filepath.Join(root, "WEB-INF", "classes", "app.properties"), properties(props))
	copyFile(t, testdata("servletapp", "static.txt"), filepath.Join(root, "static.txt"))
	return jar(t, name, root, "")
}

// JavaxWar builds a war whose servlet is of the javax.servlet API, which
// Tomcat 10 cannot run.
func JavaxWar(t testing.TB, name string) string {
	t.Helper()
	stub, err := javaxClasses.javac("", testdata("servletapp", "javax-stub", "javax", "servlet", "http"))
	if err != nil {
		t.Fatalf("compiling the javax.servlet stand-in: %v", err)
	}
	classes := t.TempDir()
	out, err := exec.Command("javac", "--release", "17", "-d", classes, "-cp", stub, testdata("servletapp", "javax", "OldHello.java")).CombinedOutput()
	if err != nil {
		t.Fatalf("javac: %v\n%s", err, out)
	}
	root := t.TempDir()
	copyTree(t, classes, filepath.Join(root, "WEB-INF", "classes"))
	write(t, filepath.Join(root, "WEB-INF", "web.xml"), `<web-app xmlns="http://xmlns.jcp.org/xml/ns/javaee" version="4.0"/>`+"\n")
	return jar(t, name, root, "")
}

// BootWar builds an executable war laid out as Spring Boot lays one out:
// a launcher at its root that its manifest names as Main-Class
// (org.springframework.boot.loader.launch.WarLauncher, see
// testdata/bootwar), and the app, the test app of Jar, under
// WEB-INF/classes with props in its app.properties.
func BootWar(t testing.TB, name string, props map[string]string) string {
	t.Helper()
	app, err := compile()
	if err != nil {
		t.Fatalf("compiling the Java test app: %v", err)
	}
	launcher, err := launcherClasses.javac("", testdata("bootwar"))
	if err != nil {
		t.Fatalf("compiling the launcher: %v", err)
	}
	root := t.TempDir()
	copyTree(t, launcher, root)
	copyTree(t, app, filepath.Join(root, "WEB-INF", "classes"))
	write(t, filepath.Join(root, "WEB-INF", "classes", "app.properties"), properties(props))
	return jar(t, name, root, "Main-Class: org.springframework.boot.loader.launch.WarLauncher\nStart-Class: App\n")
}

// jar packs the directory root into an archive name, with manifest lines
// if any, and returns its path.
func jar(t testing.TB, name, root, manifest string) string {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, name)
	args := []string{"--create", "--file", path}
	if manifest != "" {
		mf := filepath.Join(dir, "manifest.txt")
		write(t, mf, manifest)
		args = append(args, "--manifest", mf)
	}
	if out, err := exec.Command("jar", append(args, "-C", root, ".")...).CombinedOutput(); err != nil {
		t.Fatalf("jar: %v\n%s", err, out)
	}
	return path
}

func properties(props map[string]string) string {
	keys := make([]string, 0, len(props))
	for k := range props {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%s\n", k, props[k])
	}
	return b.String()
}

func copyTree(t testing.TB, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func copyFile(t testing.TB, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	write(t, dst, string(b))
}
