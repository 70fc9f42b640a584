// N-API entry points of the torch-cpu addon. JavaScript passes tfjs's typed arrays,
// their shapes and a preallocated output array; every entry point reads its
// arguments, checks their sizes and hands views of that memory to kernels.cc.
#include <node_api.h>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <c10/core/InferenceMode.h>
#include <torch/version.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "kernels.h"
#include "output_slot.h"

namespace torch_cpu {
namespace {

struct TypedArray {
  napi_typedarray_type type;
  void* data;
  size_t length;
  size_t elementBytes;
};

size_t elementBytesOf(napi_typedarray_type type) {
  switch (type) {
    case napi_int8_array:
    case napi_uint8_array:
    case napi_uint8_clamped_array: return 1;
    case napi_int16_array:
    case napi_uint16_array: return 2;
    case napi_int32_array:
    case napi_uint32_array:
    case napi_float32_array: return 4;
    default: return 8;
  }
}

int64_t product(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string shapeText(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); i++) s += (i ? "," : "") + std::to_string(shape[i]);
  return s + "]";
}

class Call {
 public:
  static constexpr size_t kMaxArgs = 16;

  Call(napi_env env, napi_callback_info info) : env_(env) {
    argc_ = kMaxArgs;
    if (napi_get_cb_info(env, info, &argc_, argv_, nullptr, &data_) != napi_ok) {
      throw std::runtime_error("cannot read the call's arguments");
    }
  }

  napi_env env() const { return env_; }
  void* data() const { return data_; }

  bool isNull(size_t i) const {
    napi_valuetype t;
    napi_typeof(env_, arg(i), &t);
    return t == napi_null || t == napi_undefined;
  }

  double number(size_t i, const char* what) const {
    double v;
    if (napi_get_value_double(env_, arg(i), &v) != napi_ok) fail(i, what, "expected a number");
    return v;
  }

  int64_t integer(size_t i, const char* what) const { return static_cast<int64_t>(number(i, what)); }

  bool boolean(size_t i, const char* what) const {
    bool v;
    if (napi_get_value_bool(env_, arg(i), &v) != napi_ok) fail(i, what, "expected a boolean");
    return v;
  }

  std::vector<int64_t> ints(size_t i, const char* what) const {
    uint32_t n;
    if (napi_get_array_length(env_, arg(i), &n) != napi_ok) fail(i, what, "expected an array of integers");
    std::vector<int64_t> out(n);
    for (uint32_t k = 0; k < n; k++) {
      napi_value e;
      int64_t v;
      if (napi_get_element(env_, arg(i), k, &e) != napi_ok || napi_get_value_int64(env_, e, &v) != napi_ok) {
        fail(i, what, "expected an array of integers");
      }
      out[k] = v;
    }
    return out;
  }

  std::vector<int64_t> ints(size_t i, const char* what, size_t count) const {
    std::vector<int64_t> v = ints(i, what);
    if (v.size() != count) fail(i, what, "expected " + std::to_string(count) + " integers, got " + std::to_string(v.size()));
    return v;
  }

  TypedArray typed(size_t i, const char* what) const { return typed(arg(i), i, what); }

  TypedArray typed(napi_value value, size_t i, const char* what) const {
    bool is = false;
    napi_is_typedarray(env_, value, &is);
    if (!is) fail(i, what, "expected a typed array");
    TypedArray t{};
    napi_value buffer;
    size_t offset;
    napi_get_typedarray_info(env_, value, &t.type, &t.length, &t.data, &buffer, &offset);
    t.elementBytes = elementBytesOf(t.type);
    return t;
  }

  /** A Float32Array argument that must hold exactly `count` values. */
  float* floats(size_t i, const char* what, int64_t count) const {
    TypedArray t = typed(i, what);
    if (t.type != napi_float32_array) fail(i, what, "expected a Float32Array");
    if (static_cast<int64_t>(t.length) != count) {
      fail(i, what, "expected " + std::to_string(count) + " values, got " + std::to_string(t.length));
    }
    return static_cast<float*>(t.data);
  }

  float* floatsFor(size_t i, const char* what, const std::vector<int64_t>& shape) const {
    TypedArray t = typed(i, what);
    if (t.type != napi_float32_array) fail(i, what, "expected a Float32Array");
    if (static_cast<int64_t>(t.length) != product(shape)) {
      fail(i, what, "expected " + std::to_string(product(shape)) + " values for shape " + shapeText(shape) + ", got " +
                        std::to_string(t.length));
    }
    return static_cast<float*>(t.data);
  }

  napi_value arg(size_t i) const {
    if (i >= argc_) throw std::invalid_argument("missing argument " + std::to_string(i));
    return argv_[i];
  }

  [[noreturn]] void fail(size_t i, const char* what, const std::string& why) const {
    throw std::invalid_argument("argument " + std::to_string(i) + " (" + what + "): " + why);
  }

 private:
  napi_env env_;
  size_t argc_;
  napi_value argv_[kMaxArgs];
  void* data_ = nullptr;
};

ConvGeometry convGeometry(const Call& c, size_t i) {
  auto g = c.ints(i, "geometry [strideH,strideW,dilationH,dilationW,top,bottom,left,right]", 8);
  return {g[0], g[1], g[2], g[3], g[4], g[5], g[6], g[7]};
}

PoolGeometry poolGeometry(const Call& c, size_t i) {
  auto g = c.ints(i, "pool [filterH,filterW,strideH,strideW,top,bottom,left,right]", 8);
  return {g[0], g[1], g[2], g[3], g[4], g[5], g[6], g[7]};
}

std::vector<int64_t> shape4(const Call& c, size_t i, const char* what) { return c.ints(i, what, 4); }

OutputSlot slotFor(const Call& c, size_t i, const std::vector<int64_t>& shape) {
  float* data = c.floatsFor(i, "out", shape);
  return OutputSlot(data, static_cast<size_t>(product(shape)) * sizeof(float));
}

c10::optional<at::Tensor> optionalDense(const Call& c, size_t values, size_t shape, const char* what) {
  if (c.isNull(values)) return c10::nullopt;
  auto s = c.ints(shape, what);
  return denseView(c.floatsFor(values, what, s), s);
}

// conv2d(x, xShape, filter, filterShape, bias|null, geometry, activation, alpha, out, outShape)
void conv2dEntry(Call& c) {
  auto xs = shape4(c, 1, "x shape"), fs = shape4(c, 3, "filter shape"), os = shape4(c, 9, "out shape");
  c10::optional<at::Tensor> bias;
  if (!c.isNull(4)) bias = denseView(c.floats(4, "bias", fs[3]), {fs[3]});
  OutputSlot out = slotFor(c, 8, os);
  conv2d(nhwcView(c.floatsFor(0, "x", xs), xs), hwioView(c.floatsFor(2, "filter", fs), fs), bias, convGeometry(c, 5),
         static_cast<Activation>(c.integer(6, "activation")), c.number(7, "alpha"), out, os);
}

// conv2dBackpropInput(dy, dyShape, filter, filterShape, inShape, geometry, out)
void conv2dBackpropInputEntry(Call& c) {
  auto dys = shape4(c, 1, "dy shape"), fs = shape4(c, 3, "filter shape"), is = shape4(c, 4, "input shape");
  OutputSlot out = slotFor(c, 6, is);
  conv2dBackpropInput(nhwcView(c.floatsFor(0, "dy", dys), dys), hwioView(c.floatsFor(2, "filter", fs), fs), is,
                      convGeometry(c, 5), out);
}

// conv2dBackpropFilter(x, xShape, dy, dyShape, filterShape, geometry, out)
void conv2dBackpropFilterEntry(Call& c) {
  auto xs = shape4(c, 1, "x shape"), dys = shape4(c, 3, "dy shape"), fs = shape4(c, 4, "filter shape");
  OutputSlot out = slotFor(c, 6, fs);
  conv2dBackpropFilter(nhwcView(c.floatsFor(0, "x", xs), xs), nhwcView(c.floatsFor(2, "dy", dys), dys), fs,
                       convGeometry(c, 5), out);
}

// batchMatMul(a, aShape3, b, bShape3, transposeA, transposeB, bias|null, biasShape, activation, alpha, out, outShape3)
void batchMatMulEntry(Call& c) {
  auto as = c.ints(1, "a shape", 3), bs = c.ints(3, "b shape", 3), os = c.ints(11, "out shape", 3);
  OutputSlot out = slotFor(c, 10, os);
  batchMatMul(denseView(c.floatsFor(0, "a", as), as), denseView(c.floatsFor(2, "b", bs), bs), c.boolean(4, "transposeA"),
              c.boolean(5, "transposeB"), optionalDense(c, 6, 7, "bias"),
              static_cast<Activation>(c.integer(8, "activation")), c.number(9, "alpha"), out, os);
}

// batchNorm(x, channels, mean, variance, scale|null, offset|null, epsilon, out)
void batchNormEntry(Call& c) {
  const int64_t channels = c.integer(1, "channels");
  TypedArray x = c.typed(0, "x");
  const int64_t count = static_cast<int64_t>(x.length);
  if (x.type != napi_float32_array || channels <= 0 || count % channels != 0) {
    c.fail(0, "x", "expected a Float32Array whose length is a multiple of " + std::to_string(channels));
  }
  const float* scale = c.isNull(4) ? nullptr : c.floats(4, "scale", channels);
  const float* offset = c.isNull(5) ? nullptr : c.floats(5, "offset", channels);
  batchNorm(static_cast<float*>(x.data), count, channels, c.floats(2, "mean", channels),
            c.floats(3, "variance", channels), scale, offset, c.number(6, "epsilon"), c.floats(7, "out", count));
}

/** A float array whose length is a positive multiple of `channels`; returns its length. */
int64_t channelRows(const Call& c, size_t i, const char* what, int64_t channels) {
  TypedArray t = c.typed(i, what);
  const int64_t n = static_cast<int64_t>(t.length);
  if (t.type != napi_float32_array || channels <= 0 || n % channels != 0) {
    c.fail(i, what, "expected a Float32Array whose length is a multiple of " + std::to_string(channels));
  }
  return n;
}

// moments(x, channels, mean, variance)
void momentsEntry(Call& c) {
  const int64_t channels = c.integer(1, "channels");
  const int64_t n = channelRows(c, 0, "x", channels);
  moments(c.floats(0, "x", n), n, channels, c.floats(2, "mean", channels), c.floats(3, "variance", channels));
}

/** Float32Arrays of `rows` rows of widths[i] floats each, from the array argument i; a null element when allowed. */
std::vector<float*> rowArrays(const Call& c, size_t i, const char* what, const std::vector<int64_t>& widths,
                              int64_t rows, bool nullable) {
  std::vector<float*> out(widths.size(), nullptr);
  for (size_t k = 0; k < widths.size(); k++) {
    napi_value v;
    napi_get_element(c.env(), c.arg(i), static_cast<uint32_t>(k), &v);
    napi_valuetype type;
    napi_typeof(c.env(), v, &type);
    if (nullable && (type == napi_null || type == napi_undefined)) continue;
    TypedArray t = c.typed(v, i, what);
    if (t.type != napi_float32_array || static_cast<int64_t>(t.length) != rows * widths[k]) {
      c.fail(i, what, "element " + std::to_string(k) + ": expected a Float32Array of " + std::to_string(rows * widths[k]) +
                          " values");
    }
    out[k] = static_cast<float*>(t.data);
  }
  return out;
}

/** The pieces argument i (Float32Arrays) with their channel widths (argument i + 1); sets rows. */
std::vector<ChannelPiece> channelPieces(const Call& c, size_t i, int64_t& rows) {
  uint32_t n = 0;
  if (napi_get_array_length(c.env(), c.arg(i), &n) != napi_ok || n == 0) c.fail(i, "pieces", "expected a non-empty array");
  const std::vector<int64_t> widths = c.ints(i + 1, "piece widths", n);
  napi_value first;
  napi_get_element(c.env(), c.arg(i), 0, &first);
  if (widths[0] <= 0) c.fail(i + 1, "piece widths", "expected positive widths");
  rows = static_cast<int64_t>(c.typed(first, i, "pieces").length) / widths[0];
  for (int64_t w : widths) {
    if (w <= 0) c.fail(i + 1, "piece widths", "expected positive widths");
  }
  const std::vector<float*> data = rowArrays(c, i, "pieces", widths, rows, false);
  std::vector<ChannelPiece> pieces;
  for (size_t k = 0; k < n; k++) pieces.push_back({data[k], widths[k]});
  return pieces;
}

// bnRelu(pieces[], widths[], scale, shift, out)
void bnReluEntry(Call& c) {
  int64_t rows = 0;
  const std::vector<ChannelPiece> pieces = channelPieces(c, 0, rows);
  int64_t channels = 0;
  for (const ChannelPiece& p : pieces) channels += p.width;
  bnRelu(pieces, rows, c.floats(2, "scale", channels), c.floats(3, "shift", channels),
         c.floats(4, "out", rows * channels));
}

// bnReluGrad(pieces[], widths[], dr, gamma, beta, mean, invStd, splitWidths[], dxs[], accs[] (null: none), dGamma, dBeta,
//            pooledH, pooledW): with pooledH > 0, dr is x 2x2 average-pooled (x of height pooledH, width pooledW)
void bnReluGradEntry(Call& c) {
  int64_t rows = 0;
  const std::vector<ChannelPiece> pieces = channelPieces(c, 0, rows);
  int64_t channels = 0;
  for (const ChannelPiece& p : pieces) channels += p.width;
  const std::vector<int64_t> widths = c.ints(7, "split widths");
  for (int64_t w : widths) {
    if (w <= 0) c.fail(7, "split widths", "expected positive widths");
  }
  const std::vector<float*> dxs = rowArrays(c, 8, "dxs", widths, rows, false);
  const std::vector<float*> accs = rowArrays(c, 9, "accs", widths, rows, true);
  std::vector<GradSplit> splits;
  for (size_t k = 0; k < widths.size(); k++) splits.push_back({dxs[k], accs[k], widths[k]});
  const DrRows drRows{c.integer(12, "pooled height"), c.integer(13, "pooled width")};
  if (drRows.h < 0 || drRows.w < 0 || drRows.h % 2 || drRows.w % 2 || (drRows.h > 0 && rows % (drRows.h * drRows.w))) {
    c.fail(12, "pooled height", "expected 0, or even height and width that divide the rows");
  }
  const int64_t drSize = (drRows.h > 0 ? rows / 4 : rows) * channels;
  bnReluGrad(pieces, rows, c.floats(2, "dr", drSize), drRows, c.floats(3, "gamma", channels),
             c.floats(4, "beta", channels), c.floats(5, "mean", channels), c.floats(6, "invStd", channels), splits,
             c.floats(10, "dGamma", channels), c.floats(11, "dBeta", channels));
}

// maxPool / avgPool(x, xShape, pool, out, outShape)
template <void (*Pool)(const at::Tensor&, const PoolGeometry&, OutputSlot&, const std::vector<int64_t>&)>
void poolEntry(Call& c) {
  auto xs = shape4(c, 1, "x shape"), os = shape4(c, 4, "out shape");
  OutputSlot out = slotFor(c, 3, os);
  Pool(nhwcView(c.floatsFor(0, "x", xs), xs), poolGeometry(c, 2), out, os);
}

// maxPoolGrad / avgPoolGrad(dy, dyShape, x, xShape, pool, out)
template <void (*Grad)(const at::Tensor&, const at::Tensor&, const PoolGeometry&, OutputSlot&)>
void poolGradEntry(Call& c) {
  auto dys = shape4(c, 1, "dy shape"), xs = shape4(c, 3, "x shape");
  OutputSlot out = slotFor(c, 5, xs);
  Grad(nhwcView(c.floatsFor(0, "dy", dys), dys), nhwcView(c.floatsFor(2, "x", xs), xs), poolGeometry(c, 4), out);
}

// binary(op, a, aShape, b, bShape, out, outShape)
void binaryEntry(Call& c) {
  auto as = c.ints(2, "a shape"), bs = c.ints(4, "b shape"), os = c.ints(6, "out shape");
  OutputSlot out = slotFor(c, 5, os);
  binary(static_cast<BinaryOp>(c.integer(0, "op")), denseView(c.floatsFor(1, "a", as), as),
         denseView(c.floatsFor(3, "b", bs), bs), out, os);
}

// unary(op, x, alpha, out)
void unaryEntry(Call& c) {
  TypedArray x = c.typed(1, "x");
  if (x.type != napi_float32_array) c.fail(1, "x", "expected a Float32Array");
  const std::vector<int64_t> shape{static_cast<int64_t>(x.length)};
  OutputSlot out = slotFor(c, 3, shape);
  unary(static_cast<UnaryOp>(c.integer(0, "op")), denseView(static_cast<float*>(x.data), shape), c.number(2, "alpha"),
        out);
}

// reduce(op, x, xShape, axes, out, outShape)
void reduceEntry(Call& c) {
  auto xs = c.ints(2, "x shape"), axes = c.ints(3, "axes"), os = c.ints(5, "out shape");
  OutputSlot out = slotFor(c, 4, os);
  reduce(static_cast<ReduceOp>(c.integer(0, "op")), denseView(c.floatsFor(1, "x", xs), xs), axes, out, os);
}

// pad(x, xShape, paddings (before0, after0, before1, ...), value, out, outShape)
void padEntry(Call& c) {
  auto xs = c.ints(1, "x shape"), paddings = c.ints(2, "paddings", 2 * xs.size()), os = c.ints(5, "out shape", xs.size());
  OutputSlot out = slotFor(c, 4, os);
  pad(denseView(c.floatsFor(0, "x", xs), xs), paddings, c.number(3, "value"), out, os);
}

// tile(x, xShape, reps, out, outShape)
void tileEntry(Call& c) {
  auto xs = c.ints(1, "x shape"), reps = c.ints(2, "reps", xs.size()), os = c.ints(4, "out shape", xs.size());
  OutputSlot out = slotFor(c, 3, os);
  tile(denseView(c.floatsFor(0, "x", xs), xs), reps, out, os);
}

// concat(sources[], chunkElements[], rows, out): out row r = source 0 chunk r, source 1 chunk r, ...
void concatEntry(Call& c) {
  uint32_t n = 0;
  if (napi_get_array_length(c.env(), c.arg(0), &n) != napi_ok) c.fail(0, "sources", "expected an array");
  auto chunks = c.ints(1, "chunk sizes", n);
  const int64_t rows = c.integer(2, "rows");
  TypedArray out = c.typed(3, "out");
  std::vector<const uint8_t*> sources(n);
  std::vector<int64_t> chunkBytes(n);
  int64_t total = 0;
  for (uint32_t i = 0; i < n; i++) {
    napi_value v;
    napi_get_element(c.env(), c.arg(0), i, &v);
    TypedArray t = c.typed(v, 0, "sources");
    if (t.type != out.type) c.fail(0, "sources", "source " + std::to_string(i) + " has another element type than out");
    if (static_cast<int64_t>(t.length) != chunks[i] * rows) {
      c.fail(0, "sources", "source " + std::to_string(i) + " has " + std::to_string(t.length) + " values, expected " +
                               std::to_string(chunks[i] * rows));
    }
    sources[i] = static_cast<const uint8_t*>(t.data);
    chunkBytes[i] = chunks[i] * static_cast<int64_t>(t.elementBytes);
    total += chunks[i] * rows;
  }
  if (static_cast<int64_t>(out.length) != total) c.fail(3, "out", "expected " + std::to_string(total) + " values");
  concatRows(sources, chunkBytes, rows, static_cast<uint8_t*>(out.data));
}

// split(x, chunkElements[], rows, outs[]): row r of x = chunk r of out 0, chunk r of out 1, ...
void splitEntry(Call& c) {
  TypedArray x = c.typed(0, "x");
  const int64_t rows = c.integer(2, "rows");
  uint32_t n = 0;
  if (napi_get_array_length(c.env(), c.arg(3), &n) != napi_ok) c.fail(3, "outs", "expected an array");
  auto chunks = c.ints(1, "chunk sizes", n);
  std::vector<uint8_t*> outs(n);
  std::vector<int64_t> chunkBytes(n);
  int64_t total = 0;
  for (uint32_t i = 0; i < n; i++) {
    napi_value v;
    napi_get_element(c.env(), c.arg(3), i, &v);
    TypedArray t = c.typed(v, 3, "outs");
    if (t.type != x.type) c.fail(3, "outs", "out " + std::to_string(i) + " has another element type than x");
    if (static_cast<int64_t>(t.length) != chunks[i] * rows) {
      c.fail(3, "outs", "out " + std::to_string(i) + " has " + std::to_string(t.length) + " values, expected " +
                            std::to_string(chunks[i] * rows));
    }
    outs[i] = static_cast<uint8_t*>(t.data);
    chunkBytes[i] = chunks[i] * static_cast<int64_t>(t.elementBytes);
    total += chunks[i] * rows;
  }
  if (static_cast<int64_t>(x.length) != total) c.fail(0, "x", "expected " + std::to_string(total) + " values");
  splitRows(static_cast<const uint8_t*>(x.data), chunkBytes, rows, outs);
}

// slice(x, shape, begin, size, out)
void sliceEntry(Call& c) {
  TypedArray x = c.typed(0, "x"), out = c.typed(4, "out");
  auto shape = c.ints(1, "shape"), begin = c.ints(2, "begin", shape.size()), size = c.ints(3, "size", shape.size());
  if (static_cast<int64_t>(x.length) != product(shape)) c.fail(0, "x", "length does not match shape " + shapeText(shape));
  if (out.type != x.type || static_cast<int64_t>(out.length) != product(size)) {
    c.fail(4, "out", "expected the element type of x and " + std::to_string(product(size)) + " values");
  }
  for (size_t d = 0; d < shape.size(); d++) {
    if (begin[d] < 0 || size[d] < 0 || begin[d] + size[d] > shape[d]) {
      c.fail(2, "begin", "slice " + shapeText(begin) + " + " + shapeText(size) + " exceeds shape " + shapeText(shape));
    }
  }
  if (product(size) == 0) return;
  sliceCopy(static_cast<const uint8_t*>(x.data), shape, begin, size, static_cast<int64_t>(x.elementBytes),
            static_cast<uint8_t*>(out.data));
}

napi_value number(napi_env env, double v) {
  napi_value r;
  napi_create_double(env, v, &r);
  return r;
}

napi_value setNumThreadsEntry(Call& c) {
  const int64_t n = c.integer(0, "threads");
  if (n < 1) c.fail(0, "threads", "expected a positive integer, got " + std::to_string(n));
  at::set_num_threads(static_cast<int>(n));
  return nullptr;
}

napi_value infoEntry(Call& c) {
  napi_env env = c.env();
  napi_value o, s;
  napi_create_object(env, &o);
  napi_create_string_utf8(env, TORCH_VERSION, NAPI_AUTO_LENGTH, &s);
  napi_set_named_property(env, o, "torchVersion", s);
  napi_set_named_property(env, o, "threads", number(env, at::get_num_threads()));
  const OutputStats& st = outputStats();
  napi_set_named_property(env, o, "zeroCopyOutputs", number(env, static_cast<double>(st.zeroCopy)));
  napi_set_named_property(env, o, "copiedOutputs", number(env, static_cast<double>(st.copied)));
  const std::string parallel = at::get_parallel_info();
  napi_create_string_utf8(env, parallel.c_str(), parallel.size(), &s);
  napi_set_named_property(env, o, "parallelInfo", s);
  return o;
}

struct Method {
  const char* name;
  void (*kernel)(Call&);
  napi_value (*query)(Call&);
};

napi_value dispatch(napi_env env, napi_callback_info info) {
  const Method* method = nullptr;
  try {
    Call call(env, info);
    method = static_cast<const Method*>(call.data());
    c10::InferenceMode guard;
    if (method->query) return method->query(call);
    method->kernel(call);
    return nullptr;
  } catch (const c10::Error& e) {
    napi_throw_error(env, nullptr,
                     (std::string("torch-cpu ") + (method ? method->name : "?") + ": " + e.what_without_backtrace()).c_str());
  } catch (const std::exception& e) {
    napi_throw_error(env, nullptr, (std::string("torch-cpu ") + (method ? method->name : "?") + ": " + e.what()).c_str());
  }
  return nullptr;
}

const Method kMethods[] = {
    {"conv2d", conv2dEntry, nullptr},
    {"conv2dBackpropInput", conv2dBackpropInputEntry, nullptr},
    {"conv2dBackpropFilter", conv2dBackpropFilterEntry, nullptr},
    {"batchMatMul", batchMatMulEntry, nullptr},
    {"batchNorm", batchNormEntry, nullptr},
    {"moments", momentsEntry, nullptr},
    {"bnRelu", bnReluEntry, nullptr},
    {"bnReluGrad", bnReluGradEntry, nullptr},
    {"maxPool", poolEntry<maxPool>, nullptr},
    {"avgPool", poolEntry<avgPool>, nullptr},
    {"maxPoolGrad", poolGradEntry<maxPoolGrad>, nullptr},
    {"avgPoolGrad", poolGradEntry<avgPoolGrad>, nullptr},
    {"binary", binaryEntry, nullptr},
    {"unary", unaryEntry, nullptr},
    {"reduce", reduceEntry, nullptr},
    {"pad", padEntry, nullptr},
    {"tile", tileEntry, nullptr},
    {"concat", concatEntry, nullptr},
    {"slice", sliceEntry, nullptr},
    {"split", splitEntry, nullptr},
    {"setNumThreads", nullptr, setNumThreadsEntry},
    {"info", nullptr, infoEntry},
};

napi_value init(napi_env env, napi_value exports) {
  installAllocatorHook();
  for (const Method& m : kMethods) {
    napi_value fn;
    napi_create_function(env, m.name, NAPI_AUTO_LENGTH, dispatch, const_cast<Method*>(&m), &fn);
    napi_set_named_property(env, exports, m.name, fn);
  }
  return exports;
}

}  // namespace
}  // namespace torch_cpu

NAPI_MODULE(NODE_GYP_MODULE_NAME, torch_cpu::init)
