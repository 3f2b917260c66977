/// A model's settings as given (config file, then `--set` overrides), read with typed accessors that
/// declare each setting's default. What was read, with the value in effect, is recorded for the run
/// record; a setting nobody read is an error (it is almost always a typo).
public struct Hyperparameters: Sendable {
    private var given: [String: String]
    public private(set) var effective: [String: String] = [:]

    public init(_ given: [String: String] = [:]) { self.given = given }

    public mutating func int(_ key: String, default value: Int) throws -> Int {
        guard let text = given[key] else { effective[key] = String(value); return value }
        guard let v = Int(text) else { throw HyperparameterError.invalid(key, text, "an integer") }
        effective[key] = String(v)
        return v
    }

    public mutating func float(_ key: String, default value: Double) throws -> Double {
        guard let text = given[key] else { effective[key] = String(value); return value }
        guard let v = Double(text), v.isFinite else { throw HyperparameterError.invalid(key, text, "a number") }
        effective[key] = String(v)
        return v
    }

    public mutating func bool(_ key: String, default value: Bool) throws -> Bool {
        guard let text = given[key] else { effective[key] = String(value); return value }
        switch text.lowercased() {
        case "true", "yes", "1": effective[key] = "true"; return true
        case "false", "no", "0": effective[key] = "false"; return false
        default: throw HyperparameterError.invalid(key, text, "true or false")
        }
    }

    public mutating func string(_ key: String, default value: String, allowed: [String]? = nil) throws -> String {
        let v = given[key] ?? value
        if let allowed, !allowed.contains(v) { throw HyperparameterError.invalid(key, v, "one of \(allowed.joined(separator: ", "))") }
        effective[key] = v
        return v
    }

    /// Keys that were given but never read.
    public var unread: [String] { given.keys.filter { effective[$0] == nil }.sorted() }

    /// Fails if any given key was not read by the model.
    public func checkAllRead(model: String) throws {
        if let key = unread.first { throw HyperparameterError.unknown(key, model) }
    }
}

public enum HyperparameterError: Error, CustomStringConvertible {
    case invalid(String, String, String)
    case unknown(String, String)
    case outOfRange(String, String)

    public var description: String {
        switch self {
        case .invalid(let key, let text, let expected): return "setting '\(key)': '\(text)' is not \(expected)"
        case .unknown(let key, let model): return "unknown setting '\(key)' for model '\(model)'"
        case .outOfRange(let key, let why): return "setting '\(key)': \(why)"
        }
    }
}
