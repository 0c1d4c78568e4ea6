/// The parsed header of a GGUF file: metadata in file order, tensor declarations, and where the data section starts.
public struct GGUFFile: Sendable {
    /// One metadata key and its value.
    public struct Entry: Sendable, Equatable {
        public let key: String
        public let value: GGUFValue
    }

    /// One tensor declaration.
    public struct Tensor: Sendable, Equatable {
        public let name: String
        /// Dimensions in ggml order: `dimensions[0]` varies fastest (PyTorch's last dimension).
        public let dimensions: [Int]
        public let type: GGMLType
        /// Offset of the tensor's bytes from the start of the data section.
        public let offset: Int
        /// Bytes the tensor's blocks occupy.
        public let byteCount: Int
        /// The shape in PyTorch order: the dimensions reversed, or the original shape ComfyUI-GGUF recorded for a
        /// tensor it flattened (`comfy.gguf.orig_shape.NAME`).
        public let shape: [Int]

        /// Number of elements.
        public var elementCount: Int { dimensions.reduce(1, *) }
    }

    public let version: UInt32
    public let metadata: [Entry]
    public let tensors: [Tensor]
    /// `general.alignment`, or 32 when the file does not set it.
    public let alignment: Int
    /// Absolute offset of the data section in the file.
    public let dataStart: Int

    /// The value of metadata `key`, if present.
    public func value(_ key: String) -> GGUFValue? {
        metadata.first { $0.key == key }?.value
    }

    /// Metadata key under which ComfyUI-GGUF records the PyTorch shape of a tensor it stored flattened.
    public static func originalShapeKey(_ tensor: String) -> String { "comfy.gguf.orig_shape." + tensor }

    /// The layout convention the file follows: ComfyUI-GGUF's when it names an architecture or records flattened
    /// shapes, stable-diffusion.cpp's (no metadata at all) otherwise.
    public var layout: GGUFLayout {
        metadata.contains { $0.key == "general.architecture" || $0.key.hasPrefix("comfy.gguf.") } ? .comfy : .sdcpp
    }
}

/// The two conventions diffusion GGUF files follow.
public enum GGUFLayout: String, Sendable, CaseIterable {
    /// stable-diffusion.cpp: tensors under their checkpoint names, convolution weights unflattened, no metadata.
    case sdcpp
    /// ComfyUI-GGUF: `general.architecture`, convolution and narrow weights flattened into rows of 256 with their
    /// shape in `comfy.gguf.orig_shape.NAME`.
    case comfy
}
