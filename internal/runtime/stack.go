package runtime

import (
	"errors"
	"fmt"

	"github.com/slipway-dev/slipway/internal/artifact"
	"github.com/slipway-dev/slipway/internal/settings"
)

// The stacks say how an artifact runs (their names are settings.Stacks):
//
//   - java: java -jar, for a jar or an executable war (Spring Boot), on
//     the JDK the app asks for.
//   - tomcat: a plain war, unpacked and served at / by Apache Tomcat 10.1
//     (see Tomcat), with a CATALINA_BASE of each instance's own.
//   - command: the app's startup command, for a zip above all.
//
// An app's own startup command replaces its stack's on any stack; the
// stack still lays out the release and prepares the instance (a tomcat
// instance gets its CATALINA_BASE).

// ErrStack means an artifact cannot run on the stack its app names.
var ErrStack = errors.New("the artifact cannot run on this stack")

// DefaultStack is the stack an artifact runs on when its app names none:
// a jar on java; a war on tomcat, unless its manifest makes it an
// executable Spring Boot war (java); a zip on command.
func DefaultStack(c artifact.Contents) string {
	switch {
	case c.Kind == artifact.KindJar, c.Kind == artifact.KindWar && c.SpringBoot():
		return settings.StackJava
	case c.Kind == artifact.KindWar:
		return settings.StackTomcat
	}
	return settings.StackCommand
}

// LegacyStack is the stack of a release recorded before releases had
// one: what Slipway ran them with then (java -jar for a jar or a war).
func LegacyStack(kind string) string {
	if kind == artifact.KindZip {
		return settings.StackCommand
	}
	return settings.StackJava
}

// StackCommand returns the startup command of stack for an artifact of
// kind, run by /bin/sh in the release directory: "" for the command
// stack, which has none. "exec" makes the JVM the process group leader.
func StackCommand(stack, kind string) (string, error) {
	switch {
	case stack == settings.StackJava && kind == artifact.KindJar:
		return "exec java $JAVA_OPTS -jar app.jar --server.port=$PORT", nil
	case stack == settings.StackJava && kind == artifact.KindWar:
		return "exec java $JAVA_OPTS -jar app.war --server.port=$PORT", nil
	case stack == settings.StackJava:
		return "", fmt.Errorf("%w: the java stack runs a jar or an executable war with java -jar, not a %s; use --stack command with a startup command", ErrStack, kind)
	case stack == settings.StackTomcat && kind == artifact.KindWar:
		return TomcatCommand, nil
	case stack == settings.StackTomcat:
		return "", fmt.Errorf("%w: the tomcat stack serves a war, not a %s; use --stack java for an executable jar, or --stack command", ErrStack, kind)
	case stack == settings.StackCommand:
		return "", nil
	}
	return "", fmt.Errorf("%w: there is no stack %q", ErrStack, stack)
}

// Layout is how a release of stack lays out its artifact: a tomcat
// release holds its war unpacked as well.
func Layout(stack string) artifact.Layout {
	if stack == settings.StackTomcat {
		return artifact.LayoutWebapp
	}
	return artifact.LayoutDefault
}
