package artifact

import (
	"archive/zip"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/slipway-dev/slipway/internal/store"
)

// Servlet APIs a war's classes can use. Tomcat 10 runs jakarta.servlet
// (Jakarta EE 9 and later) only.
const (
	ServletJakarta = "jakarta"
	ServletJavax   = "javax"
)

// Bounds of the look into a war's classes for the servlet API they use:
// enough for the classes of any real app, and a bounded time (some 0.3 s
// of inflating at most) whatever the war holds.
const (
	maxScannedClasses    = 20_000
	maxScannedClassBytes = 1 << 20  // of one class: the constant pool comes first
	maxScannedBytes      = 64 << 20 // of all of them
	maxManifestBytes     = 1 << 20
)

// ErrJavax means a war on the tomcat stack uses javax.servlet, which
// Tomcat 10 does not run.
var ErrJavax = errors.New("the war uses the javax.servlet API, which Tomcat 10 cannot run")

// Contents is what an artifact holds that says how it runs.
type Contents struct {
	// Kind is KindJar, KindWar or KindZip.
	Kind string
	// MainClass is the Main-Class of its manifest, "" when it names none.
	MainClass string
	// ServletAPI is the servlet API the classes of a war use (those in
	// WEB-INF/classes): ServletJakarta, ServletJavax, or "" when none of
	// them names one (or the look stopped at its bounds). A war whose
	// classes name both is ServletJakarta: Tomcat 10 may run it.
	ServletAPI string
}

// SpringBoot reports whether the manifest names Spring Boot's launcher as
// Main-Class: an executable jar or war, run with java -jar.
func (c Contents) SpringBoot() bool {
	return strings.HasPrefix(c.MainClass, "org.springframework.boot.loader.")
}

// Inspect looks into the stored artifact ref: its manifest's Main-Class
// and, for a war, the servlet API its classes use.
func (s *Store) Inspect(ref store.ArtifactRef) (Contents, error) {
	a, err := openArchive(s.Path(ref.Digest), s.opts.MaxEntries)
	if err != nil {
		return Contents{}, fmt.Errorf("inspecting artifact %s: %w", ref.Digest, err)
	}
	defer a.Close()
	c := Contents{Kind: ref.Kind}
	if c.MainClass, err = mainClass(a.Reader); err != nil && !errors.Is(err, errNoManifest) {
		return Contents{}, err
	}
	if c.Kind == KindWar {
		c.ServletAPI = servletAPI(a.File)
	}
	return c, nil
}

// errNoManifest means the archive has no META-INF/MANIFEST.MF.
var errNoManifest = errors.New("no manifest")

// mainClass returns the Main-Class the archive's manifest names, "" for
// none, or errNoManifest.
func mainClass(zr *zip.Reader) (string, error) {
	f, err := zr.Open("META-INF/MANIFEST.MF")
	if err != nil {
		return "", errNoManifest
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxManifestBytes))
	if err != nil {
		return "", fmt.Errorf("%w: reading the manifest: %v", ErrCorrupt, err)
	}
	return manifestAttribute(b, "Main-Class"), nil
}

// manifestAttribute returns the value of the main section's attribute
// name, as the JAR File Specification writes it: "Name: value" lines of
// at most 72 bytes, continued on lines that start with a space, the main
// section ending at the first empty line. Names are matched regardless of
// case, as Java does.
func manifestAttribute(b []byte, name string) string {
	var lines []string
	for _, l := range strings.Split(strings.ReplaceAll(string(b), "\r\n", "\n"), "\n") {
		l = strings.TrimSuffix(l, "\r")
		switch {
		case l == "":
			lines = append(lines, "")
		case strings.HasPrefix(l, " ") && len(lines) > 0 && lines[len(lines)-1] != "":
			lines[len(lines)-1] += l[1:]
		default:
			lines = append(lines, l)
		}
	}
	for _, l := range lines {
		if l == "" {
			break // the end of the main section
		}
		k, v, ok := strings.Cut(l, ":")
		if ok && strings.EqualFold(k, name) {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// servletAPI tells which servlet API the classes of a war refer to, from
// the class names in their constant pools, within the bounds above. The
// classes under WEB-INF/lib's jars are not looked at: the app's own
// servlets, filters and listeners are what names the API it was built for.
func servletAPI(files []*zip.File) string {
	markers := map[string][]byte{ServletJakarta: []byte("jakarta/servlet/"), ServletJavax: []byte("javax/servlet/")}
	found := map[string]bool{}
	budget := int64(maxScannedBytes)
	scanned := 0
	for _, f := range files {
		if !strings.HasPrefix(f.Name, "WEB-INF/classes/") || !strings.HasSuffix(f.Name, ".class") {
			continue
		}
		if scanned++; scanned > maxScannedClasses || budget <= 0 || found[ServletJakarta] {
			break
		}
		b, err := readPrefix(f, min(budget, maxScannedClassBytes))
		budget -= int64(len(b))
		if err != nil {
			continue // a damaged class says nothing; the JVM will say the rest
		}
		for api, m := range markers {
			found[api] = found[api] || bytes.Contains(b, m)
		}
	}
	switch {
	case found[ServletJakarta]:
		return ServletJakarta
	case found[ServletJavax]:
		return ServletJavax
	}
	return ""
}

func readPrefix(f *zip.File, n int64) ([]byte, error) {
	rc, err := f.Open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(io.LimitReader(rc, n))
}
