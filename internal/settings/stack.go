package settings

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Stacks say how an artifact is run; the runtime package holds what each
// one does. An app's stack setting is one of these, or "" for the one its
// artifact asks for (see the runtime package's DefaultStack).
const (
	// StackJava runs a jar, or an executable war, with java -jar.
	StackJava = "java"
	// StackTomcat serves a plain war at / with Apache Tomcat 10.1.
	StackTomcat = "tomcat"
	// StackCommand runs the app's startup command, for a zip above all.
	StackCommand = "command"
)

// Stacks lists the stacks, in the order the help names them.
var Stacks = []string{StackJava, StackTomcat, StackCommand}

// Bounds of the Java version an app may ask for: Java 8 is the oldest a
// JDK of today's Linux distributions calls itself; three digits leave
// room for the future.
const (
	MinJavaVersion = 8
	MaxJavaVersion = 999
)

func checkStack(name, v string) error {
	if !slices.Contains(Stacks, v) {
		return fmt.Errorf("%s %q: want one of %s, or \"\" for the one the artifact asks for", name, v, strings.Join(Stacks, ", "))
	}
	return nil
}

// checkJavaVersion takes a Java feature release: 17, 21, 25. Java 8 calls
// itself 1.8, which is refused with a hint; so are update numbers, since a
// node has one JDK per feature release in use.
func checkJavaVersion(name, v string) error {
	n, err := strconv.Atoi(v)
	if err == nil && v == strconv.Itoa(n) && n >= MinJavaVersion && n <= MaxJavaVersion {
		return nil
	}
	hint := ""
	if v == "1.8" {
		hint = " (Java 1.8 is 8)"
	} else if major, _, ok := strings.Cut(v, "."); ok {
		hint = fmt.Sprintf(" (the feature release alone, like %s)", major)
	}
	return fmt.Errorf("%s %q: want a Java feature release from %d to %d, like 17 or 21%s", name, v, MinJavaVersion, MaxJavaVersion, hint)
}
