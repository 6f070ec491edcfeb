// Starts DynamoDB Local with its Jetty connector bound to 127.0.0.1 only.
//
// DynamoDB Local has no bind-address option: its DynamoDBProxyServer wraps a Jetty Server built
// with `new Server(port)`, which listens on every interface. This launcher builds the server the
// same way the stock main class does, then sets the host of every ServerConnector to the loopback
// address before starting it. Arguments are the usual DynamoDB Local ones (-port, -inMemory, ...).
// The bind host can be overridden with -Dloopback.host=... (default 127.0.0.1).

import java.lang.reflect.Field;

public final class LoopbackDynamoDB {
    private static final String RUNNER = "software.amazon.dynamodb.services.local.main.ServerRunner";

    private LoopbackDynamoDB() {
    }

    public static void main(String[] args) throws Exception {
        String host = System.getProperty("loopback.host", "127.0.0.1");
        Class<?> runner = Class.forName(RUNNER);
        Object proxy = runner.getMethod("createServerFromCommandLineArgs", String[].class)
                .invoke(null, (Object) args);
        if (proxy == null) {
            System.err.println("LoopbackDynamoDB: could not create the server from " + String.join(" ", args));
            System.exit(2);
        }
        Field serverField = proxy.getClass().getDeclaredField("server");
        serverField.setAccessible(true);
        org.eclipse.jetty.server.Server server = (org.eclipse.jetty.server.Server) serverField.get(proxy);
        int bound = 0;
        for (org.eclipse.jetty.server.Connector connector : server.getConnectors()) {
            if (connector instanceof org.eclipse.jetty.server.ServerConnector) {
                ((org.eclipse.jetty.server.ServerConnector) connector).setHost(host);
                bound++;
            }
        }
        if (bound == 0) {
            System.err.println("LoopbackDynamoDB: no ServerConnector found; refusing to listen on all interfaces");
            System.exit(3);
        }
        try {
            proxy.getClass().getMethod("start").invoke(proxy);
        } catch (java.lang.reflect.InvocationTargetException e) {
            // e.g. the port is taken: exit instead of lingering with Jetty's threads.
            System.err.println("LoopbackDynamoDB: could not start: " + e.getCause());
            e.getCause().printStackTrace();
            System.exit(1);
        }
        System.out.println("LoopbackDynamoDB: listening on " + host + " (" + bound + " connector(s))");
        System.out.flush();
        proxy.getClass().getMethod("join").invoke(proxy);
    }
}
