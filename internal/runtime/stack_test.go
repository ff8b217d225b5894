package runtime

import (
	"errors"
	"testing"

	"github.com/slipway-dev/slipway/internal/artifact"
)

func TestDefaultStack(t *testing.T) {
	tests := []struct {
		name string
		c    artifact.Contents
		want string
	}{
		{"jar", artifact.Contents{Kind: "jar", MainClass: "App"}, "java"},
		{"plain war", artifact.Contents{Kind: "war", ServletAPI: artifact.ServletJakarta}, "tomcat"},
		{"war with a Main-Class of its own", artifact.Contents{Kind: "war", MainClass: "org.eclipse.jetty.Main"}, "tomcat"},
		{"spring boot 3 war", artifact.Contents{Kind: "war", MainClass: "org.springframework.boot.loader.launch.WarLauncher"}, "java"},
		{"spring boot 2 war", artifact.Contents{Kind: "war", MainClass: "org.springframework.boot.loader.WarLauncher"}, "java"},
		{"zip", artifact.Contents{Kind: "zip"}, "command"},
	}
	for _, tt := range tests {
		if got := DefaultStack(tt.c); got != tt.want {
			t.Errorf("%s: got %s, want %s", tt.name, got, tt.want)
		}
	}
}

func TestStackCommand(t *testing.T) {
	tests := []struct {
		stack, kind, want string
		err               error
	}{
		{"java", "jar", "exec java $JAVA_OPTS -jar app.jar --server.port=$PORT", nil},
		{"java", "war", "exec java $JAVA_OPTS -jar app.war --server.port=$PORT", nil},
		{"java", "zip", "", ErrStack},
		{"tomcat", "war", TomcatCommand, nil},
		{"tomcat", "jar", "", ErrStack},
		{"tomcat", "zip", "", ErrStack},
		{"command", "zip", "", nil},
		{"command", "jar", "", nil},
		{"jetty", "war", "", ErrStack},
	}
	for _, tt := range tests {
		got, err := StackCommand(tt.stack, tt.kind)
		if got != tt.want || !errors.Is(err, tt.err) {
			t.Errorf("StackCommand(%s, %s) = %q, %v; want %q, %v", tt.stack, tt.kind, got, err, tt.want, tt.err)
		}
	}
	if LegacyStack("war") != "java" || LegacyStack("jar") != "java" || LegacyStack("zip") != "command" {
		t.Errorf("a release made before stacks runs as it ran then: a jar or a war with java -jar, a zip with its command")
	}
}
