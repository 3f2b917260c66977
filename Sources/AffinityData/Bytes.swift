/// Small byte-level helpers for the readers: splitting, number parsing, UTF-8 checks.
public enum Bytes {
    @inline(__always)
    public static func isASCII(_ s: UnsafeBufferPointer<UInt8>) -> Bool {
        var acc: UInt8 = 0
        for b in s { acc |= b }
        return acc < 0x80
    }

    public static func isValidUTF8(_ s: UnsafeBufferPointer<UInt8>) -> Bool {
        var it = s.makeIterator()
        var decoder = UTF8()
        while true {
            switch decoder.decode(&it) {
            case .scalarValue: continue
            case .emptyInput: return true
            case .error: return false
            }
        }
    }

    /// The field byte ranges of `line` split at every `separator` (empty fields kept).
    @inline(__always)
    public static func split(_ line: UnsafeBufferPointer<UInt8>, separator: UInt8, into fields: inout [Range<Int>]) {
        fields.removeAll(keepingCapacity: true)
        var start = 0
        for i in 0..<line.count where line[i] == separator {
            fields.append(start..<i)
            start = i + 1
        }
        fields.append(start..<line.count)
    }

    /// Splits on runs of ASCII whitespace (no empty fields).
    public static func splitWhitespace(_ line: UnsafeBufferPointer<UInt8>, into fields: inout [Range<Int>]) {
        fields.removeAll(keepingCapacity: true)
        var i = 0
        let n = line.count
        while i < n {
            while i < n && isSpace(line[i]) { i += 1 }
            if i >= n { break }
            let start = i
            while i < n && !isSpace(line[i]) { i += 1 }
            fields.append(start..<i)
        }
    }

    @inline(__always)
    static func isSpace(_ b: UInt8) -> Bool { b == 0x20 || b == 0x09 || b == 0x0B || b == 0x0C || b == 0x0D }

    public static func string(_ line: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) -> String {
        String(decoding: UnsafeBufferPointer(rebasing: line[range]), as: UTF8.self)
    }

    /// Parses a decimal integer (optional sign), or nil.
    @inline(__always)
    public static func parseInt(_ line: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) -> Int? {
        var i = range.lowerBound
        let end = range.upperBound
        guard i < end else { return nil }
        var negative = false
        if line[i] == UInt8(ascii: "-") || line[i] == UInt8(ascii: "+") { negative = line[i] == UInt8(ascii: "-"); i += 1 }
        guard i < end, end - i <= 18 else { return nil }
        var value = 0
        while i < end {
            let d = Int(line[i]) &- 48
            guard d >= 0 && d <= 9 else { return nil }
            value = value * 10 + d
            i += 1
        }
        return negative ? -value : value
    }

    /// Parses a decimal floating-point number (`-1.5`, `3`, `2.5e-3`, `nan`, `inf`), or nil.
    /// Short plain decimals take a fast exact path; anything else goes to the standard library's parser.
    @inline(__always)
    public static func parseDouble(_ line: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) -> Double? {
        var i = range.lowerBound
        let end = range.upperBound
        guard i < end else { return nil }
        var negative = false
        if line[i] == UInt8(ascii: "-") || line[i] == UInt8(ascii: "+") { negative = line[i] == UInt8(ascii: "-"); i += 1 }
        var mantissa: UInt64 = 0
        var digits = 0
        var fractionDigits = 0
        var sawDot = false
        while i < end {
            let b = line[i]
            if b >= 48 && b <= 57 {
                mantissa = mantissa &* 10 &+ UInt64(b - 48)
                digits += 1
                if sawDot { fractionDigits += 1 }
            } else if b == UInt8(ascii: ".") && !sawDot {
                sawDot = true
            } else {
                break
            }
            i += 1
        }
        if i == end && digits > 0 && digits <= 15 && fractionDigits <= 22 {
            // Both the mantissa (< 2^53) and the power of ten are exact doubles: one correctly rounded division.
            let v = fractionDigits == 0 ? Double(mantissa) : Double(mantissa) / powersOfTen[fractionDigits]
            return negative ? -v : v
        }
        return Double(string(line, range))
    }

    private static let powersOfTen: [Double] = (0...22).map { e in
        var p = 1.0
        for _ in 0..<e { p *= 10 }
        return p
    }
}
