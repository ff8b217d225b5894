package shop;

import jakarta.servlet.annotation.WebServlet;
import jakarta.servlet.http.HttpServlet;
import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletResponse;
import java.io.IOException;

// Answers on every path:
//   /                  version=N greeting=$GREETING property=<system property GREETING> java=<java.version>
//   /slow?ms=N         after N milliseconds
//   /env?name=X        the environment variable X
//   /property?name=X   the system property X
//   /log?text=X        prints X on standard output
//   /static.txt        a file of the war, served by Tomcat's default servlet
@WebServlet(urlPatterns = {"", "/slow", "/env", "/property", "/log"})
public class Hello extends HttpServlet {
    @Override
    protected void doGet(HttpServletRequest req, HttpServletResponse resp) throws IOException {
        String version = Startup.conf.getProperty("version", "0");
        String body;
        switch (req.getServletPath()) {
            case "/slow":
                int ms = Integer.parseInt(req.getParameter("ms") == null ? "2000" : req.getParameter("ms"));
                try {
                    Thread.sleep(ms);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
                body = "slow version=" + version;
                break;
            case "/env":
                body = String.valueOf(System.getenv(req.getParameter("name")));
                break;
            case "/property":
                body = String.valueOf(System.getProperty(req.getParameter("name")));
                break;
            case "/log":
                System.out.println("Servlet says: " + req.getParameter("text"));
                body = "logged";
                break;
            default:
                body = "version=" + version + " instance=" + System.getenv("SLIPWAY_INSTANCE_ID") + " greeting=" + System.getenv("GREETING")
                        + " property=" + System.getProperty("GREETING") + " java=" + System.getProperty("java.version");
        }
        resp.setContentType("text/plain; charset=utf-8");
        resp.getWriter().println(body);
    }
}
