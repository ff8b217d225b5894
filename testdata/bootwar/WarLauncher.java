// Stands in for Spring Boot's launcher of an executable war, under the name
// Spring Boot 3 gives it, so that the war's manifest reads as Spring Boot's
// does: Main-Class: org.springframework.boot.loader.launch.WarLauncher. Like
// Spring Boot's, it runs the app from WEB-INF/classes of the war it is in;
// the app is the test app of testdata/javaapp. (A real Spring Boot war
// needs Maven and the network to build, which the tests do without.)
package org.springframework.boot.loader.launch;

import java.lang.reflect.Method;
import java.net.URL;
import java.net.URLClassLoader;

public class WarLauncher {
    public static void main(String[] args) throws Exception {
        URL war = WarLauncher.class.getProtectionDomain().getCodeSource().getLocation();
        URL classes = new URL("jar:" + war + "!/WEB-INF/classes/");
        // Never closed: the app loads classes from it as long as it runs.
        URLClassLoader loader = new URLClassLoader(new URL[] {classes}, WarLauncher.class.getClassLoader());
        Method main = loader.loadClass("App").getMethod("main", String[].class);
        main.invoke(null, (Object) args);
    }
}
