// Package testapp builds the Java test apps under testdata into jars and
// wars with javac and jar, for tests only: the app of testdata/javaapp as
// an executable jar (Jar) or a Spring-Boot-style executable war (BootWar),
// and plain servlet wars (ServletWar, JavaxWar).
package testapp

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
)

var (
	compileOnce sync.Once
	classesDir  string
	compileErr  error
)

// source is testdata/javaapp/App.java at the repository root.
func source() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "testdata", "javaapp", "App.java")
}

// compile runs javac once per test binary.
func compile() (string, error) {
	compileOnce.Do(func() {
		dir, err := os.MkdirTemp("", "slipway-javaapp-")
		if err != nil {
			compileErr = err
			return
		}
		out, err := exec.Command("javac", "--release", "17", "-d", dir, source()).CombinedOutput()
		if err != nil {
			compileErr = fmt.Errorf("javac: %v\n%s", err, out)
			return
		}
		classesDir = dir
	})
	return classesDir, compileErr
}

// Jar builds an executable jar of the test app whose app.properties holds
// props (see App.java), in a new temporary directory, and returns its path.
func Jar(t testing.TB, name string, props map[string]string) string {
	t.Helper()
	classes, err := compile()
	if err != nil {
		t.Fatalf("compiling the Java test app: %v", err)
	}
	dir := t.TempDir()
	res := filepath.Join(dir, "res")
	if err := os.MkdirAll(res, 0o755); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(res, "app.properties"), properties(props))
	manifest := filepath.Join(dir, "manifest.txt")
	write(t, manifest, "Main-Class: App\n")
	jar := filepath.Join(dir, name)
	cmd := exec.Command("jar", "--create", "--file", jar, "--manifest", manifest, "-C", classes, ".", "-C", res, "app.properties")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("jar: %v\n%s", err, out)
	}
	return jar
}

func write(t testing.TB, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}
