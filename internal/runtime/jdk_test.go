package runtime

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// jdkDir makes a directory that reads as a JDK of version: a release
// file and an executable bin/java (a shell script: what FindJDKs reads is
// the release file, and these tests run no java).
func jdkDir(t *testing.T, dir, version string) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(dir, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	release := "IMPLEMENTOR=\"Test\"\nJAVA_VERSION=\"" + version + "\"\nOS_NAME=\"Linux\"\n"
	if err := os.WriteFile(filepath.Join(dir, "release"), []byte(release), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "bin", "java"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	real, _ := filepath.EvalSymlinks(dir)
	return real
}

func TestFindJDKs(t *testing.T) {
	jvm := t.TempDir()
	old17 := jdkDir(t, filepath.Join(jvm, "java-17-old"), "17.0.9")
	new17 := jdkDir(t, filepath.Join(jvm, "java-17-new"), "17.0.15")
	j21 := jdkDir(t, filepath.Join(jvm, "temurin-21"), "21.0.4")
	j8 := jdkDir(t, filepath.Join(jvm, "java-8"), "1.8.0_402")
	ea := jdkDir(t, filepath.Join(jvm, "jdk-26-ea"), "26-ea")
	if err := os.Symlink(new17, filepath.Join(jvm, "java-1.17.0-link")); err != nil { // as Debian links its JDKs
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(jvm, "openjdk-17"), 0o755) // sources only: no JDK
	os.WriteFile(filepath.Join(jvm, ".java-1.17.0.jinfo"), []byte("x"), 0o644)
	os.MkdirAll(filepath.Join(jvm, "no-java", "bin"), 0o755)
	os.WriteFile(filepath.Join(jvm, "no-java", "release"), []byte(`JAVA_VERSION="11.0.1"`), 0o644)
	named := jdkDir(t, filepath.Join(t.TempDir(), "custom-21"), "21.0.1")

	js, err := FindJDKs([]string{named}, []string{jvm, filepath.Join(t.TempDir(), "missing")}, filepath.Join(old17, "bin", "java"))
	if err != nil {
		t.Fatal(err)
	}
	want := []JDK{{j8, "1.8.0_402", 8}, {new17, "17.0.15", 17}, {named, "21.0.1", 21}, {ea, "26-ea", 26}}
	got := js.All()
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("JDK %d: got %+v, want %+v", i, got[i], want[i])
		}
	}
	if js.Default == nil || *js.Default != (JDK{old17, "17.0.9", 17}) {
		t.Errorf("default %+v, want the JDK of the java command given", js.Default)
	}
	if j, err := js.Lookup("21"); err != nil || j.Home != named {
		t.Errorf("Lookup(21) = %+v, %v; want the named JDK before the one found (%s)", j, err, j21)
	}
	if j, err := js.Lookup(""); j != nil || err != nil {
		t.Errorf("Lookup(\"\") = %+v, %v; want nil: the node's default java", j, err)
	}
	_, err = js.Lookup("11")
	if !errors.Is(err, ErrNoJDK) {
		t.Fatalf("Lookup(11): got %v, want ErrNoJDK", err)
	}
	for _, w := range []string{"Java 11 is not installed", "this node has Java 8 (1.8.0_402, " + j8 + "), Java 17 (17.0.15, " + new17 + ")",
		"apt-get install openjdk-11-jdk-headless", "slipway server --jdk DIR", "--java-version"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("the error lacks %q: %v", w, err)
		}
	}
}

func TestFindJDKsRefusesANamedNonJDK(t *testing.T) {
	for name, dir := range map[string]string{"missing": filepath.Join(t.TempDir(), "nope"), "empty": t.TempDir()} {
		if _, err := FindJDKs([]string{dir}, nil, "java"); err == nil {
			t.Errorf("%s: a --jdk that is no JDK was accepted", name)
		}
	}
}

func TestNoJDKs(t *testing.T) {
	js, err := FindJDKs(nil, []string{t.TempDir()}, filepath.Join(t.TempDir(), "java"))
	if err != nil {
		t.Fatal(err)
	}
	if js.Default != nil || len(js.All()) != 0 {
		t.Errorf("found %+v, default %+v, in nothing", js.All(), js.Default)
	}
	if _, err := js.Lookup("17"); err == nil || !strings.Contains(err.Error(), "this node has no JDK under /usr/lib/jvm or named with --jdk") {
		t.Errorf("Lookup(17) on a node without JDKs: %v", err)
	}
}

func TestFeatureOf(t *testing.T) {
	for v, want := range map[string]int{"17.0.15": 17, "21": 21, "1.8.0_402": 8, "1.7.0": 7, "25.0.3+9": 25, "26-ea": 26, "9": 9} {
		if got, err := featureOf(v); err != nil || got != want {
			t.Errorf("featureOf(%q) = %d, %v; want %d", v, got, err, want)
		}
	}
	for _, v := range []string{"", "abc", "0"} {
		if _, err := featureOf(v); err == nil {
			t.Errorf("featureOf(%q) accepted it", v)
		}
	}
}
