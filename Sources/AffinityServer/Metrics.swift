import Foundation

/// Request counters and latency histograms per route, rendered in Prometheus' text exposition format.
/// A small lock-protected table: the service has a handful of routes.
public final class RequestMetrics: @unchecked Sendable {
    /// Histogram bucket upper bounds, seconds.
    public static let buckets: [Double] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]

    private struct Key: Hashable { let method: String; let route: String; let status: Int }
    private struct Histogram { var counts: [Int]; var sum: Double; var count: Int }

    private let lock = NSLock()
    private var requests: [Key: Int] = [:]
    private var latency: [String: Histogram] = [:]  // "METHOD route"

    public init() {}

    public func record(method: String, route: String, status: Int, seconds: Double) {
        lock.withLock {
            requests[Key(method: method, route: route, status: status), default: 0] += 1
            let name = method + " " + route
            var h = latency[name] ?? Histogram(counts: [Int](repeating: 0, count: Self.buckets.count), sum: 0, count: 0)
            for (b, bound) in Self.buckets.enumerated() where seconds <= bound { h.counts[b] += 1 }
            h.sum += seconds
            h.count += 1
            latency[name] = h
        }
    }

    /// The exposition text, with the service gauges appended.
    public func render(gauges: [(name: String, help: String, value: Double)]) -> String {
        let (requests, latency) = lock.withLock { (self.requests, self.latency) }
        var out = "# HELP affinity_http_requests_total HTTP requests by method, route and status.\n"
        out += "# TYPE affinity_http_requests_total counter\n"
        for (key, n) in requests.sorted(by: { ($0.key.route, $0.key.method, $0.key.status) < ($1.key.route, $1.key.method, $1.key.status) }) {
            out += "affinity_http_requests_total{method=\"\(key.method)\",route=\"\(escape(key.route))\",status=\"\(key.status)\"} \(n)\n"
        }
        out += "# HELP affinity_http_request_duration_seconds Request latency by method and route.\n"
        out += "# TYPE affinity_http_request_duration_seconds histogram\n"
        for (name, h) in latency.sorted(by: { $0.key < $1.key }) {
            let parts = name.split(separator: " ", maxSplits: 1)
            let labels = "method=\"\(parts[0])\",route=\"\(escape(String(parts[1])))\""
            for (b, bound) in Self.buckets.enumerated() {
                out += "affinity_http_request_duration_seconds_bucket{\(labels),le=\"\(bound)\"} \(h.counts[b])\n"
            }
            out += "affinity_http_request_duration_seconds_bucket{\(labels),le=\"+Inf\"} \(h.count)\n"
            out += "affinity_http_request_duration_seconds_sum{\(labels)} \(h.sum)\n"
            out += "affinity_http_request_duration_seconds_count{\(labels)} \(h.count)\n"
        }
        for gauge in gauges {
            out += "# HELP \(gauge.name) \(gauge.help)\n# TYPE \(gauge.name) gauge\n\(gauge.name) \(gauge.value)\n"
        }
        return out
    }

    private func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
    }
}
