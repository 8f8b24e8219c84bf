// A CPU codec's tables on the GPU: the same rotation signs, codebooks and search tables the CPU
// encoder reads (never rebuilt here), copied once into one device allocation.
//
// The fused kernels read reconstruction values as fp16, the tensor cores' operand type. The CPU codecs
// that the kernels run keep their levels and points fp16-exact (ScalarQuantizer::with_half_levels),
// so nothing is rounded here and the GPU decodes exactly the CPU's values; DeviceCodec checks that.
// OCTOPUS points are stored as (x, y | z, 0) halves, the leftover levels as halves; TurboQuant levels
// as pairs indexed by two adjacent codes.
#pragma once

#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "octopus/codecs/octopus.hpp"
#include "octopus/codecs/turboquant.hpp"
#include "octopus/cuda/error.cuh"

namespace octopus::cuda {

/// The index of a candidate slot that pads a group to eight (CodecView::candidates).
inline constexpr std::uint32_t kPaddingCandidate = 0xffffu;

/// Which codec family a DeviceCodec holds.
enum class Scheme : int { turboquant = 0, octopus = 1 };

/// What kernels read: plain device pointers into a DeviceCodec, passed by value.
struct CodecView {
    Scheme scheme = Scheme::turboquant;
    int dim = 0;
    int code_bits = 0;      // bits of one code: a coordinate's for TurboQuant (b), a triplet's for OCTOPUS (B = 3b)
    int leftover_bits = 0;  // OCTOPUS: bits of each of the d mod 3 leftover codes
    int triplets = 0;       // OCTOPUS: ⌊d/3⌋
    int code_bytes = 0;     // codes and padding before the norm
    int record_bytes = 0;   // code_bytes + the norm
    bool norm_fp16 = false;
    const float* signs = nullptr;              // kRotationRounds·dim: the rotation's rounds, round 0 scaled
    const float* scalar_thresholds = nullptr;  // TurboQuant's codebook, or OCTOPUS's leftover codebook
    int scalar_threshold_count = 0;
    const __half* scalar_levels = nullptr;     // each level as a half
    const std::uint32_t* level_pairs = nullptr;  // TurboQuant: entry c = halves (level[c mod 2^b], level[c / 2^b])
    // OCTOPUS's encoder: the nearest-point index of `octopus` (TripletPointTables; candidates set), or
    // the padded searches of `octopus-paper` (TripletTables); then every code's point for the decoders.
    // A candidate is 8 bytes, halves (x, y | z, index), 8 a group: the points are fp16 values and
    // |p|² is recomputed as the CPU computes it, which reads 64 bytes a group where (x, y, z, |p|²)
    // floats and an index read 160 (the lists of 9 bits a triplet are 670 KB that way, far more than
    // an L1). Index 0xffff marks a padding slot, |p|² = +∞.
    octopus::detail::NearestPointView nearest{};
    const uint2* candidates = nullptr;
    bool folded = false;
    const float* ring_table = nullptr;
    const float* row_table = nullptr;
    const float* column_table = nullptr;
    const std::uint32_t* row_base = nullptr;
    int ring_steps = 0, row_steps = 0, column_steps = 0, rows_per_ring = 0;
    const uint2* points = nullptr;  // 2^B entries of halves (x, y | z, 0)
};

/// Owns the device copy of one codec's tables. Build it once per codec (a few kilobytes to 40 KB),
/// keep it for the life of the cache; move-only.
class DeviceCodec {
public:
    /// Copies a TurboQuant codec's rotation and codebook to the current device.
    explicit DeviceCodec(const TurboQuant& codec) {
        view_.scheme = Scheme::turboquant;
        view_.code_bits = static_cast<int>(codec.bits());
        Builder b;
        const Shared shared = add_shared(b, codec, codec.thresholds(), codec.levels(), "turboquant level");
        std::vector<std::uint32_t> pairs;
        const std::size_t n = codec.levels().size();
        for (std::size_t c = 0; c < n * n; ++c)
            pairs.push_back(bits(__halves2half2(__float2half_rn(codec.levels()[c % n]), __float2half_rn(codec.levels()[c / n]))));
        const std::size_t level_pairs = b.add(pairs);
        upload(b, shared);
        view_.level_pairs = at<std::uint32_t>(level_pairs);
    }

    /// Copies an OCTOPUS codec's rotation, triplet encoder tables, points and leftover codebook.
    template <class Design>
    explicit DeviceCodec(const TripletCodec<Design>& codec) {
        const auto& t = codec.tables();
        view_.scheme = Scheme::octopus;
        view_.code_bits = static_cast<int>(codec.bits_per_triplet());
        view_.leftover_bits = static_cast<int>(codec.leftover_bits());
        view_.triplets = static_cast<int>(codec.dim() / 3);
        Builder b;
        const Shared shared =
            add_shared(b, codec, codec.leftover_thresholds(), codec.leftover_levels(), "octopus leftover level");
        std::vector<uint2> points;
        for (const auto& p : t.points) {
            const std::vector<__half> h = halves({p[0], p[1], p[2], 0.0f}, "octopus point");
            points.push_back(uint2{bits(__halves2half2(h[0], h[1])), bits(__halves2half2(h[2], h[3]))});
        }
        const std::size_t point_table = b.add(points);
        if constexpr (std::is_same_v<typename Design::Tables, TripletPointTables>) {
            std::vector<uint2> candidates;
            for (const auto& g : t.index.groups())
                for (int k = 0; k < 8; ++k) {
                    const bool padding = std::isinf(g.sq[k]);
                    octopus::detail::require(padding || g.index[k] < kPaddingCandidate,
                                             "octopus::cuda::DeviceCodec: a point index does not fit 16 bits");
                    const std::vector<__half> h = halves({g.x[k], g.y[k], g.z[k]}, "octopus candidate point");
                    const std::uint32_t index = padding ? kPaddingCandidate : g.index[k];
                    const std::uint32_t z = __half_as_ushort(h[2]);
                    candidates.push_back(uint2{bits(__halves2half2(h[0], h[1])), z | index << 16});
                }
            const std::size_t packed = b.add(candidates), first = b.add(t.index.first_group());
            upload(b, shared);
            view_.nearest = t.index.view();
            view_.nearest.groups = nullptr;  // the GPU reads `candidates` instead
            view_.nearest.first_group = at<std::uint32_t>(first);
            view_.candidates = at<uint2>(packed);
            view_.folded = t.folded;
        } else {
            view_.ring_steps = static_cast<int>(t.ring_steps);
            view_.row_steps = static_cast<int>(t.row_steps);
            view_.column_steps = static_cast<int>(t.column_steps);
            view_.rows_per_ring = static_cast<int>(t.rows_per_ring);
            const std::size_t rings = b.add(t.ring_table), rows = b.add(t.row_table), columns = b.add(t.column_table);
            const std::size_t base = b.add(t.row_base);
            upload(b, shared);
            view_.ring_table = at<float>(rings);
            view_.row_table = at<float>(rows);
            view_.column_table = at<float>(columns);
            view_.row_base = at<std::uint32_t>(base);
        }
        view_.points = at<uint2>(point_table);
    }

    DeviceCodec(DeviceCodec&& other) noexcept : view_(other.view_), memory_(std::exchange(other.memory_, nullptr)) {}
    DeviceCodec& operator=(DeviceCodec&& other) noexcept {
        std::swap(view_, other.view_);
        std::swap(memory_, other.memory_);
        return *this;
    }
    DeviceCodec(const DeviceCodec&) = delete;
    DeviceCodec& operator=(const DeviceCodec&) = delete;
    ~DeviceCodec() {
        if (memory_ != nullptr) cudaFree(memory_);
    }

    const CodecView& view() const { return view_; }
    int dim() const { return view_.dim; }
    int record_bytes() const { return view_.record_bytes; }

private:
    // Sections of one host buffer, each 16-byte aligned, copied in one cudaMemcpy.
    struct Builder {
        std::vector<unsigned char> bytes;
        template <class T>
        std::size_t add(const std::vector<T>& values) {
            const std::size_t offset = (bytes.size() + 15) / 16 * 16;
            bytes.resize(offset + values.size() * sizeof(T));
            if (!values.empty()) std::memcpy(bytes.data() + offset, values.data(), values.size() * sizeof(T));
            return offset;
        }
    };

    /// The values as halves; throws if one is not exactly a half (the CPU codec would then decode
    /// other numbers than the GPU).
    static std::vector<__half> halves(const std::vector<float>& values, const char* what) {
        std::vector<__half> out;
        for (float v : values) {
            const __half h = __float2half_rn(v);
            octopus::detail::require(__half2float(h) == v, std::string("octopus::cuda::DeviceCodec: ") + what + " " +
                                                               std::to_string(v) + " is not exactly an fp16 value");
            out.push_back(h);
        }
        return out;
    }
    static std::uint32_t bits(__half2 pair) {
        std::uint32_t word;
        std::memcpy(&word, &pair, 4);
        return word;
    }

    // What both codec families carry: sizes, the rotation's signs and a scalar codebook (TurboQuant's
    // own, or OCTOPUS's leftover one).
    struct Shared {
        std::size_t signs, thresholds, levels;
        int threshold_count;
    };
    template <class Codec>
    Shared add_shared(Builder& b, const Codec& codec, const std::vector<float>& thresholds,
                      const std::vector<float>& levels, const char* what) {
        view_.dim = static_cast<int>(codec.dim());
        view_.code_bytes = static_cast<int>(codec.code_bytes());
        view_.record_bytes = static_cast<int>(codec.bytes_per_vector());
        view_.norm_fp16 = codec.norm_format() == NormFormat::fp16;
        // The encode kernel copies the thresholds into 15 shared words a warp (kMaxScalarBits).
        octopus::detail::require(thresholds.size() < (std::size_t{1} << octopus::kMaxScalarBits),
                                 "octopus::cuda::DeviceCodec: more scalar thresholds than a 4-bit codebook has");
        return {b.add(codec.rotation().signs()), b.add(thresholds), b.add(halves(levels, what)),
                static_cast<int>(thresholds.size())};
    }

    void upload(const Builder& b, const Shared& shared) {
        OCTOPUS_CUDA_CHECK(cudaMalloc(&memory_, b.bytes.size()));
        OCTOPUS_CUDA_CHECK(cudaMemcpy(memory_, b.bytes.data(), b.bytes.size(), cudaMemcpyHostToDevice));
        view_.signs = at<float>(shared.signs);
        view_.scalar_thresholds = at<float>(shared.thresholds);
        view_.scalar_threshold_count = shared.threshold_count;
        view_.scalar_levels = at<__half>(shared.levels);
    }

    template <class T>
    const T* at(std::size_t offset) const {
        return reinterpret_cast<const T*>(static_cast<const unsigned char*>(memory_) + offset);
    }

    CodecView view_;
    void* memory_ = nullptr;
};

}  // namespace octopus::cuda
