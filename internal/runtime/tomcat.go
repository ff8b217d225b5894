package runtime

import (
	"archive/zip"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf16"
)

// DefaultTomcatLib is where Debian's libtomcat10-java package puts
// Apache Tomcat 10.1's jars (as tomcat10-catalina.jar and so on).
const DefaultTomcatLib = "/usr/share/java"

// MinTomcatJava is the oldest Java that Tomcat 10.1 runs on.
const MinTomcatJava = 11

// ErrNoTomcat means the tomcat stack's Tomcat is not installed.
var ErrNoTomcat = errors.New("Apache Tomcat 10.1 is not installed on this node")

// tomcatJar matches the jars of libtomcat10-java by the names that do not
// change from one version to the next; the Ant tasks, which need Ant,
// are left out.
var tomcatJar = regexp.MustCompile(`^tomcat10-[A-Za-z-]+\.jar$`)

// tomcatJars are the jars the tomcat stack cannot do without.
var tomcatJars = []string{"tomcat10-catalina.jar", "tomcat10-coyote.jar", "tomcat10-juli.jar", "tomcat10-servlet-api.jar",
	"tomcat10-util.jar", "tomcat10-util-scan.jar", "tomcat10-api.jar", "tomcat10-jasper.jar"}

// jdtJar is the Eclipse compiler Tomcat's Jasper compiles JSPs with
// (libeclipse-jdt-core-java, which libtomcat10-java depends on).
const jdtJar = "eclipse-jdt-core.jar"

// Tomcat is an installation of Apache Tomcat 10.1 from Debian's
// libtomcat10-java: its jars, run with Tomcat's Bootstrap on a class path
// of their own, with a CATALINA_BASE of each instance's own (MakeBase).
type Tomcat struct {
	// Version is Tomcat's: "10.1.60".
	Version string
	// Classpath are its jars.
	Classpath []string
	// catalina is its tomcat10-catalina.jar.
	catalina string
}

// FindTomcat finds Tomcat's jars in lib; ErrNoTomcat says what to install.
func FindTomcat(lib string) (*Tomcat, error) {
	for _, j := range tomcatJars {
		if _, err := os.Stat(filepath.Join(lib, j)); err != nil {
			return nil, fmt.Errorf("%w (%s has no %s): install it with 'apt-get install libtomcat10-java'", ErrNoTomcat, lib, j)
		}
	}
	entries, err := os.ReadDir(lib)
	if err != nil {
		return nil, err
	}
	t := &Tomcat{catalina: filepath.Join(lib, "tomcat10-catalina.jar")}
	for _, e := range entries {
		if tomcatJar.MatchString(e.Name()) && e.Name() != "tomcat10-catalina-ant.jar" || e.Name() == jdtJar {
			t.Classpath = append(t.Classpath, filepath.Join(lib, e.Name()))
		}
	}
	t.Version = jarVersion(t.catalina)
	if !strings.HasPrefix(t.Version, "10.1.") {
		return nil, fmt.Errorf("%w: %s holds Tomcat %q; the tomcat stack runs Tomcat 10.1 (libtomcat10-java)", ErrNoTomcat, lib, t.Version)
	}
	return t, nil
}

// jarVersion returns the Implementation-Version of a jar's manifest.
func jarVersion(path string) string {
	b, _ := readJarEntry(path, "META-INF/MANIFEST.MF")
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "Implementation-Version:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// readJarEntry reads an entry of a jar of Tomcat's (1 MiB of it at most).
func readJarEntry(path, name string) ([]byte, error) {
	zr, err := zip.OpenReader(path)
	if err != nil {
		return nil, err
	}
	defer zr.Close()
	f, err := zr.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, 1<<20))
}

// TomcatCommand is the tomcat stack's startup command, run in the release
// directory: JAVA_OPTS and CATALINA_OPTS come from the app's settings, as
// catalina.sh takes them; the rest (the class path, CATALINA_BASE, the
// logging) is in the argument file MakeBase writes, whose options come
// last and so win.
const TomcatCommand = `exec java $JAVA_OPTS $CATALINA_OPTS @"$CATALINA_BASE/conf/jvm.args" org.apache.catalina.startup.Bootstrap start`

// TomcatBase is an instance's CATALINA_BASE.
type TomcatBase struct {
	// Dir is the directory to make it in; it must not exist.
	Dir string
	// Port is the loopback port the instance listens on.
	Port int
	// Webapp is the unpacked war, served at / (ROOT).
	Webapp string
	// Properties become Java system properties (through
	// conf/catalina.properties, which Tomcat sets as such at start): the
	// app's settings, so that an app that reads them as properties, or
	// as ${NAME} in its context.xml, finds them. A name Slipway gives on
	// the command line (catalina.base, java.io.tmpdir, …) is left out.
	Properties map[string]string
}

// reservedProperties are the system properties MakeBase's argument file
// sets, which a setting must not change under Tomcat's feet.
var reservedProperties = []string{"catalina.base", "catalina.home", "java.io.tmpdir", "java.util.logging.config.file",
	"java.util.logging.manager", "java.protocol.handler.pkgs"}

// MakeBase makes b.Dir an instance's CATALINA_BASE: conf/server.xml (a
// connector on 127.0.0.1:Port only, bound once the app has started, and
// no shutdown port: the instance stops on SIGTERM, as Tomcat's shutdown
// hook does), conf/web.xml (the defaults of every app, as Tomcat's own),
// conf/logging.properties (everything to the console, that is Slipway's
// log), conf/catalina.properties, conf/jvm.args, and the folders work,
// temp, logs and webapps (empty: the app is the Context of server.xml).
// It writes files only in b.Dir, which it makes; the caller makes it the
// app's.
func (t *Tomcat) MakeBase(b TomcatBase) error {
	mime, err := readJarEntry(t.catalina, "org/apache/catalina/startup/MimeTypeMappings.properties")
	if err != nil {
		return fmt.Errorf("reading Tomcat's MIME types from %s: %w", t.catalina, err)
	}
	for _, d := range []string{"", "conf", "work", "temp", "logs", "webapps"} {
		if err := os.Mkdir(filepath.Join(b.Dir, d), 0o700); err != nil {
			return fmt.Errorf("making CATALINA_BASE: %w", err)
		}
	}
	files := map[string]string{
		"server.xml":          serverXML(b),
		"web.xml":             webXML(mime),
		"logging.properties":  loggingProperties,
		"catalina.properties": catalinaProperties(b.Properties),
		"jvm.args":            t.jvmArgs(b.Dir),
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(b.Dir, "conf", name), []byte(content), 0o600); err != nil {
			return fmt.Errorf("making CATALINA_BASE: %w", err)
		}
	}
	return nil
}

// serverXML is the instance's conf/server.xml. bindOnInit="false" opens
// the port only once the app has started, so that a warmup request finds
// it closed (and tries again) rather than waiting in the backlog. The
// Context's sessions are not saved on stop (Manager pathname=""): the
// next instance is another process.
func serverXML(b TomcatBase) string {
	return `<?xml version="1.0" encoding="UTF-8"?>
<!-- Made by Slipway for this instance; it is remade at every start. -->
<Server port="-1" shutdown="SHUTDOWN">
  <Service name="Catalina">
    <Connector port="` + strconv.Itoa(b.Port) + `" address="127.0.0.1" protocol="HTTP/1.1" bindOnInit="false"
               connectionTimeout="20000" maxThreads="200" />
    <Engine name="Catalina" defaultHost="localhost">
      <Host name="localhost" appBase="webapps" unpackWARs="false" autoDeploy="false" deployOnStartup="false">
        <Context path="" docBase="` + xmlAttr(b.Webapp) + `" workDir="` + xmlAttr(filepath.Join(b.Dir, "work")) + `" reloadable="false">
          <Manager pathname="" />
        </Context>
      </Host>
    </Engine>
  </Service>
</Server>
`
}

// webXML is conf/web.xml, the defaults every app's own web.xml is merged
// with, as in Tomcat's distribution: the default servlet (static files,
// no directory listings), the JSP servlet, the welcome files, and the
// MIME types, those of mimeTypes (Tomcat's MimeTypeMappings.properties:
// "ext=type" lines).
func webXML(mimeTypes []byte) string {
	var sb strings.Builder
	sb.WriteString(`<?xml version="1.0" encoding="UTF-8"?>
<!-- Made by Slipway for this instance, as Tomcat's conf/web.xml. -->
<web-app xmlns="https://jakarta.ee/xml/ns/jakartaee" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
         xsi:schemaLocation="https://jakarta.ee/xml/ns/jakartaee https://jakarta.ee/xml/ns/jakartaee/web-app_6_0.xsd" version="6.0">
  <servlet>
    <servlet-name>default</servlet-name>
    <servlet-class>org.apache.catalina.servlets.DefaultServlet</servlet-class>
    <init-param><param-name>debug</param-name><param-value>0</param-value></init-param>
    <init-param><param-name>listings</param-name><param-value>false</param-value></init-param>
    <load-on-startup>1</load-on-startup>
  </servlet>
  <servlet>
    <servlet-name>jsp</servlet-name>
    <servlet-class>org.apache.jasper.servlet.JspServlet</servlet-class>
    <init-param><param-name>fork</param-name><param-value>false</param-value></init-param>
    <init-param><param-name>xpoweredBy</param-name><param-value>false</param-value></init-param>
    <load-on-startup>3</load-on-startup>
  </servlet>
  <servlet-mapping><servlet-name>default</servlet-name><url-pattern>/</url-pattern></servlet-mapping>
  <servlet-mapping><servlet-name>jsp</servlet-name><url-pattern>*.jsp</url-pattern><url-pattern>*.jspx</url-pattern></servlet-mapping>
  <session-config><session-timeout>30</session-timeout></session-config>
`)
	for _, line := range strings.Split(string(mimeTypes), "\n") {
		ext, typ, ok := strings.Cut(strings.TrimSpace(line), "=")
		if !ok || strings.HasPrefix(ext, "#") {
			continue
		}
		sb.WriteString("  <mime-mapping><extension>" + xmlAttr(ext) + "</extension><mime-type>" + xmlAttr(typ) + "</mime-type></mime-mapping>\n")
	}
	sb.WriteString(`  <welcome-file-list>
    <welcome-file>index.html</welcome-file>
    <welcome-file>index.htm</welcome-file>
    <welcome-file>index.jsp</welcome-file>
  </welcome-file-list>
</web-app>
`)
	return sb.String()
}

// loggingProperties sends Tomcat's log to its standard error, one line
// per record, which Slipway's log takes.
const loggingProperties = `handlers = java.util.logging.ConsoleHandler
.handlers = java.util.logging.ConsoleHandler
.level = INFO
java.util.logging.ConsoleHandler.level = ALL
java.util.logging.ConsoleHandler.formatter = org.apache.juli.OneLineFormatter
java.util.logging.ConsoleHandler.encoding = UTF-8
`

// catalinaProperties is conf/catalina.properties: Tomcat's own settings
// (no class loaders of its own: its jars are on the class path; its jars
// and the JDK compiler's are not scanned for TLDs), then props, which it
// sets as system properties.
func catalinaProperties(props map[string]string) string {
	var sb strings.Builder
	sb.WriteString("# Made by Slipway for this instance: Tomcat's settings, then the app's.\n")
	sb.WriteString("common.loader=\nserver.loader=\nshared.loader=\n")
	sb.WriteString("tomcat.util.scan.StandardJarScanFilter.jarsToSkip=tomcat10-*.jar,eclipse-jdt-core*.jar\n")
	keys := make([]string, 0, len(props))
	for k := range props {
		if !slices.Contains(reservedProperties, k) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		sb.WriteString(escapeProperty(k, true) + "=" + escapeProperty(props[k], false) + "\n")
	}
	return sb.String()
}

// escapeProperty writes s as java.util.Properties.load reads it from a
// stream of ISO 8859-1: backslash escapes for the characters that end or
// begin something, \uXXXX for the rest outside printable ASCII (as
// Properties.store does). A key's spaces are escaped; a value's only when
// it begins with one.
func escapeProperty(s string, key bool) string {
	var sb strings.Builder
	for i, r := range s {
		switch {
		case r == ' ' && (key || i == 0):
			sb.WriteString(`\ `)
		case r == '\\' || r == '=' || r == ':' || r == '#' || r == '!':
			sb.WriteByte('\\')
			sb.WriteRune(r)
		case r == '\t':
			sb.WriteString(`\t`)
		case r == '\n':
			sb.WriteString(`\n`)
		case r == '\r':
			sb.WriteString(`\r`)
		case r == '\f':
			sb.WriteString(`\f`)
		case r < 0x20 || r > 0x7e:
			for _, u := range utf16.Encode([]rune{r}) {
				fmt.Fprintf(&sb, `\u%04X`, u)
			}
		default:
			sb.WriteRune(r)
		}
	}
	return sb.String()
}

// jvmArgs is conf/jvm.args, the java command's argument file: the class
// path, CATALINA_BASE (which is CATALINA_HOME too: Debian's jars have no
// home of their own), the temp folder, the logging, and the openings of
// the JDK's modules that catalina.sh gives Tomcat (to clear what a
// stopped app leaves in the JDK's caches).
func (t *Tomcat) jvmArgs(base string) string {
	args := []string{
		"-classpath", strings.Join(t.Classpath, string(os.PathListSeparator)),
		"-Dcatalina.base=" + base,
		"-Dcatalina.home=" + base,
		"-Djava.io.tmpdir=" + filepath.Join(base, "temp"),
		"-Djava.util.logging.config.file=" + filepath.Join(base, "conf", "logging.properties"),
		"-Djava.util.logging.manager=org.apache.juli.ClassLoaderLogManager",
		"-Djava.protocol.handler.pkgs=org.apache.catalina.webresources",
		"-Djdk.tls.ephemeralDHKeySize=2048",
		"--add-opens=java.base/java.lang=ALL-UNNAMED",
		"--add-opens=java.base/java.lang.reflect=ALL-UNNAMED",
		"--add-opens=java.base/java.io=ALL-UNNAMED",
		"--add-opens=java.base/java.util=ALL-UNNAMED",
		"--add-opens=java.base/java.util.concurrent=ALL-UNNAMED",
		"--add-opens=java.rmi/sun.rmi.transport=ALL-UNNAMED",
	}
	var sb strings.Builder
	for _, a := range args {
		sb.WriteString(argfileQuote(a) + "\n")
	}
	return sb.String()
}

// argfileQuote quotes an argument for a java argument file, where
// whitespace separates arguments, a double-quoted one may hold it, and
// within quotes a backslash escapes.
func argfileQuote(a string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`, "\r", `\r`, "\t", `\t`).Replace(a) + `"`
}

// xmlAttr escapes s for XML text or an attribute in double quotes. (Tomcat's
// digester would still replace a ${name} in it with the system property
// name; the paths written here are the data directory's, which holds no
// such thing.)
func xmlAttr(s string) string {
	return strings.NewReplacer(`&`, "&amp;", `<`, "&lt;", `>`, "&gt;", `"`, "&quot;", "'", "&apos;", "\n", "&#10;", "\r", "&#13;", "\t", "&#9;").Replace(s)
}
