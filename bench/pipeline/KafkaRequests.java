// The broker's request counters for bench.pipeline: attaches to a local Kafka JVM (its pid is
// the one argument), starts its local JMX agent if needed, and for every line read on stdin
// prints one JSON object: requests per request type (RequestsPerSec's Count, summed over
// versions), the broker's message and byte counters, and the CPU milliseconds of its live
// threads by name with the numbers taken out (keys "cpu:<name>", e.g.
// "cpu:data-plane-kafka-network-thread"). Run as `java KafkaRequests.java PID`.

import com.sun.tools.attach.VirtualMachine;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.lang.management.ManagementFactory;
import java.lang.management.ThreadInfo;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import javax.management.MBeanServerConnection;
import javax.management.ObjectName;
import javax.management.remote.JMXConnector;
import javax.management.remote.JMXConnectorFactory;
import javax.management.remote.JMXServiceURL;

public class KafkaRequests {
    public static void main(String[] args) throws Exception {
        VirtualMachine vm = VirtualMachine.attach(args[0]);
        String address = vm.startLocalManagementAgent();
        vm.detach();
        try (JMXConnector connector = JMXConnectorFactory.connect(new JMXServiceURL(address))) {
            MBeanServerConnection server = connector.getMBeanServerConnection();
            BufferedReader in = new BufferedReader(new InputStreamReader(System.in));
            while (in.readLine() != null) {
                System.out.println(json(counts(server)));
                System.out.flush();
            }
        }
    }

    static Map<String, Long> counts(MBeanServerConnection server) throws Exception {
        Map<String, Long> out = new TreeMap<>();
        add(server, out, "kafka.network:type=RequestMetrics,name=RequestsPerSec,*", "request");
        add(server, out, "kafka.server:type=BrokerTopicMetrics,name=MessagesInPerSec", null);
        add(server, out, "kafka.server:type=BrokerTopicMetrics,name=BytesInPerSec", null);
        add(server, out, "kafka.server:type=BrokerTopicMetrics,name=BytesOutPerSec", null);
        add(server, out, "kafka.server:type=BrokerTopicMetrics,name=TotalFetchRequestsPerSec", null);
        add(server, out, "kafka.server:type=BrokerTopicMetrics,name=TotalProduceRequestsPerSec", null);
        addThreads(server, out);
        return out;
    }

    static void addThreads(MBeanServerConnection server, Map<String, Long> out) throws Exception {
        com.sun.management.ThreadMXBean threads = ManagementFactory.newPlatformMXBeanProxy(
                server, ManagementFactory.THREAD_MXBEAN_NAME, com.sun.management.ThreadMXBean.class);
        long[] ids = threads.getAllThreadIds();
        ThreadInfo[] infos = threads.getThreadInfo(ids);
        long[] nanos = threads.getThreadCpuTime(ids);
        for (int i = 0; i < ids.length; i++) {
            if (infos[i] == null || nanos[i] < 0) {
                continue; // ended meanwhile, or CPU time not measured
            }
            String name = infos[i].getThreadName()
                    .replaceAll("-?ListenerName.*", "")
                    .replaceAll("[0-9]+", "")
                    .replaceAll("[-_ #]+$", "")
                    .replaceAll("--+", "-");
            out.merge("cpu:" + name, nanos[i] / 1_000_000, Long::sum);
        }
    }

    static void add(MBeanServerConnection server, Map<String, Long> out, String pattern, String key)
            throws Exception {
        Set<ObjectName> names = server.queryNames(new ObjectName(pattern), null);
        for (ObjectName name : names) {
            if (name.getKeyProperty("topic") != null) {
                continue;
            }
            String label = key == null ? name.getKeyProperty("name") : name.getKeyProperty(key);
            long count = ((Number) server.getAttribute(name, "Count")).longValue();
            out.merge(label, count, Long::sum);
        }
    }

    static String json(Map<String, Long> counts) {
        StringBuilder sb = new StringBuilder("{");
        for (Map.Entry<String, Long> e : counts.entrySet()) {
            if (sb.length() > 1) {
                sb.append(',');
            }
            sb.append('"').append(e.getKey()).append("\":").append(e.getValue());
        }
        return sb.append('}').toString();
    }
}
