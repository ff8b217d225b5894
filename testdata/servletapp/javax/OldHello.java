// A servlet of the javax.servlet API (Java EE 8 and older), which Tomcat 10
// cannot run: Slipway must refuse its war on the tomcat stack.
package old;

import javax.servlet.http.HttpServlet;

public class OldHello extends HttpServlet {
}
