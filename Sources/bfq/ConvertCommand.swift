import ArgumentParser
import BFQCore

extension TargetDType: ExpressibleByArgument {}
extension NamingScheme: ExpressibleByArgument {}

/// `convert --layout`: GGUF conventions, or a diffusers UNet folder.
enum ConvertLayout: String, ExpressibleByArgument {
    case sdcpp, comfy, diffusers
}

struct ConvertCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "convert",
        abstract: "Convert a checkpoint; the output format comes from OUT's extension.",
        discussion: """
        .safetensors writes safetensors; .ckpt, .pt, .pth and .bin write a PyTorch zip checkpoint that \
        torch.load(weights_only=True) opens. The output is written to a temporary file and renamed into place \
        when complete; the input is never overwritten. Integer and boolean tensors keep their type whatever --dtype says.

        .gguf writes GGUF v3 (read by gguf-py, stable-diffusion.cpp and ComfyUI-GGUF): --type gives the ggml type of \
        the weights, --tensor-type rules override it by name, and tensors the type's blocks do not fit (rows not a \
        multiple of the block), 1-D tensors, and the UNet's conv_in, conv_out and time/label embeddings stay F16 \
        (or the --type when it is F32 or BF16), as the peers keep them. Blocks are the bytes gguf-py's quantize \
        writes, and for the K-quants (which gguf-py cannot write) the bytes of ggml's reference quantizers. \
        --layout sdcpp keeps the names and shapes (stable-diffusion.cpp quantizes no convolution: their \
        rows are the kernel width); --layout comfy follows ComfyUI-GGUF: the UNet alone under bare names, \
        general.architecture, and convolutions and narrow weights flattened to rows of 256 with their shape in \
        comfy.gguf.orig_shape.NAME, so every weight can be quantized. From a .bfq, each quantized layer takes by \
        default the ggml type closest to its levels: TQ2_0 for a ternary (1-bit balanced) layer it holds exactly, \
        else the smallest type with at least log2(levels) bits per weight whose blocks fit. The summary reports \
        the error the quantized tensors add (SQNR against the values converted).

        Folders: --shard-size SIZE (5GB, 500MB, 2GiB, ...) writes OUT as a folder of safetensors shards of at most SIZE \
        bytes and their index, as transformers and diffusers write them (model-00001-of-00003.safetensors and \
        model.safetensors.index.json; one shard is model.safetensors alone). --layout diffusers writes a diffusers UNet \
        folder (config.json and diffusion_pytorch_model.safetensors, sharded with --shard-size) from the UNet of any \
        checkpoint: the config.json it came with when that describes its weights, else one inferred from them. A folder \
        is written whole or not at all; an existing OUT is replaced only when it holds nothing but such files.

        Surgery: --only COMPONENT keeps one part of a full checkpoint under the names its own file has (unet keeps \
        model.diffusion_model. in ldm names and drops a pipeline's unet.; vae and the text encoders drop \
        first_stage_model., cond_stage_model.transformer., conditioner.embedders.N.transformer./model.); --ema puts the \
        EMA weights (model_ema.*) in place of the UNet's, as diffusers' extract_ema does; --prune drops what is not a \
        model weight: EMA copies, schedule buffers (betas, alphas_cumprod, ...) and other entries. Optimizer states \
        beside a state_dict are never read.
        """
    )

    @Argument(help: "Input checkpoint.")
    var input: String

    @Argument(help: "Output path (.safetensors, .ckpt, .pt, .pth, .bin, .gguf, or a folder with --shard-size or --layout diffusers).")
    var output: String

    @Option(help: "Element type of floating-point tensors: keep, f32, f16 or bf16 (not for .gguf: see --type).")
    var dtype: TargetDType?

    @Option(help: ArgumentHelp("GGUF output: ggml type of the weights: f32, f16, bf16, q8_0, q4_0, q4_1, q5_0, q5_1, "
                               + "q2_k, q3_k, q4_k, q5_k, q6_k, tq1_0, tq2_0, or closest (default f16; for a .bfq input "
                               + "closest: each quantized layer takes the type nearest its levels).", valueName: "type"))
    var type: String?

    @Option(name: .customLong("tensor-type"),
            help: ArgumentHelp("GGUF output: PATTERN=TYPE, tensors whose name matches the regular expression take TYPE; "
                               + "repeatable, the first match wins.", valueName: "rule"))
    var tensorTypes: [String] = []

    @Option(help: ArgumentHelp("GGUF output: whose conventions to follow, sdcpp (stable-diffusion.cpp) or comfy "
                               + "(ComfyUI-GGUF); diffusers: write OUT as a diffusers UNet folder."))
    var layout: ConvertLayout?

    @Option(name: .customLong("shard-size"),
            help: ArgumentHelp("Write OUT as a folder of safetensors shards of at most SIZE bytes (5GB, 500MB, 2GiB) and their index.",
                               valueName: "size"))
    var shardSize: String?

    @Option(name: .customLong("unet-config"),
            help: ArgumentHelp("--layout diffusers: the UNet's diffusers config.json to write (default: the one that came with "
                               + "the input, else inferred from the weights).", valueName: "file"))
    var unetConfig: String?

    @Option(help: "Rename the SD UNet's tensors to this scheme: ldm or diffusers.")
    var names: NamingScheme?

    @Option(help: ArgumentHelp("Keep one component: unet, vae, text_encoder, text_encoder_2 or a diffusers pipeline's "
                               + "component; or the tensors whose name starts with PREFIX (e.g. model.diffusion_model.).",
                               valueName: "component|prefix"))
    var only: String?

    @Flag(help: "Take the UNet's EMA weights (model_ema.*) in place of its own, and drop the EMA entries.")
    var ema = false

    @Flag(help: "Drop everything that is not a UNet, VAE or text encoder weight (EMA copies, schedule buffers, other entries).")
    var prune = false

    @Flag(inversion: .prefixedNo,
          help: "Sync the output to disk before renaming it into place, so it survives power loss too (default on).")
    var fsync = true

    func run() throws {
        try reportingErrors {
            let checkpoint = try CheckpointFile.open(input)
            for warning in checkpoint.warnings { printError("bfq: warning: \(warning)") }
            if shardSize != nil || layout == .diffusers || output.hasSuffix("/") { return try writeFolder(checkpoint) }
            if DiffusersFolder.isFolder(output) {
                throw ValidationError("\(output) is a folder: name the output file, or give --shard-size or --layout diffusers")
            }
            let gguf = output.lowercased().hasSuffix(".gguf")
            if gguf, dtype != nil {
                throw GGUFError.badOption("\(output): --dtype does not apply to GGUF outputs; use --type (f32, f16, bf16, q8_0, ...)")
            }
            if !gguf, (try? CheckpointFile.writer(for: output)) == nil {
                throw CheckpointError.unsupportedOutputExtension(path: output, extensions: CheckpointFile.outputExtensions + [".gguf"])
            }
            if !gguf, type != nil || !tensorTypes.isEmpty || layout != nil {
                throw GGUFError.badOption("\(output): --type, --tensor-type and --layout sdcpp|comfy apply to .gguf outputs only")
            }
            // A .bfq's quantized layers take the closest ggml type unless a --type says otherwise.
            let closest = type == "closest" || (type == nil && checkpoint.format == .bfq)
            let options = GGUFWriteOptions(type: closest ? .f16 : try type.map(GGUFWriteOptions.type(named:)) ?? .f16,
                                           closest: closest, rules: try tensorTypes.map(GGUFWriteOptions.Rule.init),
                                           layout: layout == .comfy ? .comfy : .sdcpp)
            let plan = try ConversionPlan(checkpoint, options: ConversionOptions(dtype: dtype ?? .keep, names: names, only: only,
                                                                                 ema: ema, prune: prune),
                                          outputPath: output)
            if let report = plan.surgery { print(report.summary) }
            guard gguf else { return try plan.write(to: output, durable: fsync) }
            let conversion = try GGUFConversion(plan, options: options, outputPath: output)
            let errors = try conversion.write(to: output, durable: fsync)
            print(conversion.summary(errors: errors))
        }
    }

    /// `--shard-size` or `--layout diffusers`: OUT is a folder of safetensors files.
    private func writeFolder(_ checkpoint: Checkpoint) throws {
        let diffusers = layout == .diffusers
        if layout != nil, !diffusers || type != nil || !tensorTypes.isEmpty {
            throw GGUFError.badOption("\(output): --type, --tensor-type and --layout sdcpp|comfy apply to .gguf outputs only")
        }
        let lower = output.lowercased()
        if let extensionFound = (CheckpointFile.outputExtensions + [".gguf"]).first(where: { lower.hasSuffix($0) }) {
            throw ValidationError("\(output): --shard-size and --layout diffusers write a folder; give a folder path, "
                + "not a \(extensionFound) file")
        }
        if diffusers, let only, only != CheckpointComponent.unet.rawValue {
            throw ValidationError("--layout diffusers writes a UNet folder; --only \(only) cannot be one")
        }
        if unetConfig != nil, !diffusers { throw ValidationError("--unet-config applies to --layout diffusers only") }
        if diffusers, names == .ldm { throw ValidationError("--layout diffusers writes diffusers names; --names ldm cannot be one") }
        let options = ConversionOptions(dtype: dtype ?? .keep, names: diffusers ? .diffusers : names,
                                        only: diffusers ? CheckpointComponent.unet.rawValue : only, ema: ema, prune: prune)
        let plan = try ConversionPlan(checkpoint, options: options, outputPath: output)
        let folder = try FolderConversion(plan, shardSize: try shardSize.map(ShardSize.parse), diffusers: diffusers,
                                          unetConfig: unetConfig)
        try folder.write(to: output, durable: fsync)
        if let report = plan.surgery { print(report.summary) }
        print("\(output): " + folder.summary)
    }
}
