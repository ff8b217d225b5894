package runtime

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// DefaultJDKDir is where Debian's JDK packages (and most other
// distributions') install their JDKs, one directory each.
const DefaultJDKDir = "/usr/lib/jvm"

// ErrNoJDK means an app asks for a Java version no JDK of the node has.
var ErrNoJDK = errors.New("no JDK of that Java version on this node")

// JDK is a Java installation an instance can run on.
type JDK struct {
	// Home is its directory, symbolic links resolved: JAVA_HOME.
	Home string
	// Version is the JAVA_VERSION of its release file: "17.0.15",
	// "1.8.0_402", "25".
	Version string
	// Feature is its feature release: 17, 8, 25.
	Feature int
}

// String describes the JDK for people: "17.0.15 (/usr/lib/jvm/java-17-openjdk-amd64)".
func (j JDK) String() string { return j.Version + " (" + j.Home + ")" }

// JDKs are the JDKs of a node: an app that asks for a Java version runs
// on the one JDK of that feature release chosen here.
type JDKs struct {
	// byFeature holds the chosen JDK of each feature release, in
	// ascending order.
	byFeature []JDK
	// Default is the JDK of the java on the daemon's PATH, which an app
	// that asks for no version runs on; nil when there is none, or it is
	// no JDK with a release file.
	Default *JDK
}

// FindJDKs finds a node's JDKs: each directory of named (the server's
// --jdk flags) must be a JDK, and the entries of each of dirs that are
// JDKs are found too. Of the JDKs of one feature release, a named one
// is chosen before the found ones (the first named, then the highest
// version found); a named directory that is no JDK is an error. The
// default is the JDK of the command java, looked up on PATH ("java").
func FindJDKs(named, dirs []string, java string) (JDKs, error) {
	var all []JDK
	for _, home := range named {
		j, err := ReadJDK(home)
		if err != nil {
			return JDKs{}, err
		}
		all = append(all, j)
	}
	var found []JDK
	for _, dir := range dirs {
		entries, _ := os.ReadDir(dir) // a node without the directory has none there
		for _, e := range entries {
			if j, err := ReadJDK(filepath.Join(dir, e.Name())); err == nil {
				found = append(found, j)
			}
		}
	}
	slices.SortStableFunc(found, func(a, b JDK) int { return compareVersions(b.Version, a.Version) })
	var js JDKs
	for _, j := range append(all, found...) {
		if _, ok := js.Find(j.Feature); !ok {
			js.byFeature = append(js.byFeature, j)
		}
	}
	slices.SortFunc(js.byFeature, func(a, b JDK) int { return a.Feature - b.Feature })
	if java, err := exec.LookPath(java); err == nil {
		if real, err := filepath.EvalSymlinks(java); err == nil {
			if j, err := ReadJDK(filepath.Dir(filepath.Dir(real))); err == nil { // …/jdk/bin/java → …/jdk
				js.Default = &j
			}
		}
	}
	return js, nil
}

// All returns the chosen JDK of each feature release, in ascending order.
func (js JDKs) All() []JDK { return slices.Clone(js.byFeature) }

// Find returns the JDK of feature release n.
func (js JDKs) Find(n int) (JDK, bool) {
	i := slices.IndexFunc(js.byFeature, func(j JDK) bool { return j.Feature == n })
	if i < 0 {
		return JDK{}, false
	}
	return js.byFeature[i], true
}

// Lookup returns the JDK that an app asking for Java version v ("17")
// runs on, or, for "", nil and the node's default java. An ErrNoJDK
// names the versions the node has and says what to do.
func (js JDKs) Lookup(v string) (*JDK, error) {
	if v == "" {
		return nil, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return nil, fmt.Errorf("%w: Java version %q is no feature release", ErrNoJDK, v)
	}
	if j, ok := js.Find(n); ok {
		return &j, nil
	}
	return nil, fmt.Errorf("%w: Java %d is not installed; this node has %s. Install it (on Debian: apt-get install openjdk-%d-jdk-headless, where the release offers it) "+
		"or name its directory with 'slipway server --jdk DIR', or choose an installed version with 'slipway config options --java-version'",
		ErrNoJDK, n, js.describe(), n)
}

// describe lists the JDKs for people: "Java 17 (17.0.15, /usr/lib/jvm/…), Java 25 (…)".
func (js JDKs) describe() string {
	if len(js.byFeature) == 0 {
		return "no JDK under " + DefaultJDKDir + " or named with --jdk"
	}
	parts := make([]string, len(js.byFeature))
	for i, j := range js.byFeature {
		parts[i] = fmt.Sprintf("Java %d (%s, %s)", j.Feature, j.Version, j.Home)
	}
	return strings.Join(parts, ", ")
}

// ReadJDK reads the JDK in dir: its release file's JAVA_VERSION, and an
// executable bin/java.
func ReadJDK(dir string) (JDK, error) {
	home, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return JDK{}, fmt.Errorf("JDK %s: %w", dir, err)
	}
	if home, err = filepath.Abs(home); err != nil {
		return JDK{}, err
	}
	if fi, err := os.Stat(filepath.Join(home, "bin", "java")); err != nil || fi.IsDir() || fi.Mode().Perm()&0o111 == 0 {
		return JDK{}, fmt.Errorf("JDK %s: it has no executable bin/java; name a JDK's directory, the one that holds bin/ and release", dir)
	}
	version, err := releaseVersion(filepath.Join(home, "release"))
	if err != nil {
		return JDK{}, fmt.Errorf("JDK %s: %w", dir, err)
	}
	feature, err := featureOf(version)
	if err != nil {
		return JDK{}, fmt.Errorf("JDK %s: %w", dir, err)
	}
	return JDK{Home: home, Version: version, Feature: feature}, nil
}

// releaseVersion reads JAVA_VERSION="17.0.15" from a JDK's release file.
func releaseVersion(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("no release file to tell its version: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f) // lines of at most 64 KiB: a release file's are short
	for sc.Scan() {
		if v, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "JAVA_VERSION="); ok {
			return strings.Trim(v, `"`), nil
		}
	}
	return "", fmt.Errorf("its release file %s has no JAVA_VERSION", path)
}

// featureOf returns the feature release of a JAVA_VERSION: "17.0.15" is
// 17, "21" is 21, "1.8.0_402" is 8.
func featureOf(version string) (int, error) {
	parts := versionParts(version)
	if len(parts) >= 2 && parts[0] == 1 { // 1.8.0_402: Java 8 and older
		parts = parts[1:]
	}
	if len(parts) == 0 || parts[0] < 1 {
		return 0, fmt.Errorf("JAVA_VERSION %q is not a Java version", version)
	}
	return parts[0], nil
}

// versionParts splits a version at every character that is no digit:
// "17.0.15+6" is [17 0 15 6]; "21-ea" is [21].
func versionParts(v string) []int {
	var out []int
	for _, f := range strings.FieldsFunc(v, func(r rune) bool { return r < '0' || r > '9' }) {
		n, err := strconv.Atoi(f)
		if err != nil {
			break
		}
		out = append(out, n)
	}
	return out
}

// compareVersions orders versions by their numbers: "17.0.9" < "17.0.15".
func compareVersions(a, b string) int { return slices.Compare(versionParts(a), versionParts(b)) }
