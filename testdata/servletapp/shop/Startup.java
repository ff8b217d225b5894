// A plain servlet app (jakarta.servlet) for Slipway's tests of the tomcat
// stack, built with javac against Tomcat's servlet API, no Maven. Its
// behaviour comes from /WEB-INF/classes/app.properties:
//   version=2             shown in every answer
//   startDelaySeconds=20  contextInitialized takes this long, like a slow app
package shop;

import jakarta.servlet.ServletContextEvent;
import jakarta.servlet.ServletContextListener;
import jakarta.servlet.annotation.WebListener;
import java.io.InputStream;
import java.util.Properties;

@WebListener
public class Startup implements ServletContextListener {
    static final Properties conf = new Properties();

    @Override
    public void contextInitialized(ServletContextEvent e) {
        try (InputStream in = Startup.class.getResourceAsStream("/app.properties")) {
            if (in != null) conf.load(in);
        } catch (Exception ex) {
            throw new IllegalStateException(ex);
        }
        String version = conf.getProperty("version", "0");
        System.out.println("Servlet app version " + version + " initialising on instance " + System.getenv("SLIPWAY_INSTANCE_ID"));
        int delay = Integer.parseInt(conf.getProperty("startDelaySeconds", "0"));
        for (int i = 0; i < delay; i++) {
            if (i % 5 == 0) System.out.println("contextInitialized: waiting… " + i + "s");
            try {
                Thread.sleep(1000);
            } catch (InterruptedException ex) {
                Thread.currentThread().interrupt();
                return;
            }
        }
        System.out.println("Servlet app version " + version + " initialised");
    }

    @Override
    public void contextDestroyed(ServletContextEvent e) {
        System.out.println("Servlet app version " + conf.getProperty("version", "0") + " stopping");
    }
}
