import Foundation
import AffinityCore
import AffinityData

/// The framing every Affinity model file shares (`ModelArtifact`, `ContextArtifact`), little-endian:
///
///     magic                 8 bytes   names the kind of file
///     format version        UInt32
///     header length         UInt32    bytes of the JSON header that follows
///     header                JSON
///     body                  binary    as long as the header says
///     CRC-32                UInt32    over every byte before it
///
/// Written atomically (temporary file, fsync, rename). Reading checks magic, version, sizes and checksum before
/// the body is used, so a truncated or corrupted file is an `ArtifactError`, never a crash.
struct FramedFile {
    /// The first 8 bytes.
    let magic: [UInt8]
    let formatVersion: UInt32
    /// What the file holds, for error messages ("model", "click-through model").
    let kind: String

    /// Magic, version and `header` followed by the `bodyBytes` bytes `appendBody` adds, and the checksum.
    func encode(header: some Encodable, bodyBytes: Int, appendBody: (inout [UInt8]) -> Void) throws -> [UInt8] {
        let json = try JSONEncoder().encode(header)
        var bytes: [UInt8] = []
        bytes.reserveCapacity(magic.count + 12 + json.count + bodyBytes)
        bytes += magic
        appendLittleEndian(formatVersion, to: &bytes)
        appendLittleEndian(UInt32(json.count), to: &bytes)
        bytes += json
        appendBody(&bytes)
        let crc = bytes.withUnsafeBytes { CRC32.checksum($0) }
        appendLittleEndian(crc, to: &bytes)
        return bytes
    }

    func write(to path: String, header: some Encodable, bodyBytes: Int, appendBody: (inout [UInt8]) -> Void) throws {
        let bytes = try encode(header: header, bodyBytes: bodyBytes, appendBody: appendBody)
        try bytes.withUnsafeBytes { try DurableFile.write($0, to: path) }
    }

    /// The bytes of the file at `path`.
    static func read(_ path: String) throws -> [UInt8] {
        do { return try DurableFile.read(path) } catch let error as DataError {
            throw ArtifactError(path: path, reason: error.reasonText)
        }
    }

    /// Checks the frame of `bytes` and decodes its header; `bodyBytes` says from the header how long the body must
    /// be (throwing a reason if the header is inconsistent). Returns the header and a cursor at the body's start.
    func decode<Header: Decodable>(_ bytes: [UInt8], path: String, as _: Header.Type,
                                   bodyBytes: (Header) throws -> Int) throws -> (header: Header, body: ByteCursor) {
        func fail(_ why: String) -> ArtifactError { ArtifactError(path: path, reason: why) }
        guard bytes.count >= magic.count + 8, Array(bytes[0..<magic.count]) == magic else {
            throw fail("not an Affinity \(kind) file (bad magic bytes)")
        }
        var cursor = ByteCursor(bytes: bytes, offset: magic.count)
        let version: UInt32 = cursor.scalar()
        guard version == formatVersion else {
            throw fail("unsupported \(kind) format version \(version) (this build reads version \(formatVersion))")
        }
        let headerLength = Int(cursor.scalar() as UInt32)
        guard headerLength <= bytes.count - cursor.offset else {
            throw fail("truncated: header needs \(headerLength) bytes, file has \(bytes.count - cursor.offset) left")
        }
        let header: Header
        do { header = try JSONDecoder().decode(Header.self, from: Data(bytes[cursor.offset..<(cursor.offset + headerLength)])) } catch {
            throw fail("corrupted header (\(error))")
        }
        cursor.offset += headerLength
        let body: Int
        do { body = try bodyBytes(header) } catch let error as ArtifactError { throw fail(error.reason) }
        let expected = cursor.offset + body + 4
        guard bytes.count == expected else {
            throw fail(bytes.count < expected ? "truncated: expected \(expected) bytes, found \(bytes.count)"
                                              : "expected \(expected) bytes, found \(bytes.count) (trailing data)")
        }
        let stored = UInt32(littleEndian: bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: expected - 4, as: UInt32.self) })
        let computed = bytes.withUnsafeBytes { CRC32.checksum(UnsafeRawBufferPointer(rebasing: $0[0..<(expected - 4)])) }
        guard stored == computed else {
            throw fail("checksum mismatch (stored \(hex(stored)), computed \(hex(computed))): the file is corrupted")
        }
        return (header, cursor)
    }

    /// A file whose body is a list of float matrices, their `[rows, cols]` in the header's `shapes`.
    func write(to path: String, header: some ParameterFileHeader, parameters: [Matrix]) throws {
        try write(to: path, header: header, bodyBytes: 4 * parameters.reduce(0) { $0 + $1.storage.count }) { bytes in
            for p in parameters { appendArray(p.storage, to: &bytes) }
        }
    }

    /// Reads a file `write(to:header:parameters:)` wrote: its header and its matrices.
    func decodeParameters<Header: ParameterFileHeader>(_ bytes: [UInt8], path: String,
                                                       as _: Header.Type) throws -> (header: Header, parameters: [Matrix]) {
        var (header, cursor) = try decode(bytes, path: path, as: Header.self) { header in
            guard header.shapes.allSatisfy({ $0.count == 2 && $0[0] >= 0 && $0[1] >= 0 }) else {
                throw ArtifactError(path: path, reason: "corrupted header (parameter shapes)")
            }
            return 4 * header.shapes.reduce(0) { $0 + $1[0] * $1[1] }
        }
        let parameters = header.shapes.map { shape in Matrix(rows: shape[0], cols: shape[1], values: cursor.array(shape[0] * shape[1]) as [Float]) }
        return (header, parameters)
    }
}

/// The header of a file of parameter matrices (sequential and click-through models).
protocol ParameterFileHeader: Codable {
    /// `[rows, cols]` of each parameter, in file order.
    var shapes: [[Int]] { get }
}

private func hex(_ v: UInt32) -> String { "0x" + String(v, radix: 16) }
