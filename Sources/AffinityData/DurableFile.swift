#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Whole-file writes that are all-or-nothing: the bytes go to a temporary file beside the target, are
/// flushed to disk, and the temporary file is renamed over the target. A crash at any point leaves either
/// the old file or the new one, never a mixture.
public enum DurableFile {
    public static func write(_ bytes: UnsafeRawBufferPointer, to path: String) throws {
        let temporary = path + ".tmp-\(getpid())"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { throw DataError(file: path, .unwritable("cannot create \(temporary): \(errnoText())")) }
        var written = 0
        while written < bytes.count {
            let n = posixWrite(fd, bytes.baseAddress! + written, bytes.count - written)
            if n < 0 {
                if errno == EINTR { continue }
                let why = errnoText()
                close(fd); unlink(temporary)
                throw DataError(file: path, .unwritable("write failed: \(why)"))
            }
            written += n
        }
        guard fsync(fd) == 0 else {
            let why = errnoText()
            close(fd); unlink(temporary)
            throw DataError(file: path, .unwritable("fsync failed: \(why)"))
        }
        close(fd)
        guard rename(temporary, path) == 0 else {
            let why = errnoText()
            unlink(temporary)
            throw DataError(file: path, .unwritable("rename failed: \(why)"))
        }
        // Persist the rename itself.
        let directory = path.contains("/") ? String(path[..<path.lastIndex(of: "/")!]) : "."
        let dfd = open(directory.isEmpty ? "/" : directory, O_RDONLY)
        if dfd >= 0 { fsync(dfd); close(dfd) }
    }

    /// The whole file's bytes.
    public static func read(_ path: String) throws -> [UInt8] {
        guard let f = fopen(path, "rb") else { throw DataError(file: path, .unreadable(errnoText())) }
        defer { fclose(f) }
        fseek(f, 0, SEEK_END)
        let size = ftell(f)
        fseek(f, 0, SEEK_SET)
        guard size >= 0 else { throw DataError(file: path, .unreadable("cannot determine the file size")) }
        var bytes = [UInt8](repeating: 0, count: size)
        let n = bytes.withUnsafeMutableBytes { fread($0.baseAddress, 1, size, f) }
        guard n == size else { throw DataError(file: path, .unreadable("short read (\(n) of \(size) bytes)")) }
        return bytes
    }

    private static func errnoText() -> String { String(cString: strerror(errno)) }
}

// `write` inside `DurableFile` would name its own static method.
@inline(__always)
private func posixWrite(_ fd: Int32, _ p: UnsafeRawPointer, _ n: Int) -> Int {
    write(fd, p, n)
}
