import ArgumentParser
import BFQCore

extension TargetDType: ExpressibleByArgument {}
extension NamingScheme: ExpressibleByArgument {}
extension GGUFLayout: ExpressibleByArgument {}

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
        """
    )

    @Argument(help: "Input checkpoint.")
    var input: String

    @Argument(help: "Output path (.safetensors, .ckpt, .pt, .pth, .bin, .gguf).")
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

    @Option(help: "GGUF output: whose conventions to follow, sdcpp (stable-diffusion.cpp) or comfy (ComfyUI-GGUF).")
    var layout: GGUFLayout?

    @Option(help: "Rename the SD UNet's tensors to this scheme: ldm or diffusers.")
    var names: NamingScheme?

    @Option(help: ArgumentHelp("Keep only tensors whose name starts with PREFIX (e.g. model.diffusion_model.).",
                               valueName: "prefix"))
    var only: String?

    @Flag(inversion: .prefixedNo,
          help: "Sync the output to disk before renaming it into place, so it survives power loss too (default on).")
    var fsync = true

    func run() throws {
        try reportingErrors {
            let checkpoint = try CheckpointFile.open(input)
            for warning in checkpoint.warnings { printError("bfq: warning: \(warning)") }
            let gguf = output.lowercased().hasSuffix(".gguf")
            if gguf, dtype != nil {
                throw GGUFError.badOption("\(output): --dtype does not apply to GGUF outputs; use --type (f32, f16, bf16, q8_0, ...)")
            }
            if !gguf, (try? CheckpointFile.writer(for: output)) == nil {
                throw CheckpointError.unsupportedOutputExtension(path: output, extensions: CheckpointFile.outputExtensions + [".gguf"])
            }
            if !gguf, type != nil || !tensorTypes.isEmpty || layout != nil {
                throw GGUFError.badOption("\(output): --type, --tensor-type and --layout apply to .gguf outputs only")
            }
            // A .bfq's quantized layers take the closest ggml type unless a --type says otherwise.
            let closest = type == "closest" || (type == nil && checkpoint.format == .bfq)
            let options = GGUFWriteOptions(type: closest ? .f16 : try type.map(GGUFWriteOptions.type(named:)) ?? .f16,
                                           closest: closest, rules: try tensorTypes.map(GGUFWriteOptions.Rule.init),
                                           layout: layout ?? .sdcpp)
            let plan = try ConversionPlan(checkpoint, options: ConversionOptions(dtype: dtype ?? .keep, names: names, only: only),
                                          outputPath: output)
            guard gguf else { return try plan.write(to: output, durable: fsync) }
            let conversion = try GGUFConversion(plan, options: options, outputPath: output)
            let errors = try conversion.write(to: output, durable: fsync)
            print(conversion.summary(errors: errors))
        }
    }
}
