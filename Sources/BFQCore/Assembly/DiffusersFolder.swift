#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// A diffusers folder opened as one checkpoint. A pipeline folder (`model_index.json`) holds a folder per component;
/// every component with weights joins under `NAME.` (`unet.conv_in.weight`, `vae.encoder.conv_in.weight`,
/// `text_encoder.text_model....`), the names diffusers' single-file pipelines use. A component folder (config.json and
/// its weights, as `UNet2DConditionModel.save_pretrained` writes it) keeps the file's names.
///
/// A component's weights are the first present of diffusers' and transformers' names: diffusion_pytorch_model.safetensors,
/// model.safetensors, diffusion_pytorch_model.bin, pytorch_model.bin, each alone or as a shard index; without any,
/// the one variant present (`diffusion_pytorch_model.fp16.safetensors`, ...). A UNet's config.json is checked against
/// its weights when bfq can read it, and is the configuration `LoadedUNet` runs.
public enum DiffusersFolder {
    /// Weight names in the order diffusers and transformers prefer them.
    static let weightNames = ["diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.safetensors.index.json",
                              "model.safetensors", "model.safetensors.index.json",
                              "diffusion_pytorch_model.bin", "diffusion_pytorch_model.bin.index.json",
                              "pytorch_model.bin", "pytorch_model.bin.index.json"]

    /// Whether `path` is a folder.
    public static func isFolder(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR
    }

    /// Opens the pipeline or component folder at `path`.
    public static func open(_ path: String) throws -> Checkpoint {
        let folder = path.count > 1 && path.hasSuffix("/") ? String(path.dropLast()) : path
        let modelIndex = folder + "/model_index.json"
        if access(modelIndex, F_OK) == 0 { return try openPipeline(folder, modelIndex: modelIndex, path: path) }
        var parts = CheckpointParts()
        let name = CheckpointAssembly.lastComponent(folder)
        guard let component = try addComponent(folder, name: name, className: nil, prefix: "", to: &parts) else {
            throw AssemblyError.notACheckpointFolder(path: path)
        }
        return parts.checkpoint(path: path, assembly: .component(component), unetConfigPath: component.unetConfig)
    }

    private static func openPipeline(_ folder: String, modelIndex: String, path: String) throws -> Checkpoint {
        let file = try MappedFile(path: modelIndex)
        let json: JSONValue
        do { json = try withExtendedLifetime(file) { try JSONParser.parse(file.bytes) } } catch {
            throw AssemblyError.badIndex(path: modelIndex, rule: "\(error)")
        }
        guard let members = json.objectValue else { throw AssemblyError.badIndex(path: modelIndex, rule: "the text is not a JSON object") }
        var parts = CheckpointParts()
        var components: [DiffusersComponent] = []
        var unetConfig: String?
        for member in members where !member.key.hasPrefix("_") {
            // Components are [library, class]; [null, null] marks one left out (safety_checker: None).
            guard let pair = member.value.arrayValue, pair.count == 2, let className = pair[1].stringValue else { continue }
            guard !member.key.contains("/"), member.key != ".", member.key != ".." else {
                throw AssemblyError.badIndex(path: modelIndex, rule: "component name \"\(Formatting.printable(member.key))\" is not a folder name")
            }
            let componentFolder = folder + "/" + member.key
            guard isFolder(componentFolder) else {
                throw AssemblyError.missingComponent(modelIndex: modelIndex, component: member.key, folder: componentFolder)
            }
            guard let component = try addComponent(componentFolder, name: member.key, className: className,
                                                   prefix: member.key + ".", to: &parts) else { continue }
            components.append(component)
            if unetConfig == nil || member.key == "unet" { unetConfig = component.unetConfig ?? unetConfig }
        }
        return parts.checkpoint(path: path, assembly: .pipeline(modelIndex: modelIndex, components: components),
                                unetConfigPath: unetConfig)
    }

    /// Adds the weights of the component in `folder` to `parts`; nil when the folder holds no weights and no model
    /// config (a tokenizer, scheduler or feature extractor).
    private static func addComponent(_ folder: String, name: String, className: String?, prefix: String,
                                     to parts: inout CheckpointParts) throws -> DiffusersComponent? {
        let config = folder + "/config.json"
        let hasConfig = access(config, F_OK) == 0
        guard let weights = try weightFile(in: folder) else {
            guard !hasConfig else { throw AssemblyError.noWeights(folder: folder, found: listing(folder)) }
            return nil
        }
        let weightsPath = folder + "/" + weights
        var part = CheckpointParts()
        var fileCount = 1
        if weights.hasSuffix(".json") {
            let index = try ShardIndex(try MappedFile(path: weightsPath))
            try index.add(to: &part, prefix: "")
            fileCount = index.shards.count
        } else {
            try part.add(try CheckpointParts.openPlain(weightsPath, listedBy: folder))
        }
        var component = DiffusersComponent(name: name, className: className, weights: weights, fileCount: fileCount)
        let alone = part.checkpoint(path: weightsPath, assembly: .component(component))
        if hasConfig, let file = try? MappedFile(path: config), let json = try? withExtendedLifetime(file, { try JSONParser.parse(file.bytes) }) {
            // diffusers names the class in _class_name, transformers in architectures.
            component.className = component.className ?? json["_class_name"]?.stringValue
                ?? json["architectures"]?.arrayValue?.first?.stringValue
            if json["_class_name"]?.stringValue == "UNet2DConditionModel" {
                component.unetConfig = config
                try check(config: json, path: config, against: alone)
            }
        }
        try parts.add(alone, prefix: prefix)
        return component
    }

    /// Refuses a UNet config.json that bfq reads and that disagrees with the weights (another tensor set or shape).
    private static func check(config json: JSONValue, path: String, against weights: Checkpoint) throws {
        guard let config = try? UNetConfig(json: json, path: path) else { return }
        let names = weights.tensors.map(\.name)
        guard UNetNaming.detect(names) != nil else {
            throw AssemblyError.configDisagrees(config: path, weights: weights.path, detail: "no SD UNet tensor names in the weights")
        }
        do {
            try config.check(names: names, shapes: weights.tensors.map(\.shape), path: weights.path)
        } catch let error as UNetError {
            throw AssemblyError.disagreement(config: path, weights: weights.path, error)
        }
    }

    /// The weight file (or shard index) of the component in `folder`, by name, or nil.
    static func weightFile(in folder: String) throws -> String? {
        if let plain = weightNames.first(where: { access(folder + "/" + $0, F_OK) == 0 }) { return plain }
        // Variants: NAME.VARIANT.safetensors / .bin, or NAME.safetensors.index.VARIANT.json; one variant is read.
        var variants: [String: [(file: String, rank: Int)]] = [:]
        for file in listing(folder) {
            for (rank, base) in weightNames.enumerated() {
                let stem = base.replacingOccurrences(of: ".index.json", with: "")
                let dot = stem.lastIndex(of: ".")!
                let name = String(stem[..<dot]), ext = String(stem[dot...])
                let variant: String?
                if base.hasSuffix(".index.json") {
                    variant = file.hasPrefix(stem + ".index.") && file.hasSuffix(".json")
                        ? String(file.dropFirst(stem.count + 7).dropLast(5)) : nil
                } else {
                    variant = file.hasPrefix(name + ".") && file.hasSuffix(ext) ? String(file.dropFirst(name.count + 1).dropLast(ext.count)) : nil
                }
                if let variant, !variant.isEmpty, variant.allSatisfy({ $0 == "_" || $0.isASCII && ($0.isLetter || $0.isNumber) }) {
                    variants[variant, default: []].append((file, rank))
                }
            }
        }
        guard !variants.isEmpty else { return nil }
        guard variants.count == 1, let files = variants.values.first else {
            throw AssemblyError.ambiguousWeights(folder: folder, files: variants.values.flatMap { $0.map(\.file) }.sorted())
        }
        // Within the variant, the order of weightNames.
        return files.min { $0.rank < $1.rank }?.file
    }

    /// The names in `folder`, sorted.
    private static func listing(_ folder: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).sorted()
    }
}
