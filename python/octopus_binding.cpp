// The Python binding (module octopus._octopus, re-exported by the package `octopus`): codecs by name,
// per-head preconditioning and HeadCodec, TurboQuant keys in the scan layout (ScanKeys), on numpy arrays and
// CPU torch tensors.
//
// Arrays travel by DLPack or the buffer protocol: a C-contiguous float32, float16 or bfloat16 input
// (numpy, torch on the CPU, anything nanobind's ndarray takes) is read where it lies, never copied;
// outputs are new numpy arrays, or a caller's C-contiguous array passed as `out`. Batch calls release
// the GIL while they run, so threads can encode and score concurrently (a codec is immutable). Every
// octopus::error surfaces as octopus.error (a ValueError) with the library's message.
#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <octopus/octopus.hpp>
#include <octopus/scan_attention.hpp>

#include <cstdio>
#include <cstring>
#include <optional>
#include <utility>
#include <string>
#include <tuple>
#include <vector>

namespace nb = nanobind;

namespace nanobind::detail {
// Eigen's half and bfloat16 as DLPack's float16 and bfloat16, so arrays of those dtypes map onto them.
template <>
struct dtype_traits<octopus::half> {
    static constexpr dlpack::dtype value{static_cast<std::uint8_t>(dlpack::dtype_code::Float), 16, 1};
    static constexpr auto name = const_name("float16");
};
template <>
struct dtype_traits<octopus::bfloat16> {
    static constexpr dlpack::dtype value{static_cast<std::uint8_t>(dlpack::dtype_code::Bfloat), 16, 1};
    static constexpr auto name = const_name("bfloat16");
};
}  // namespace nanobind::detail

namespace {

using AnyArray = nb::ndarray<nb::ro, nb::device::cpu>;
using ByteArray = nb::ndarray<const std::uint8_t, nb::device::cpu>;
using FloatArray = nb::ndarray<const float, nb::device::cpu>;
using OutFloats = nb::ndarray<float, nb::device::cpu>;
using OutBytes = nb::ndarray<std::uint8_t, nb::device::cpu>;
using NumpyFloats = nb::ndarray<nb::numpy, float>;

void require(bool condition, const std::string& message) { octopus::detail::require(condition, message); }

/// Whether the array's elements lie in C order without gaps (what every call reads and writes).
template <class Array>
bool c_contiguous(const Array& a) {
    std::int64_t expected = 1;
    for (std::size_t i = a.ndim(); i-- > 0;) {
        if (a.shape(i) != 1 && a.stride(i) != expected) return false;
        expected *= static_cast<std::int64_t>(a.shape(i));
    }
    return true;
}

template <class Array>
std::vector<std::size_t> shape_of(const Array& a) {
    std::vector<std::size_t> shape(a.ndim());
    for (std::size_t i = 0; i < a.ndim(); ++i) shape[i] = a.shape(i);
    return shape;
}

std::string shape_text(const std::vector<std::size_t>& shape) {
    std::string text = "(";
    for (std::size_t i = 0; i < shape.size(); ++i) text += (i ? ", " : "") + std::to_string(shape[i]);
    return text + (shape.size() == 1 ? ",)" : ")");
}

/// Checks that `a` is C-contiguous with a last axis of `last` (and at least one axis); returns its shape.
template <class Array>
std::vector<std::size_t> rows_of(const Array& a, std::size_t last, const char* what, const char* unit) {
    const auto shape = shape_of(a);
    require(!shape.empty() && shape.back() == last, std::string(what) + ": shape " + shape_text(shape) +
                                                        " does not end in the " + unit + " " + std::to_string(last));
    require(c_contiguous(a), std::string(what) + ": the array must be C-contiguous (numpy.ascontiguousarray, tensor.contiguous())");
    return shape;
}

/// A new numpy array of `shape`, owning its memory; `data` points at it.
template <class T>
nb::ndarray<nb::numpy, T> new_array(const std::vector<std::size_t>& shape, T*& data) {
    std::size_t count = 1;
    for (std::size_t s : shape) count *= s;
    data = new T[count > 0 ? count : 1];
    nb::capsule owner(data, [](void* p) noexcept { delete[] static_cast<T*>(p); });
    return nb::ndarray<nb::numpy, T>(data, shape.size(), shape.data(), owner);
}

/// Where a call writes: the caller's `out` (checked to have `shape` and be C-contiguous) or a new numpy
/// array of `shape`. Returns the object to hand back and where to write.
template <class T>
std::pair<nb::object, T*> output(std::optional<nb::ndarray<T, nb::device::cpu>>& out, const std::vector<std::size_t>& shape,
                                 const char* what) {
    if (out) {
        require(shape_of(*out) == shape, std::string(what) + ": out has shape " + shape_text(shape_of(*out)) + ", expected " +
                                             shape_text(shape));
        require(c_contiguous(*out), std::string(what) + ": out must be C-contiguous");
        return {nb::cast(*out), out->data()};
    }
    T* data = nullptr;
    nb::object array = nb::cast(new_array<T>(shape, data));
    return {array, data};
}

/// The output of a call that maps each row of `in` (`in_width` wide; `unit` names the width in
/// messages) to a row `out_width` wide: `in` checked by rows_of, then output() for that shape. Returns
/// the object to hand back, where to write and how many elements.
template <class T, class Array>
std::tuple<nb::object, T*, std::size_t> row_output(const Array& in, std::optional<nb::ndarray<T, nb::device::cpu>>& out,
                                                   std::size_t in_width, std::size_t out_width, const char* what, const char* unit) {
    auto shape = rows_of(in, in_width, what, unit);
    shape.back() = out_width;
    auto [result, target] = output(out, shape, what);
    return {result, target, in.size() / in_width * out_width};
}

/// Calls f(std::span<const T>) with the array's elements as float, half or bfloat16.
template <class F>
void with_elements(const AnyArray& a, const char* what, F&& f) {
    const nb::dlpack::dtype type = a.dtype();
    const std::size_t count = a.size();
    if (type == nb::dtype<float>()) return f(std::span<const float>(static_cast<const float*>(a.data()), count));
    if (type == nb::dtype<octopus::half>())
        return f(std::span<const octopus::half>(static_cast<const octopus::half*>(a.data()), count));
    if (type == nb::dtype<octopus::bfloat16>())
        return f(std::span<const octopus::bfloat16>(static_cast<const octopus::bfloat16*>(a.data()), count));
    throw octopus::error(std::string(what) + ": dtype with code " + std::to_string(type.code) + " and " +
                         std::to_string(type.bits) + " bits is not supported; pass float32, float16 or bfloat16");
}

/// The encode of any codec-like object: keys of shape (..., dim) to codes of shape (..., bytes), into
/// `out` when given.
template <class Encode>
nb::object encode_array(const AnyArray& x, std::optional<OutBytes> out, std::size_t dim, std::size_t bytes, const char* what,
                        Encode&& encode) {
    auto [result, target, total] = row_output(x, out, dim, bytes, what, "head dim");
    with_elements(x, what, [&, target = target, total = total](auto elements) {
        nb::gil_scoped_release release;
        encode(elements, std::span<std::uint8_t>(target, total));
    });
    return result;
}

template <class Decode>
nb::object decode_array(const ByteArray& codes, std::optional<OutFloats> out, std::size_t dim, std::size_t bytes, const char* what,
                        Decode&& decode) {
    auto [result, target, total] = row_output(codes, out, bytes, dim, what, "bytes per vector");
    {
        nb::gil_scoped_release release;
        decode(std::span<const std::uint8_t>(codes.data(), codes.size()), std::span<float>(target, total));
    }
    return result;
}

template <class Dot>
nb::object dot_array(const FloatArray& query, const ByteArray& codes, std::optional<OutFloats> out, std::size_t dim,
                     std::size_t bytes, const char* what, Dot&& dot) {
    const auto query_shape = shape_of(query);
    require(query_shape.size() == 1 && query_shape[0] == dim,
            std::string(what) + ": query has shape " + shape_text(query_shape) + ", expected (" + std::to_string(dim) + ",)");
    require(c_contiguous(query), std::string(what) + ": query must be contiguous");
    auto shape = rows_of(codes, bytes, what, "bytes per vector");
    shape.pop_back();
    const std::size_t n = codes.size() / bytes;
    auto [result, target] = output(out, shape, what);
    {
        nb::gil_scoped_release release;
        dot(std::span<const float>(query.data(), dim), std::span<const std::uint8_t>(codes.data(), codes.size()),
            std::span<float>(target, n));
    }
    return result;
}

/// A codec built by name, with the spec it was built from.
struct PyCodec {
    octopus::Codec codec;
    std::string name;
    double bits;
    std::uint64_t seed;
    std::string norm;
};

octopus::NormFormat parse_norm(const std::string& norm) {
    if (norm == "fp32") return octopus::NormFormat::fp32;
    if (norm == "fp16") return octopus::NormFormat::fp16;
    throw octopus::error("norm '" + norm + "' is not one of fp32, fp16");
}

NumpyFloats copy_floats(const std::vector<float>& values) {
    float* data = nullptr;
    NumpyFloats array = new_array<float>(std::vector<std::size_t>{values.size()}, data);
    std::memcpy(data, values.data(), values.size() * sizeof(float));
    return array;
}

std::vector<float> vector_of(const FloatArray& a, std::size_t dim, const char* what) {
    const auto shape = shape_of(a);
    require(shape.size() == 1 && shape[0] == dim && c_contiguous(a),
            std::string(what) + ": expected a contiguous float32 array of shape (" + std::to_string(dim) + ",), got " + shape_text(shape));
    return std::vector<float>(a.data(), a.data() + dim);
}

/// Rows of shape (..., dim) as float32, or an empty span for None.
std::span<const float> optional_rows(const std::optional<FloatArray>& a, std::size_t dim, const char* what) {
    if (!a) return {};
    rows_of(*a, dim, what, "head dim");
    return std::span<const float>(a->data(), a->size());
}

/// HeadCodec's encode_keys and decode_keys (Keys) or encode_values and decode_values.
template <bool Keys>
void bind_head_side(nb::class_<octopus::HeadCodec>& cls, const char* encode_doc, const char* decode_doc) {
    static constexpr const char* encode_name = Keys ? "encode_keys" : "encode_values";
    static constexpr const char* decode_name = Keys ? "decode_keys" : "decode_values";
    const auto bytes = [](const octopus::HeadCodec& h) {
        return (Keys ? h.key_codec() : h.value_codec()).bytes_per_vector();
    };
    cls.def(
        encode_name,
        [bytes](const octopus::HeadCodec& h, const AnyArray& x, std::optional<OutBytes> out) {
            return encode_array(x, std::move(out), h.dim(), bytes(h), encode_name, [&](auto rows, std::span<std::uint8_t> packed) {
                if constexpr (Keys) h.encode_keys(rows, packed);
                else h.encode_values(rows, packed);
            });
        },
        nb::arg(Keys ? "keys" : "values"), nb::arg("out") = nb::none(), encode_doc);
    cls.def(
        decode_name,
        [bytes](const octopus::HeadCodec& h, const ByteArray& codes, std::optional<OutFloats> out) {
            return decode_array(codes, std::move(out), h.dim(), bytes(h), decode_name, [&](auto packed, std::span<float> rows) {
                if constexpr (Keys) h.decode_keys(packed, rows);
                else h.decode_values(packed, rows);
            });
        },
        nb::arg("codes"), nb::arg("out") = nb::none(), decode_doc);
}

}  // namespace

NB_MODULE(_octopus, m) {
    m.doc() = "octopus: KV-cache compression codecs (OCTOPUS, TurboQuant, ...) with per-head preconditioning";
    nb::exception<octopus::error>(m, "error", PyExc_ValueError);

    m.def("codec_names", &octopus::codec_names, "The codec names Codec accepts.");

    nb::class_<PyCodec>(m, "Codec",
                        "A codec of head dim `dim` at `bits` per coordinate (OCTOPUS also takes thirds such as 2.67), "
                        "rotation seed `seed`, norms stored in `norm` ('fp32' or 'fp16'). Immutable; share it across threads.")
        .def(
            "__init__",
            [](PyCodec* self, const std::string& name, std::size_t dim, double bits, std::uint64_t seed, const std::string& norm) {
                new (self) PyCodec{octopus::make_codec(name, {dim, bits, seed, parse_norm(norm)}), name, bits, seed, norm};
            },
            nb::arg("name"), nb::arg("dim"), nb::arg("bits"), nb::arg("seed") = 0, nb::arg("norm") = "fp32")
        .def_prop_ro("name", [](const PyCodec& c) { return c.name; })
        .def_prop_ro("dim", [](const PyCodec& c) { return c.codec.dim(); })
        .def_prop_ro("bits", [](const PyCodec& c) { return c.bits; })
        .def_prop_ro("seed", [](const PyCodec& c) { return c.seed; })
        .def_prop_ro("norm", [](const PyCodec& c) { return c.norm; })
        .def_prop_ro("bits_per_coordinate", [](const PyCodec& c) { return c.codec.bits_per_coordinate(); },
                     "Stored bits per coordinate, norms and padding included.")
        .def_prop_ro("bytes_per_vector", [](const PyCodec& c) { return c.codec.bytes_per_vector(); })
        .def(
            "encode",
            [](const PyCodec& c, const AnyArray& x, std::optional<OutBytes> out) {
                return encode_array(x, std::move(out), c.codec.dim(), c.codec.bytes_per_vector(), "encode",
                                    [&](auto keys, std::span<std::uint8_t> packed) { c.codec.encode(keys, packed); });
            },
            nb::arg("x"), nb::arg("out") = nb::none(),
            "Codes of x, shape (..., dim), float32/float16/bfloat16: uint8 array of shape (..., bytes_per_vector).")
        .def(
            "decode",
            [](const PyCodec& c, const ByteArray& codes, std::optional<OutFloats> out) {
                return decode_array(codes, std::move(out), c.codec.dim(), c.codec.bytes_per_vector(), "decode",
                                    [&](auto packed, std::span<float> keys) { c.codec.decode(packed, keys); });
            },
            nb::arg("codes"), nb::arg("out") = nb::none(), "Vectors of codes (..., bytes_per_vector): float32 (..., dim).")
        .def(
            "dot",
            [](const PyCodec& c, const FloatArray& query, const ByteArray& codes, std::optional<OutFloats> out) {
                return dot_array(query, codes, std::move(out), c.codec.dim(), c.codec.bytes_per_vector(), "dot",
                                 [&](auto q, auto packed, auto scores) { c.codec.dot(q, packed, scores); });
            },
            nb::arg("query"), nb::arg("codes"), nb::arg("out") = nb::none(),
            "query · decoded vector for every code (..., bytes_per_vector), computed from the codes: float32 (...).")
        .def("__repr__", [](const PyCodec& c) {
            char bits[32];
            std::snprintf(bits, sizeof bits, "%g", c.bits);
            return "octopus.Codec('" + c.name + "', dim=" + std::to_string(c.codec.dim()) + ", bits=" + bits +
                   ", seed=" + std::to_string(c.seed) + ", norm='" + c.norm + "')";
        });

    nb::class_<octopus::HeadPreconditioner>(
        m, "Preconditioner",
        "One KV head's preconditioner: keys k -> (k - key_offset) / key_scale, queries q -> q * key_scale, values "
        "v -> v - value_offset (added back after decoding). fit_preconditioner makes one; Preconditioner(dim) is the "
        "identity, and Preconditioner(key_offset, key_scale, value_offset) one of your own.")
        .def(
            "__init__",
            [](octopus::HeadPreconditioner* self, std::size_t dim) { new (self) octopus::HeadPreconditioner(octopus::HeadPreconditioner::identity(dim)); },
            nb::arg("dim"))
        .def(
            "__init__",
            [](octopus::HeadPreconditioner* self, const FloatArray& key_offset, const FloatArray& key_scale, const FloatArray& value_offset) {
                const std::size_t dim = key_offset.ndim() == 1 ? key_offset.shape(0) : 0;
                octopus::HeadPreconditioner p = octopus::HeadPreconditioner::identity(std::max<std::size_t>(dim, 1));
                p.key_offset = vector_of(key_offset, dim, "Preconditioner: key_offset");
                p.key_scale = vector_of(key_scale, dim, "Preconditioner: key_scale");
                p.value_offset = vector_of(value_offset, dim, "Preconditioner: value_offset");
                bool scaled = false, centred = false, values = false;
                for (std::size_t c = 0; c < dim; ++c)
                    scaled |= p.key_scale[c] != 1.0f, centred |= p.key_offset[c] != 0.0f, values |= p.value_offset[c] != 0.0f;
                p.keys = scaled ? octopus::Preconditioning::scale : centred ? octopus::Preconditioning::center : octopus::Preconditioning::none;
                p.center_values = values;
                p.check();
                new (self) octopus::HeadPreconditioner(std::move(p));
            },
            nb::arg("key_offset"), nb::arg("key_scale"), nb::arg("value_offset"))
        .def_prop_ro("dim", &octopus::HeadPreconditioner::dim)
        .def_prop_ro("mode", [](const octopus::HeadPreconditioner& p) { return std::string(octopus::to_string(p.keys)); },
                     "What it does to keys: 'none', 'center' or 'scale'.")
        .def_ro("center_values", &octopus::HeadPreconditioner::center_values)
        .def_prop_ro("key_offset", [](const octopus::HeadPreconditioner& p) { return nb::cast(copy_floats(p.key_offset)); })
        .def_prop_ro("key_scale", [](const octopus::HeadPreconditioner& p) { return nb::cast(copy_floats(p.key_scale)); })
        .def_prop_ro("value_offset", [](const octopus::HeadPreconditioner& p) { return nb::cast(copy_floats(p.value_offset)); })
        .def_prop_ro("stored_bits", &octopus::HeadPreconditioner::stored_bits,
                     "Bits it stores (three fp32 vectors of dim): amortize them over a head's tokens.")
        .def("__repr__", [](const octopus::HeadPreconditioner& p) {
            return "octopus.Preconditioner(dim=" + std::to_string(p.dim()) + ", mode='" + octopus::to_string(p.keys) +
                   "', center_values=" + (p.center_values ? "True" : "False") + ")";
        });

    m.def(
        "fit_preconditioner",
        [](const std::string& mode, const FloatArray& keys, std::optional<FloatArray> values, std::optional<FloatArray> queries,
           std::optional<nb::ndarray<const std::int64_t, nb::device::cpu>> query_positions, const PyCodec* key_codec,
           const PyCodec* value_codec, float attention_scale, std::size_t window) {
            const octopus::Preconditioning parsed = octopus::parse_preconditioning(mode);
            const auto key_shape = shape_of(keys);
            require(key_shape.size() == 2 && c_contiguous(keys),
                    "fit_preconditioner: keys must be a contiguous float32 array of shape (tokens, dim), got " + shape_text(key_shape));
            const std::size_t dim = key_shape[1];
            std::vector<std::size_t> positions;
            if (query_positions) {
                require(query_positions->ndim() == 1 && c_contiguous(*query_positions),
                        "fit_preconditioner: query_positions must be a contiguous int64 array of shape (queries,)");
                for (std::size_t i = 0; i < query_positions->shape(0); ++i) {
                    const std::int64_t p = query_positions->data()[i];
                    require(p >= 0, "fit_preconditioner: query position " + std::to_string(p) + " is negative");
                    positions.push_back(static_cast<std::size_t>(p));
                }
            }
            const octopus::PreconditionerFitData data{dim, std::span<const float>(keys.data(), keys.size()),
                                                      optional_rows(values, dim, "fit_preconditioner: values"),
                                                      optional_rows(queries, dim, "fit_preconditioner: queries"), positions,
                                                      attention_scale, window};
            if (parsed != octopus::Preconditioning::automatic) {
                nb::gil_scoped_release release;
                return octopus::fit_preconditioner(parsed, data);
            }
            require(key_codec != nullptr, "fit_preconditioner: mode 'auto' measures each option through the codecs; pass key_codec");
            const octopus::Codec& k = key_codec->codec;
            const octopus::Codec& v = value_codec != nullptr ? value_codec->codec : k;
            nb::gil_scoped_release release;
            return octopus::fit_preconditioner(parsed, data, k, v);
        },
        nb::arg("mode"), nb::arg("keys"), nb::arg("values") = nb::none(), nb::arg("queries") = nb::none(),
        nb::arg("query_positions") = nb::none(), nb::arg("key_codec") = nb::none(), nb::arg("value_codec") = nb::none(),
        nb::arg("attention_scale") = 0.0f, nb::arg("window") = 0,
        "Fits one KV head's preconditioner on its prompt: keys (tokens, dim) at positions 0..tokens-1, values of the same "
        "shape, queries (rows of any of the group's query heads, (m, dim)) with their positions (a query sees keys up to "
        "its position; None: all). mode: 'none', 'center', 'scale' (needs queries) or 'auto' (needs key_codec; "
        "value_codec defaults to it). attention_scale: the model's softmax scale (0: 1/sqrt(dim)); window: the cache "
        "keeps each query's last `window` keys exact, so auto leaves them uncoded. Fewer than min_fit_tokens keys give "
        "the identity.");
    m.attr("min_fit_tokens") = octopus::kMinFitTokens;

    nb::class_<octopus::ScanKeys>(m, "ScanKeys",
                                  "A growing cache of TurboQuant keys (head dim `dim`, `bits` in 1..4, rotation seed `seed`, "
                                  "norms `norm`) in blocks of 32 tokens, scored by 8-bit table lookups: each score within "
                                  "|k| * max_error(query) of Codec('turboquant', ...).dot.")
        .def(
            "__init__",
            [](octopus::ScanKeys* self, std::size_t dim, double bits, std::uint64_t seed, const std::string& norm) {
                new (self) octopus::ScanKeys(octopus::TurboQuant({dim, bits, seed, parse_norm(norm)}));
            },
            nb::arg("dim"), nb::arg("bits"), nb::arg("seed") = 0, nb::arg("norm") = "fp32")
        .def_prop_ro("dim", &octopus::ScanKeys::dim)
        .def_prop_ro("bits", &octopus::ScanKeys::bits)
        .def_prop_ro("bytes_per_vector", [](const octopus::ScanKeys& k) { return k.codec().bytes_per_vector(); })
        .def("__len__", &octopus::ScanKeys::size)
        .def(
            "append",
            [](octopus::ScanKeys& k, const AnyArray& x) {
                rows_of(x, k.dim(), "ScanKeys.append", "head dim");
                with_elements(x, "ScanKeys.append", [&](auto elements) {
                    nb::gil_scoped_release release;
                    k.append_records(k.codec().encode(elements));
                });
            },
            nb::arg("keys"), "Encodes keys (..., dim), float32/float16/bfloat16, and appends them.")
        .def(
            "append_codes",
            [](octopus::ScanKeys& k, const ByteArray& codes) {
                rows_of(codes, k.codec().bytes_per_vector(), "ScanKeys.append_codes", "bytes per vector");
                k.append_records(std::span<const std::uint8_t>(codes.data(), codes.size()));
            },
            nb::arg("codes"), "Appends TurboQuant codes of the same spec, (..., bytes_per_vector).")
        .def(
            "codes",
            [](const octopus::ScanKeys& k) {
                std::uint8_t* target = nullptr;
                const std::size_t bytes = k.codec().bytes_per_vector();
                nb::ndarray<nb::numpy, std::uint8_t> out = new_array<std::uint8_t>({k.size(), bytes}, target);
                for (std::size_t t = 0; t < k.size(); ++t) k.record(t, std::span<std::uint8_t>(target + t * bytes, bytes));
                return out;
            },
            "Every key's TurboQuant codes, (len, bytes_per_vector): the bytes appended.")
        .def(
            "scores",
            [](const octopus::ScanKeys& k, const FloatArray& query) {
                const auto q = vector_of(query, k.dim(), "ScanKeys.scores");
                float* target = nullptr;
                NumpyFloats out = new_array<float>({k.size()}, target);
                {
                    nb::gil_scoped_release release;
                    octopus::scan_scores(octopus::ScanQuery(k.codec(), q), k, std::span<float>(target, k.size()));
                }
                return out;
            },
            nb::arg("query"), "query . decoded key for every key, from the 8-bit tables: float32 (len,).")
        .def(
            "max_error",
            [](const octopus::ScanKeys& k, const FloatArray& query) {
                return octopus::ScanQuery(k.codec(), vector_of(query, k.dim(), "ScanKeys.max_error")).max_error();
            },
            nb::arg("query"), "The most the tables move a score of this query, per unit of key norm.")
        .def(
            "attend",
            [](const octopus::ScanKeys& k, const FloatArray& queries, const PyCodec& values, const ByteArray& value_codes, float scale,
               int threads) {
                const auto shape = rows_of(queries, k.dim(), "ScanKeys.attend: queries", "head dim");
                rows_of(value_codes, values.codec.bytes_per_vector(), "ScanKeys.attend: value_codes", "bytes per value");
                float* target = nullptr;
                NumpyFloats out = new_array<float>(shape, target);
                {
                    nb::gil_scoped_release release;
                    octopus::decode_attention(k, values.codec, std::span<const float>(queries.data(), queries.size()),
                                              std::span<const std::uint8_t>(value_codes.data(), value_codes.size()), scale,
                                              std::span<float>(target, queries.size()), threads);
                }
                return out;
            },
            nb::arg("queries"), nb::arg("value_codec"), nb::arg("value_codes"), nb::arg("scale"), nb::arg("threads") = 1,
            "softmax(scale * q . K^T) V for the G query rows (G, dim) of one KV head over these keys and as many value codes: "
            "float32 (G, dim).");

    nb::class_<octopus::HeadCodec> head_codec(m, "HeadCodec",
                                   "What one KV head stores its cache with: a key codec, a value codec and a preconditioner; "
                                   "encode, decode, scores and attention in the model's own domain.");
    bind_head_side<true>(head_codec, "Codes of (k - key_offset) / key_scale, (..., key_bytes).",
                         "Decoded keys, restored: key_scale * k' + key_offset.");
    bind_head_side<false>(head_codec, "Codes of v - value_offset, (..., value_bytes).", "Decoded values, restored: v' + value_offset.");
    head_codec.def(
            "__init__",
            [](octopus::HeadCodec* self, const PyCodec& keys, const PyCodec& values, std::optional<octopus::HeadPreconditioner> p) {
                new (self) octopus::HeadCodec(keys.codec, values.codec,
                                              p ? *p : octopus::HeadPreconditioner::identity(keys.codec.dim()));
            },
            nb::arg("key_codec"), nb::arg("value_codec"), nb::arg("preconditioner") = nb::none())
        .def_prop_ro("dim", &octopus::HeadCodec::dim)
        .def_prop_ro("preconditioner", &octopus::HeadCodec::preconditioner)
        .def_prop_ro("key_bytes", [](const octopus::HeadCodec& h) { return h.key_codec().bytes_per_vector(); })
        .def_prop_ro("value_bytes", [](const octopus::HeadCodec& h) { return h.value_codec().bytes_per_vector(); })
        .def(
            "dot",
            [](const octopus::HeadCodec& h, const FloatArray& query, const ByteArray& codes, std::optional<OutFloats> out) {
                return dot_array(query, codes, std::move(out), h.dim(), h.key_codec().bytes_per_vector(), "dot",
                                 [&](auto q, auto packed, auto scores) { h.dot(q, packed, scores); });
            },
            nb::arg("query"), nb::arg("codes"), nb::arg("out") = nb::none(), "query · decoded key for every key code (exact, q·μ included).")
        .def(
            "attend",
            [](const octopus::HeadCodec& h, const FloatArray& queries, const ByteArray& key_codes, const ByteArray& value_codes,
               float scale) {
                const auto shape = rows_of(queries, h.dim(), "attend: queries", "head dim");
                rows_of(key_codes, h.key_codec().bytes_per_vector(), "attend: key_codes", "bytes per key");
                rows_of(value_codes, h.value_codec().bytes_per_vector(), "attend: value_codes", "bytes per value");
                float* target = nullptr;
                NumpyFloats out = new_array<float>(shape, target);
                {
                    nb::gil_scoped_release release;
                    h.attend(std::span<const float>(queries.data(), queries.size()),
                             std::span<const std::uint8_t>(key_codes.data(), key_codes.size()),
                             std::span<const std::uint8_t>(value_codes.data(), value_codes.size()), scale,
                             std::span<float>(target, queries.size()));
                }
                return out;
            },
            nb::arg("queries"), nb::arg("key_codes"), nb::arg("value_codes"), nb::arg("scale"),
            "softmax(scale * q . K^T) V over the coded keys and values, for each query row (..., dim): float32 (..., dim).");
}
