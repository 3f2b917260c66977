import Foundation
import AffinityCore
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Reads NumPy `.npy` files holding a 1-D or 2-D array of float32 or float64 (little-endian, C or
/// Fortran order) into a Float32 `Matrix`. A 1-D array becomes one column.
public enum NPYFile {
    public static func read(path: String) throws -> Matrix {
        let bytes = try readAll(path)
        func fail(_ why: String) -> DataError { DataError(file: path, .invalidFormat(why)) }
        guard !bytes.isEmpty else { throw DataError(file: path, .emptyFile) }
        let magic: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59]  // \x93NUMPY
        guard bytes.count >= 10, Array(bytes[0..<6]) == magic else { throw fail("not a .npy file (bad magic bytes)") }
        let major = bytes[6]
        let headerLength: Int, headerStart: Int
        switch major {
        case 1:
            headerLength = Int(bytes[8]) | Int(bytes[9]) << 8
            headerStart = 10
        case 2, 3:
            guard bytes.count >= 12 else { throw fail("truncated header") }
            headerLength = Int(bytes[8]) | Int(bytes[9]) << 8 | Int(bytes[10]) << 16 | Int(bytes[11]) << 24
            headerStart = 12
        default:
            throw fail("unsupported .npy format version \(major)")
        }
        guard bytes.count >= headerStart + headerLength else { throw fail("truncated header") }
        let header = String(decoding: bytes[headerStart..<(headerStart + headerLength)], as: UTF8.self)
        guard let descr = dictValue(header, key: "descr")?.trimmingCharacters(["'", "\""]) else { throw fail("header has no 'descr'") }
        guard let fortranText = dictValue(header, key: "fortran_order") else { throw fail("header has no 'fortran_order'") }
        guard let shapeText = dictValue(header, key: "shape") else { throw fail("header has no 'shape'") }
        let fortran = fortranText.hasPrefix("True")
        let dims = shapeText.filter { "0123456789,".contains($0) }.split(separator: ",").compactMap { Int($0) }
        guard dims.count == 1 || dims.count == 2 else { throw fail("expected a 1-D or 2-D array, shape is \(shapeText)") }
        let rows = dims[0], cols = dims.count == 2 ? dims[1] : 1
        let elementSize: Int
        switch descr {
        case "<f4", "=f4": elementSize = 4
        case "<f8", "=f8": elementSize = 8
        default: throw fail("unsupported dtype '\(descr)' (expected little-endian float32 '<f4' or float64 '<f8')")
        }
        let dataStart = headerStart + headerLength
        let expected = rows * cols * elementSize
        guard bytes.count - dataStart == expected else {
            throw fail("data size \(bytes.count - dataStart) bytes does not match shape \(rows)×\(cols) of \(descr) (\(expected) bytes)")
        }
        var values = [Float](repeating: 0, count: rows * cols)
        bytes.withUnsafeBytes { raw in
            let base = raw.baseAddress! + dataStart
            for e in 0..<(rows * cols) {
                // Fortran order stores column by column.
                let dst = fortran ? (e % rows) * cols + e / rows : e
                if elementSize == 4 {
                    values[dst] = Float(bitPattern: UInt32(littleEndian: base.loadUnaligned(fromByteOffset: e * 4, as: UInt32.self)))
                } else {
                    values[dst] = Float(Double(bitPattern: UInt64(littleEndian: base.loadUnaligned(fromByteOffset: e * 8, as: UInt64.self))))
                }
            }
        }
        return Matrix(rows: rows, cols: cols, values: values)
    }

    /// Writes a Float32 matrix as a version 1.0 `.npy` file.
    public static func write(_ m: Matrix, path: String) throws {
        var header = "{'descr': '<f4', 'fortran_order': False, 'shape': (\(m.rows), \(m.cols)), }"
        let unpadded = 10 + header.utf8.count + 1
        header += String(repeating: " ", count: (64 - unpadded % 64) % 64) + "\n"
        var bytes: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, 1, 0]
        let len = header.utf8.count
        bytes += [UInt8(len & 0xFF), UInt8(len >> 8)]
        bytes += Array(header.utf8)
        m.storage.withUnsafeBytes { bytes += Array($0) }
        guard let f = fopen(path, "wb") else { throw DataError(file: path, .unreadable("cannot open for writing")) }
        defer { fclose(f) }
        guard fwrite(bytes, 1, bytes.count, f) == bytes.count else { throw DataError(file: path, .unreadable("write failed")) }
    }

    static func readAll(_ path: String) throws -> [UInt8] {
        guard let f = fopen(path, "rb") else {
            throw DataError(file: path, errno == ENOENT ? .fileNotFound : .unreadable(String(cString: strerror(errno))))
        }
        defer { fclose(f) }
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let n = chunk.withUnsafeMutableBytes { fread($0.baseAddress, 1, 1 << 20, f) }
            if n > 0 { out.append(contentsOf: chunk[0..<n]) }
            if n < 1 << 20 { break }
        }
        return out
    }

    /// The text of `key`'s value in a Python dict literal (enough for .npy headers).
    static func dictValue(_ header: String, key: String) -> String? {
        guard let k = header.range(of: "'\(key)'") ?? header.range(of: "\"\(key)\"") else { return nil }
        var rest = header[k.upperBound...].drop { $0 == " " || $0 == ":" }
        if rest.first == "(" {
            guard let close = rest.firstIndex(of: ")") else { return nil }
            return String(rest[...close])
        }
        rest = rest.prefix { $0 != "," && $0 != "}" }
        return String(rest).trimmingCharacters([" "])
    }
}

extension String {
    func trimmingCharacters(_ set: Set<Character>) -> String {
        var s = Substring(self)
        while let f = s.first, set.contains(f) { s.removeFirst() }
        while let l = s.last, set.contains(l) { s.removeLast() }
        return String(s)
    }
}
