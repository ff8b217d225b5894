// A small Spring-Boot-like web app for Slipway's tests, on the JDK's own
// HTTP server. Its behaviour comes from /app.properties inside its jar:
//   version=2            shown in every answer
//   startDelaySeconds=30 sleeps this long before it listens, like a slow JVM app
//   exitCode=3           exits at once with this code, after some output
//   neverListen=true     never opens its port
//   crashAfterSeconds=2  exits with code 137 this long after it listens
//   leaseJob=NAME        a job that runs every 200 ms from the start, as a
//                        Spring @Scheduled(fixedDelay = 200) method would: it
//                        takes lease NAME at $SLIPWAY_LEASE_URL (TTL leaseTtl,
//                        3s), works 30 ms, renews the lease, and only if it
//                        held it throughout (same fencing token) appends
//                        "instance,token,start,end" (µs since the epoch) to
//                        $SLIPWAY_STORAGE/lease-NAME.log
//   runnerJob=NAME       the same job run only while the single runner file
//                        $SLIPWAY_LEASE_DIR/NAME is there (it holds the token),
//                        appending to $SLIPWAY_STORAGE/runner-NAME.log
// It takes its port from --server.port=N (as Spring does), else $PORT, and
// --spring.profiles.active=x beats $SPRING_PROFILES_ACTIVE. $GREETING shows in
// every answer on /, so a settings change is visible; /java tells the JVM's
// java.version and java.home.
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

public class App {
    static final AtomicBoolean healthy = new AtomicBoolean(true);

    public static void main(String[] args) throws Exception {
        long t0 = System.nanoTime();
        Properties p = new Properties();
        try (InputStream in = App.class.getResourceAsStream("/app.properties")) {
            if (in != null) p.load(in);
        }
        Map<String, String> cli = new HashMap<>();
        for (String a : args) {
            if (a.startsWith("--") && a.contains("=")) {
                cli.put(a.substring(2, a.indexOf('=')), a.substring(a.indexOf('=') + 1));
            }
        }
        String version = p.getProperty("version", "0");
        String instance = env("SLIPWAY_INSTANCE_ID", "-");
        System.out.println("Starting App version " + version + " on instance " + instance);
        startJobs(p, instance);
        if (p.getProperty("exitCode") != null) {
            System.err.println("Fatal: simulated startup failure");
            System.exit(Integer.parseInt(p.getProperty("exitCode")));
        }
        int delay = Integer.parseInt(p.getProperty("startDelaySeconds", "0"));
        for (int i = 0; i < delay; i++) {
            if (i % 5 == 0) System.out.println("Initialising… " + i + "s");
            Thread.sleep(1000);
        }
        if (Boolean.parseBoolean(p.getProperty("neverListen", "false"))) {
            System.out.println("Never listening");
            Thread.sleep(Long.MAX_VALUE);
        }
        int port = Integer.parseInt(cli.getOrDefault("server.port", env("PORT", "8080")));
        String profile = cli.getOrDefault("spring.profiles.active", env("SPRING_PROFILES_ACTIVE", "default"));
        String greeting = env("GREETING", "hello");
        String addr = env("SERVER_ADDRESS", "127.0.0.1");
        HttpServer server = HttpServer.create(new InetSocketAddress(addr, port), 512);
        server.setExecutor(Executors.newCachedThreadPool());
        server.createContext("/", ex -> {
            String path = ex.getRequestURI().getPath();
            switch (path) {
                case "/slow":
                    sleep(queryInt(ex.getRequestURI(), "ms", 2000));
                    reply(ex, 200, "slow version=" + version + " instance=" + instance + "\n");
                    break;
                case "/health":
                    reply(ex, healthy.get() ? 200 : 500, healthy.get() ? "ok\n" : "sick\n");
                    break;
                case "/sicken":
                    healthy.set(false);
                    reply(ex, 200, "now sick\n");
                    break;
                case "/storage": {
                    // Reads, or with ?write=TEXT writes, $SLIPWAY_STORAGE/data.txt.
                    java.nio.file.Path f = java.nio.file.Paths.get(env("SLIPWAY_STORAGE", "."), "data.txt");
                    String q = ex.getRequestURI().getQuery();
                    if (q != null && q.startsWith("write=")) {
                        java.nio.file.Files.writeString(f, q.substring(6));
                    }
                    reply(ex, 200, java.nio.file.Files.exists(f) ? java.nio.file.Files.readString(f) : "");
                    break;
                }
                case "/env": {
                    String q = ex.getRequestURI().getQuery();
                    String name = q != null && q.startsWith("name=") ? q.substring(5) : "";
                    reply(ex, 200, env(name, "") + "\n");
                    break;
                }
                case "/java":
                    reply(ex, 200, "java.version=" + System.getProperty("java.version") + " java.home=" + System.getProperty("java.home") + "\n");
                    break;
                case "/headers":
                    StringBuilder sb = new StringBuilder();
                    ex.getRequestHeaders().forEach((k, v) -> sb.append(k.toLowerCase()).append(": ").append(String.join(",", v)).append("\n"));
                    reply(ex, 200, sb.toString());
                    break;
                case "/":
                    reply(ex, 200, "version=" + version + " instance=" + instance + " greeting=" + greeting + " profile=" + profile + "\n");
                    break;
                default:
                    reply(ex, 404, "not found\n");
            }
        });
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            System.out.println("Shutting down");
            server.stop(0);
        }));
        server.start();
        int crashAfter = Integer.parseInt(p.getProperty("crashAfterSeconds", "0"));
        if (crashAfter > 0) {
            Thread crash = new Thread(() -> {
                sleep(crashAfter * 1000);
                System.err.println("Simulated crash: java.lang.OutOfMemoryError: Java heap space");
                Runtime.getRuntime().halt(137);
            });
            crash.setDaemon(true);
            crash.start();
        }
        System.out.printf("Started App in %.3f seconds (version %s, port %d)%n", (System.nanoTime() - t0) / 1e9, version, port);
    }

    static final java.net.http.HttpClient http = java.net.http.HttpClient.newBuilder()
            .connectTimeout(java.time.Duration.ofSeconds(2)).build();
    static final Pattern tokenField = Pattern.compile("\"fencing_token\"\\s*:\\s*(\\d+)");

    // startJobs starts the jobs app.properties names (see the top).
    static void startJobs(Properties p, String instance) {
        String storage = env("SLIPWAY_STORAGE", ".");
        ScheduledExecutorService jobs = Executors.newScheduledThreadPool(2, r -> {
            Thread t = new Thread(r);
            t.setDaemon(true);
            return t;
        });
        String lease = p.getProperty("leaseJob");
        if (lease != null) {
            String url = env("SLIPWAY_LEASE_URL", "") + "/" + lease + "?ttl=" + p.getProperty("leaseTtl", "3s");
            java.nio.file.Path log = java.nio.file.Paths.get(storage, "lease-" + lease + ".log");
            jobs.scheduleWithFixedDelay(() -> leaseTick(url, log, instance), 0, 200, TimeUnit.MILLISECONDS);
        }
        String runner = p.getProperty("runnerJob");
        if (runner != null) {
            java.nio.file.Path file = java.nio.file.Paths.get(env("SLIPWAY_LEASE_DIR", "."), runner);
            java.nio.file.Path log = java.nio.file.Paths.get(storage, "runner-" + runner + ".log");
            jobs.scheduleWithFixedDelay(() -> runnerTick(file, log, instance), 0, 200, TimeUnit.MILLISECONDS);
        }
    }

    // leaseTick is one run of the lease job: the work counts only if the
    // lease was held from before it began until after it ended.
    static void leaseTick(String url, java.nio.file.Path log, String instance) {
        long token = take(url);
        if (token < 0) return;
        long start = micros();
        sleep(30); // the work
        long end = micros();
        if (take(url) != token) {
            System.out.println("lease lost during the work; refusing it (token " + token + ")");
            return;
        }
        append(log, instance + "," + token + "," + start + "," + end + "\n");
    }

    // take takes or renews the lease at url and returns its fencing token,
    // or -1 if another instance holds it (or the endpoint cannot be reached).
    static long take(String url) {
        try {
            java.net.http.HttpRequest req = java.net.http.HttpRequest.newBuilder(URI.create(url))
                    .timeout(java.time.Duration.ofSeconds(2)).POST(java.net.http.HttpRequest.BodyPublishers.noBody()).build();
            java.net.http.HttpResponse<String> resp = http.send(req, java.net.http.HttpResponse.BodyHandlers.ofString());
            Matcher m = tokenField.matcher(resp.body());
            return resp.statusCode() == 200 && m.find() ? Long.parseLong(m.group(1)) : -1;
        } catch (IOException e) {
            return -1;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return -1;
        }
    }

    // runnerTick is one run of the single runner job.
    static void runnerTick(java.nio.file.Path file, java.nio.file.Path log, String instance) {
        String token = read(file);
        if (token == null) return;
        long start = micros();
        sleep(30); // the work
        long end = micros();
        if (!token.equals(read(file))) return;
        append(log, instance + "," + token + "," + start + "," + end + "\n");
    }

    static String read(java.nio.file.Path f) {
        try {
            return java.nio.file.Files.readString(f).trim();
        } catch (IOException e) {
            return null;
        }
    }

    static void append(java.nio.file.Path log, String line) {
        try {
            java.nio.file.Files.writeString(log, line, java.nio.file.StandardOpenOption.CREATE, java.nio.file.StandardOpenOption.APPEND);
        } catch (IOException e) {
            System.err.println("appending to " + log + ": " + e);
        }
    }

    static long micros() {
        java.time.Instant now = java.time.Instant.now();
        return now.getEpochSecond() * 1_000_000L + now.getNano() / 1000;
    }

    static String env(String k, String d) {
        String v = System.getenv(k);
        return v == null || v.isEmpty() ? d : v;
    }

    static int queryInt(URI u, String key, int d) {
        String q = u.getQuery();
        if (q == null) return d;
        for (String kv : q.split("&")) {
            String[] parts = kv.split("=", 2);
            if (parts.length == 2 && parts[0].equals(key)) return Integer.parseInt(parts[1]);
        }
        return d;
    }

    static void sleep(int ms) {
        try { Thread.sleep(ms); } catch (InterruptedException e) { Thread.currentThread().interrupt(); }
    }

    static void reply(HttpExchange ex, int status, String body) throws IOException {
        byte[] b = body.getBytes(StandardCharsets.UTF_8);
        ex.getResponseHeaders().set("Content-Type", "text/plain; charset=utf-8");
        ex.sendResponseHeaders(status, b.length);
        try (OutputStream os = ex.getResponseBody()) {
            os.write(b);
        }
    }
}
