#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Streams a text file line by line in large chunks, without loading it whole.
///
/// Lines are handed out as byte buffers (valid only during the callback) with their 1-based line
/// number; `\n` and `\r\n` endings are accepted, and a last line without an ending is still a line.
/// Every line is checked to be valid UTF-8 (a fast ASCII test first).
public struct LineReader {
    public let path: String
    private let chunkSize: Int

    public init(path: String, chunkSize: Int = 1 << 22) {
        self.path = path
        self.chunkSize = chunkSize
    }

    /// Calls `body(line, lineNumber)` for every line. Throws `DataError.emptyFile` for a file with no bytes.
    public func forEachLine(_ body: (UnsafeBufferPointer<UInt8>, Int) throws -> Void) throws {
        let fd = open(path, O_RDONLY)
        if fd < 0 {
            let err = errno
            if err == ENOENT || err == ENOTDIR { throw DataError(file: path, .fileNotFound) }
            throw DataError(file: path, .unreadable(String(cString: strerror(err))))
        }
        defer { close(fd) }
        var st = stat()
        if fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR {
            throw DataError(file: path, .unreadable("is a directory"))
        }
        let buffer = UnsafeMutablePointer<UInt8>.allocate(capacity: chunkSize)
        defer { buffer.deallocate() }
        var capacity = chunkSize
        var buf = buffer
        var owned: UnsafeMutablePointer<UInt8>? = nil
        defer { owned?.deallocate() }
        var filled = 0       // bytes held in buf
        var lineNumber = 0
        var sawAnyByte = false
        while true {
            if filled == capacity {
                // A single line longer than the buffer: grow.
                let bigger = UnsafeMutablePointer<UInt8>.allocate(capacity: capacity * 2)
                bigger.update(from: buf, count: filled)
                owned?.deallocate()
                owned = bigger
                buf = bigger
                capacity *= 2
            }
            let n = read(fd, buf + filled, capacity - filled)
            if n < 0 {
                if errno == EINTR { continue }
                throw DataError(file: path, .unreadable(String(cString: strerror(errno))))
            }
            if n > 0 { sawAnyByte = true }
            let end = filled + n
            var start = 0
            // Emit every complete line in buf[0..<end].
            while start < end {
                guard let nl = memchr(buf + start, Int32(UInt8(ascii: "\n")), end - start) else { break }
                let nlIndex = UnsafeMutableRawPointer(mutating: nl).assumingMemoryBound(to: UInt8.self) - buf
                lineNumber += 1
                try emit(buf + start, nlIndex - start, lineNumber, body)
                start = nlIndex + 1
            }
            if n == 0 {
                if start < end {
                    lineNumber += 1
                    try emit(buf + start, end - start, lineNumber, body)
                }
                break
            }
            // Move the incomplete tail to the front.
            let tail = end - start
            if tail > 0 && start > 0 { memmove(buf, buf + start, tail) }
            filled = tail
        }
        if !sawAnyByte { throw DataError(file: path, .emptyFile) }
    }

    @inline(__always)
    private func emit(_ p: UnsafeMutablePointer<UInt8>, _ length: Int, _ lineNumber: Int,
                      _ body: (UnsafeBufferPointer<UInt8>, Int) throws -> Void) throws {
        var len = length
        if len > 0 && p[len - 1] == UInt8(ascii: "\r") { len -= 1 }
        let line = UnsafeBufferPointer(start: p, count: len)
        if !Bytes.isASCII(line) && !Bytes.isValidUTF8(line) {
            throw DataError(file: path, line: lineNumber, .invalidUTF8)
        }
        try body(line, lineNumber)
    }
}
