package deploy

import (
	"cmp"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/slipway-dev/slipway/internal/artifact"
	"github.com/slipway-dev/slipway/internal/runtime"
	"github.com/slipway-dev/slipway/internal/settings"
	"github.com/slipway-dev/slipway/internal/store"
)

// StackOf is the stack rel runs on: the one recorded when it was made,
// or for a release made before releases recorded one, what Slipway ran
// it with then.
func StackOf(rel store.Release) string {
	return cmp.Or(rel.Stack, runtime.LegacyStack(rel.Artifact.Kind))
}

// launch is how the instances of a release start on this node.
type launch struct {
	stack   string
	command string
	// jdk is the JDK the release asks for; nil for the node's default
	// java, whatever is on the daemon's PATH.
	jdk *runtime.JDK
	// tomcat runs the tomcat stack; nil for the others.
	tomcat *runtime.Tomcat
}

// resolveStack records in rel the stack it runs on, from its settings or,
// when they name none, from its artifact, after checking that it can: the
// artifact suits the stack (a war for java -jar has a Main-Class, a war for
// Tomcat 10 uses jakarta.servlet), and what launchOf checks. It runs as a release is made, before anything is
// stored, so that what it refuses changes nothing and the live release
// keeps serving.
func (m *Manager) resolveStack(rel *store.Release) error {
	c, err := m.opts.Artifacts.Inspect(rel.Artifact)
	if err != nil {
		return err
	}
	rel.Stack = cmp.Or(rel.Settings.Stack, runtime.DefaultStack(c))
	if rel.Stack == settings.StackJava && c.Kind == artifact.KindWar && c.MainClass == "" && rel.Settings.Command == "" {
		return fmt.Errorf("%w: the war's manifest names no Main-Class, so 'java -jar' cannot run it; run it with --stack tomcat, "+
			"or build an executable war (Spring Boot: the spring-boot-maven-plugin repackage goal)", runtime.ErrStack)
	}
	if rel.Stack == settings.StackTomcat && c.ServletAPI == artifact.ServletJavax {
		return fmt.Errorf("%w (Java EE 8 and older): Tomcat 10 runs jakarta.servlet, of Jakarta EE 9 and later. "+
			"Move the app to jakarta.servlet (Spring 6 and Spring Boot 3 use it; Apache Tomcat's migration tool for Jakarta EE converts a war), "+
			"or build it as an executable war (Spring Boot) and run it with --stack java", artifact.ErrJavax)
	}
	_, err = m.launchOf(*rel)
	return err
}

// launchOf says how rel's instances start on this node. Its error says
// what rel's settings lack, or what the node lacks: the JDK or the
// Tomcat it needs (this is checked at every start, so that one
// installed later is found without a restart of the daemon).
func (m *Manager) launchOf(rel store.Release) (launch, error) {
	l := launch{stack: StackOf(rel)}
	cmd, err := runtime.StackCommand(l.stack, rel.Artifact.Kind)
	if err != nil {
		return l, err
	}
	if l.command = cmp.Or(rel.Settings.Command, cmd); l.command == "" {
		which := "the command stack"
		if rel.Settings.Stack == "" {
			which = "a " + rel.Artifact.Kind + " runs on the command stack, which"
		}
		return l, fmt.Errorf("%w: %s has no default startup command; set one with 'slipway config set-command' or in the app's settings (\"command\")",
			ErrNoCommand, which)
	}
	jdks, err := m.jdks()
	if err != nil {
		return l, err
	}
	if l.jdk, err = jdks.Lookup(rel.Settings.JavaVersion); err != nil {
		return l, err
	}
	if l.stack != settings.StackTomcat {
		return l, nil
	}
	if l.tomcat, err = runtime.FindTomcat(cmp.Or(m.opts.TomcatLib, runtime.DefaultTomcatLib)); err != nil {
		return l, err
	}
	if j := cmp.Or(l.jdk, jdks.Default); j != nil && j.Feature < runtime.MinTomcatJava {
		return l, fmt.Errorf("%w: Tomcat %s needs Java %d or later, not %d; choose another with 'slipway config options --java-version'",
			runtime.ErrStack, l.tomcat.Version, runtime.MinTomcatJava, j.Feature)
	}
	return l, nil
}

// String describes l for the app's log: "stack tomcat (Tomcat 10.1.60), JDK 17.0.15".
func (l launch) String() string {
	s := "stack " + l.stack
	if l.tomcat != nil {
		s += " (Tomcat " + l.tomcat.Version + ")"
	}
	if l.jdk != nil {
		s += ", JDK " + l.jdk.Version
	}
	return s
}

// jdks finds the node's JDKs: those named with --jdk, and those in the
// JDK directory.
func (m *Manager) jdks() (runtime.JDKs, error) {
	return runtime.FindJDKs(m.opts.JDKs, []string{cmp.Or(m.opts.JDKDir, runtime.DefaultJDKDir)}, cmp.Or(m.opts.Java, "java"))
}

// env returns an instance's environment env with what l adds: JAVA_HOME
// and PATH for the JDK it asks for, CATALINA_BASE and CATALINA_HOME for
// Tomcat (base, the instance's own).
func (l launch) env(env []string, base string) []string {
	if l.jdk != nil {
		path, _ := os.LookupEnv("PATH")
		env = setEnv(env, "JAVA_HOME", l.jdk.Home)
		env = setEnv(env, "PATH", filepath.Join(l.jdk.Home, "bin")+string(os.PathListSeparator)+cmp.Or(path, "/usr/local/bin:/usr/bin:/bin"))
	}
	if l.tomcat != nil {
		env = setEnv(env, "CATALINA_BASE", base)
		env = setEnv(env, "CATALINA_HOME", base)
	}
	return env
}

// setEnv sets k in env, replacing every earlier value.
func setEnv(env []string, k, v string) []string {
	out := env[:0:0]
	for _, e := range env {
		if !strings.HasPrefix(e, k+"=") {
			out = append(out, e)
		}
	}
	return append(out, k+"="+v)
}

// catalinaBase is where instance id of app has its CATALINA_BASE: in its
// private temp directory, which goes with it.
func (m *Manager) catalinaBase(app, id string) string {
	return filepath.Join(m.tmpDir(app, id), "catalina")
}

// makeCatalinaBase makes the CATALINA_BASE of instance id of rel, which
// listens on port, the app's own (uid under user isolation).
func (m *Manager) makeCatalinaBase(l launch, rel store.Release, id string, port int, uid uint32) error {
	base := m.catalinaBase(rel.App, id)
	err := l.tomcat.MakeBase(runtime.TomcatBase{Dir: base, Port: port,
		Webapp: filepath.Join(m.releaseDir(rel.App, rel.Number), artifact.WebappDir), Properties: rel.Settings.Env})
	if err != nil {
		return err
	}
	if m.user() {
		return chownTree(base, uid)
	}
	return nil
}

// Runtime says how a release runs on this node.
type Runtime struct {
	// Stack is java, tomcat or command.
	Stack string
	// JavaVersion is the Java version the release asks for; "" for the
	// node's default java.
	JavaVersion string
	// JDK is the JDK it runs on here: the one it asks for, or the node's
	// default; nil when that is not known.
	JDK *runtime.JDK
	// Tomcat is the version of Tomcat a tomcat release runs on here.
	Tomcat string
	// Problem says what keeps the node from starting the release, "" if
	// nothing does.
	Problem string
}

// RuntimeOf says how rel runs on this node.
func (m *Manager) RuntimeOf(rel store.Release) Runtime {
	r := Runtime{Stack: StackOf(rel), JavaVersion: rel.Settings.JavaVersion}
	l, err := m.launchOf(rel)
	if err != nil {
		r.Problem = err.Error()
	}
	r.JDK = l.jdk
	if r.JDK == nil && r.JavaVersion == "" {
		if jdks, err := m.jdks(); err == nil {
			r.JDK = jdks.Default
		}
	}
	if l.tomcat != nil {
		r.Tomcat = l.tomcat.Version
	}
	return r
}
