// Prints the system properties named in its arguments after Tomcat's
// CatalinaProperties has read conf/catalina.properties of catalina.base
// (which sets each of its properties as a system property), one per line,
// as NAME=HEX of the value's UTF-8 bytes, "NAME unset" for none. The tests
// of the tomcat stack run it with the argument file MakeBase writes.
import java.nio.charset.StandardCharsets;

public class Dump {
    public static void main(String[] args) throws Exception {
        Class.forName("org.apache.catalina.startup.CatalinaProperties").getMethod("getProperty", String.class).invoke(null, "common.loader");
        for (String name : args) {
            String v = System.getProperty(name);
            if (v == null) {
                System.out.println(name + " unset");
                continue;
            }
            StringBuilder hex = new StringBuilder();
            for (byte b : v.getBytes(StandardCharsets.UTF_8)) hex.append(String.format("%02x", b));
            System.out.println(name + "=" + hex);
        }
    }
}
