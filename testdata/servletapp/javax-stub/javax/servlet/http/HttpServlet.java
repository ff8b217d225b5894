// The one class of the javax.servlet API that OldHello needs to compile.
// It stands in for the real API jar, which Debian's Tomcat 10 packages do
// not hold; it is never put in a war: the war is refused before it runs.
package javax.servlet.http;

public abstract class HttpServlet {
}
