package e2e

import (
	"bufio"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/slipway-dev/slipway/internal/testapp"
)

// TestTomcatStack is the story of the stacks: a plain servlet war (built
// with javac against Tomcat's servlet API, no Maven) runs on Tomcat 10.1
// at /, with the app's settings as environment variables and as system
// properties and its output in the app's log; v2, whose
// contextInitialized takes 20 s, goes live under load without one failed
// request. A javax.servlet war and a Java version the node lacks are
// refused, saying why and what to do, with v2 serving on. A war that is
// an executable Spring Boot war runs on java, on the JDK the app asks for.
func TestTomcatStack(t *testing.T) {
	t.Parallel() // see parallelTests in helpers_test.go
	d := startDaemon(t)
	v1 := testapp.ServletWar(t, "shop-1.0.war", map[string]string{"version": "1"})
	v2 := testapp.ServletWar(t, "shop-2.0.war", map[string]string{"version": "2", "startDelaySeconds": "20"})
	const greeting = `grüß dich: a=b \ #1`
	d.mustCLI("apps", "create", "shop", "-e", "GREETING="+greeting, "-e", "CATALINA_OPTS=-Dshop.opts=from-catalina-opts",
		"-e", "JAVA_OPTS=-Xmx256m -Dshop.java=from-java-opts")
	out := d.mustCLI("deploy", "-a", "shop", v1)
	if !strings.Contains(out, "succeeded") {
		t.Fatalf("deploy v1:\n%s", out)
	}
	checkServlet(t, d)

	l := startLoad(t, d, "shop", loadOptions{Steady: 1, Hammer: 4, Slow: 2, MaxDuration: 2 * time.Minute})
	l.waitAnswered(t, 1, 50)
	out = d.mustCLI("deploy", "-a", "shop", v2, "-m", "slow start")
	if !strings.Contains(out, "Waiting for response to warmup request") {
		t.Errorf("deploy v2 does not say that it waits for the slow start:\n%s", out)
	}
	l.waitAnswered(t, 2, 50)
	l.check(t)
	if l.versions[1] == 0 || l.versions[2] == 0 {
		t.Errorf("answers per version %v: want both versions under load", l.versions)
	}
	deps := d.deployments("shop")
	if took := deps[len(deps)-1].Finished.Sub(deps[len(deps)-1].Started); took < 20*time.Second {
		t.Errorf("v2 went live %s after its deploy began: its contextInitialized did not hold its warmup", took)
	}
	// v1's Tomcat stopped as Tomcat stops on SIGTERM: the app's
	// contextDestroyed ran.
	if out := d.mustCLI("logs", "-a", "shop", "-n", "1000"); !strings.Contains(out, "Servlet app version 1 stopping") {
		t.Errorf("v1 did not stop cleanly; slipway logs:\n%s", out)
	}

	t.Run("javax war refused", func(t *testing.T) {
		out, err := d.cli("deploy", "-a", "shop", testapp.JavaxWar(t, "legacy.war"))
		if err == nil {
			t.Fatalf("a javax.servlet war was deployed on tomcat:\n%s", out)
		}
		for _, want := range []string{"javax.servlet API, which Tomcat 10 cannot run", "jakarta.servlet", "--stack java"} {
			if !strings.Contains(out, want) {
				t.Errorf("slipway deploy's error lacks %q:\n%s", want, out)
			}
		}
		checkServing(t, d, "shop", "version=2 ", 2)
	})
	t.Run("missing JDK refused", func(t *testing.T) {
		out, err := d.cli("config", "options", "-a", "shop", "--java-version", "99")
		if err == nil {
			t.Fatalf("Java 99 was accepted:\n%s", out)
		}
		for _, want := range []string{"Java 99 is not installed", "this node has Java 17 (", "--java-version"} {
			if !strings.Contains(out, want) {
				t.Errorf("slipway config options' error lacks %q:\n%s", want, out)
			}
		}
		checkServing(t, d, "shop", "version=2 ", 2)
		if v := d.app("shop").Settings.JavaVersion; v != "" {
			t.Errorf("the refused change was kept: java_version %q", v)
		}
	})
	t.Run("executable war runs on java with the chosen JDK", func(t *testing.T) {
		checkBootWar(t, d)
	})
}

// checkServlet checks v1 of the servlet app on the tomcat stack: what it
// answers, sees and prints, and how the CLI shows its stack.
func checkServlet(t *testing.T, d *daemon) {
	t.Helper()
	const greeting = `grüß dich: a=b \ #1`
	if got, want := d.body("shop", "/"), "version=1 "; !strings.HasPrefix(got, want) || !strings.Contains(got, "greeting="+greeting+" property="+greeting+" ") {
		t.Errorf("the servlet answers %q; want %q…, with the greeting as a variable and a property", got, want)
	}
	for path, want := range map[string]string{
		"/property?name=shop.opts": "from-catalina-opts", // CATALINA_OPTS
		"/property?name=shop.java": "from-java-opts",     // JAVA_OPTS
		"/static.txt":              "hello static",       // Tomcat's default servlet
		"/env?name=SLIPWAY_APP":    "shop",               // the platform's variables, as on any stack
	} {
		if got := strings.TrimSpace(d.body("shop", path)); got != want {
			t.Errorf("GET %s: %q, want %q", path, got, want)
		}
	}
	base := strings.TrimSpace(d.body("shop", "/env?name=CATALINA_BASE"))
	if !strings.HasPrefix(base, filepath.Join(d.dataDir, "apps", "shop", "tmp")+"/") {
		t.Errorf("CATALINA_BASE %q is not in the instance's temp directory", base)
	}
	if got := strings.TrimSpace(d.body("shop", "/property?name=java.io.tmpdir")); got != filepath.Join(base, "temp") {
		t.Errorf("java.io.tmpdir %q, want CATALINA_BASE/temp", got)
	}
	d.body("shop", "/log?text=marker-4711")
	waitFor(t, 10*time.Second, "the servlet's output in slipway logs", func() bool {
		out := d.mustCLI("logs", "-a", "shop", "-n", "500")
		return strings.Contains(out, "Servlet says: marker-4711") && strings.Contains(out, "Servlet app version 1 initialised") &&
			strings.Contains(out, "org.apache.catalina.startup.Catalina.start Server startup in")
	})
	rels := d.releases("shop")
	if got := rels[len(rels)-1].Stack; got != "tomcat" {
		t.Errorf("the war's release has stack %q, want tomcat (a war without Spring Boot's launcher)", got)
	}
	out := d.mustCLI("apps", "show", "shop")
	if !strings.Contains(out, "Stack:       tomcat (Tomcat 10.1.") || !strings.Contains(out, "Java:        the node's default (JDK ") {
		t.Errorf("slipway apps show:\n%s", out)
	}
	if out := d.mustCLI("releases", "-a", "shop"); !strings.Contains(out, "STACK") || !strings.Contains(out, " tomcat ") {
		t.Errorf("slipway releases:\n%s", out)
	}
	if out := d.mustCLI("status", "-a", "shop"); !strings.Contains(out, "Stack:       tomcat (Tomcat 10.1.") {
		t.Errorf("slipway status:\n%s", out)
	}
}

// checkBootWar deploys a Spring-Boot-style executable war, which runs on
// java, asking for Java 17, then for every other Java version the node
// has: the app's java.version follows.
func checkBootWar(t *testing.T, d *daemon) {
	t.Helper()
	d.mustCLI("apps", "create", "boot", "--java-version", "17")
	d.mustCLI("deploy", "-a", "boot", testapp.BootWar(t, "boot-3.0.war", map[string]string{"version": "3"}))
	if got := d.body("boot", "/"); !strings.HasPrefix(got, "version=3 ") {
		t.Errorf("the executable war answers %q", got)
	}
	checkJava(t, d, 17)
	if got := d.releases("boot")[0].Stack; got != "java" {
		t.Errorf("the executable war's release has stack %q, want java", got)
	}
	if out := d.mustCLI("releases", "-a", "boot"); !strings.Contains(out, " java, Java 17 ") {
		t.Errorf("slipway releases:\n%s", out)
	}
	if out := d.mustCLI("status", "-a", "boot"); !strings.Contains(out, "Stack:       java\n") || !strings.Contains(out, "Java:        17 (JDK 17.") {
		t.Errorf("slipway status:\n%s", out)
	}
	others := installedJavaVersions(t)
	delete(others, 17)
	if len(others) == 0 {
		t.Logf("this machine has no JDK but Java 17 under /usr/lib/jvm: the choice was tested with 17 alone")
	}
	for v := range others {
		t.Logf("asking for Java %d too, which this machine has", v)
		d.mustCLI("config", "options", "-a", "boot", "--java-version", strconv.Itoa(v))
		checkJava(t, d, v)
	}
}

// checkJava checks that the boot app runs on Java v.
func checkJava(t *testing.T, d *daemon, v int) {
	t.Helper()
	if got := d.body("boot", "/java"); !strings.HasPrefix(got, "java.version="+strconv.Itoa(v)+".") && !strings.HasPrefix(got, "java.version="+strconv.Itoa(v)+" ") {
		t.Errorf("asked for Java %d, the app runs on %q", v, got)
	}
}

// installedJavaVersions reads the feature releases of the JDKs under
// /usr/lib/jvm from their release files, as the daemon does, to know what
// else to ask for.
func installedJavaVersions(t *testing.T) map[int]bool {
	t.Helper()
	out := map[int]bool{}
	files, _ := filepath.Glob("/usr/lib/jvm/*/release")
	for _, f := range files {
		if _, err := os.Stat(filepath.Join(filepath.Dir(f), "bin", "java")); err != nil {
			continue
		}
		fh, err := os.Open(f)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), `JAVA_VERSION="`); ok {
				major, _, _ := strings.Cut(v, ".")
				if n, err := strconv.Atoi(strings.TrimSuffix(major, `"`)); err == nil && n != 1 {
					out[n] = true
				}
			}
		}
		fh.Close()
	}
	return out
}

// checkServing checks that app answers want… at / from release live.
func checkServing(t *testing.T, d *daemon, app, want string, live int) {
	t.Helper()
	if got := d.body(app, "/"); !strings.HasPrefix(got, want) {
		t.Errorf("%s answers %q, want %q…", app, got, want)
	}
	if a := d.app(app); a.CurrentRelease != live || a.Deploying != 0 {
		t.Errorf("%s: release v%d live, deploying %d; want v%d, none", app, a.CurrentRelease, a.Deploying, live)
	}
}

// waitAnswered waits until version has answered n requests of the load.
func (l *load) waitAnswered(t *testing.T, version, n int) {
	t.Helper()
	waitFor(t, 30*time.Second, "the load to be answered by version "+strconv.Itoa(version), func() bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		return l.versions[version] >= n
	})
}
