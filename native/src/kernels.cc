#include "kernels.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <type_traits>
#include <vector>

namespace torch_cpu {

namespace {

const at::TensorOptions kFloat = at::TensorOptions().dtype(at::kFloat);
constexpr auto kChannelsLast = at::MemoryFormat::ChannelsLast;

// ATen pads symmetrically; the asymmetric rest of tfjs's 'same' padding is explicit.
struct SplitPadding {
  int64_t h, w;                      // symmetric part, given to ATen
  int64_t top, bottom, left, right;  // explicit part
  bool explicitNeeded() const { return top || bottom || left || right; }
};

SplitPadding splitPadding(int64_t top, int64_t bottom, int64_t left, int64_t right) {
  const int64_t h = std::min(top, bottom);
  const int64_t w = std::min(left, right);
  return {h, w, top - h, bottom - h, left - w, right - w};
}

at::Tensor padNhwc(const at::Tensor& x, const SplitPadding& p, double value) {
  if (!p.explicitNeeded()) return x;
  return at::constant_pad_nd(x, {p.left, p.right, p.top, p.bottom}, value).contiguous(kChannelsLast);
}

std::vector<int64_t> nchwOf(const std::vector<int64_t>& nhwc) { return {nhwc[0], nhwc[3], nhwc[1], nhwc[2]}; }

void applyActivation(at::Tensor& y, Activation act, double alpha) {
  switch (act) {
    case Activation::kLinear: return;
    case Activation::kRelu: y.relu_(); return;
    case Activation::kRelu6: y.clamp_(0.0, 6.0); return;
    case Activation::kSigmoid: y.sigmoid_(); return;
    case Activation::kElu: at::elu_(y); return;
    case Activation::kLeakyRelu: at::leaky_relu_(y, alpha); return;
  }
  throw std::invalid_argument("unknown activation code " + std::to_string(static_cast<int>(act)));
}

// Pooling: ATen wants symmetric padding of at most half the window; anything else
// is padded explicitly (with -inf for max so padding never wins, like tfjs).
struct PoolPlan {
  SplitPadding pad;
  bool explicitPad;
};

PoolPlan planPool(const PoolGeometry& p) {
  const bool symmetric = p.padTop == p.padBottom && p.padLeft == p.padRight && 2 * p.padTop <= p.filterH &&
                         2 * p.padLeft <= p.filterW;
  if (symmetric) return {{p.padTop, p.padLeft, 0, 0, 0, 0}, false};
  return {{0, 0, p.padTop, p.padBottom, p.padLeft, p.padRight}, true};
}

at::Tensor cropNhwc(const at::Tensor& t, const SplitPadding& p, int64_t h, int64_t w) {
  if (!p.explicitNeeded()) return t;
  return t.narrow(2, p.top, h).narrow(3, p.left, w);
}

}  // namespace

at::Tensor nhwcView(float* data, const std::vector<int64_t>& nhwc) {
  const int64_t n = nhwc[0], h = nhwc[1], w = nhwc[2], c = nhwc[3];
  return at::from_blob(data, {n, c, h, w}, {h * w * c, 1, w * c, c}, kFloat);
}

at::Tensor hwioView(float* data, const std::vector<int64_t>& hwio) {
  const int64_t kh = hwio[0], kw = hwio[1], ci = hwio[2], co = hwio[3];
  return at::from_blob(data, {co, ci, kh, kw}, {1, co, kw * ci * co, ci * co}, kFloat);
}

at::Tensor denseView(float* data, const std::vector<int64_t>& shape) { return at::from_blob(data, shape, kFloat); }

void conv2d(const at::Tensor& x, const at::Tensor& weight, const c10::optional<at::Tensor>& bias,
            const ConvGeometry& g, Activation act, double alpha, OutputSlot& out,
            const std::vector<int64_t>& outNhwc) {
  const SplitPadding pad = splitPadding(g.padTop, g.padBottom, g.padLeft, g.padRight);
  const at::Tensor input = padNhwc(x, pad, 0.0);
  out.arm();
  // oneDNN directly: ATen's own choice falls back to im2col + BLAS for 1x1 convs on one thread
  // with batches under 16, and Debian's reference BLAS makes that path several times slower.
  at::Tensor y = at::hasMKLDNN()
                     ? at::mkldnn_convolution(input, weight, bias, {pad.h, pad.w}, {g.strideH, g.strideW},
                                              {g.dilationH, g.dilationW}, 1)
                     : at::convolution(input, weight, bias, {g.strideH, g.strideW}, {pad.h, pad.w},
                                       {g.dilationH, g.dilationW}, false, {0, 0}, 1);
  applyActivation(y, act, alpha);
  out.deliver(y, nchwOf(outNhwc), kChannelsLast);
}

void conv2dBackpropInput(const at::Tensor& dy, const at::Tensor& weight, const std::vector<int64_t>& inNhwc,
                         const ConvGeometry& g, OutputSlot& out) {
  const SplitPadding pad = splitPadding(g.padTop, g.padBottom, g.padLeft, g.padRight);
  const int64_t n = inNhwc[0], h = inNhwc[1], w = inNhwc[2], c = inNhwc[3];
  const bool pointwise = weight.size(2) == 1 && weight.size(3) == 1 && g.strideH == 1 && g.strideW == 1 &&
                         g.padTop == 0 && g.padBottom == 0 && g.padLeft == 0 && g.padRight == 0;
  if (pointwise && at::hasMKLDNN()) {
    // A 1x1 conv's input gradient is the 1x1 conv of dy with the transposed weight (see conv2d on
    // why oneDNN is called directly).
    out.arm();
    out.deliver(at::mkldnn_convolution(dy, weight.transpose(0, 1), c10::nullopt, {0, 0}, {1, 1}, {1, 1}, 1),
                {n, c, h, w}, kChannelsLast);
    return;
  }
  // The gradient is taken w.r.t. the explicitly padded input, then cropped. ATen reads
  // only the sizes of `input` for this gradient, so it is left uninitialised.
  const at::Tensor input = at::empty({n, c, h + pad.top + pad.bottom, w + pad.left + pad.right},
                                     kFloat.memory_format(kChannelsLast));
  if (!pad.explicitNeeded()) out.arm();
  auto grads = at::convolution_backward(dy, input, weight, c10::nullopt, {g.strideH, g.strideW}, {pad.h, pad.w},
                                        {g.dilationH, g.dilationW}, false, {0, 0}, 1, {true, false, false});
  out.deliver(cropNhwc(std::get<0>(grads), pad, h, w), {n, c, h, w}, kChannelsLast);
}

void conv2dBackpropFilter(const at::Tensor& x, const at::Tensor& dy, const std::vector<int64_t>& filterHwio,
                          const ConvGeometry& g, OutputSlot& out) {
  const SplitPadding pad = splitPadding(g.padTop, g.padBottom, g.padLeft, g.padRight);
  const at::Tensor input = padNhwc(x, pad, 0.0);
  const int64_t kh = filterHwio[0], kw = filterHwio[1], ci = filterHwio[2], co = filterHwio[3];
  // Only the sizes of the weight matter for its own gradient.
  const at::Tensor weight = at::empty({co, ci, kh, kw}, kFloat.memory_format(kChannelsLast));
  auto grads = at::convolution_backward(dy, input, weight, c10::nullopt, {g.strideH, g.strideW}, {pad.h, pad.w},
                                        {g.dilationH, g.dilationW}, false, {0, 0}, 1, {false, true, false});
  out.arm();
  // [O,I,H,W] -> tfjs's [H,W,I,O]
  at::Tensor hwio = std::get<1>(grads).permute({2, 3, 1, 0}).contiguous();
  out.deliver(hwio, filterHwio);
}

void batchMatMul(const at::Tensor& a, const at::Tensor& b, bool transposeA, bool transposeB,
                 const c10::optional<at::Tensor>& bias, Activation act, double alpha, OutputSlot& out,
                 const std::vector<int64_t>& outShape) {
  const at::Tensor lhs = transposeA ? a.transpose(1, 2) : a;
  const at::Tensor rhs = transposeB ? b.transpose(1, 2) : b;
  out.arm();
  at::Tensor y = (lhs.size(0) == 1 && rhs.size(0) == 1) ? at::mm(lhs[0], rhs[0]).unsqueeze(0) : at::matmul(lhs, rhs);
  if (bias) y.add_(*bias);
  applyActivation(y, act, alpha);
  out.deliver(y, outShape);
}

void batchNorm(const float* x, int64_t count, int64_t channels, const float* mean, const float* variance,
               const float* scale, const float* offset, double epsilon, float* y) {
  std::vector<float> mul(channels), add(channels), centre(channels);
  for (int64_t c = 0; c < channels; c++) {
    mul[c] = static_cast<float>((scale ? scale[c] : 1.0) / std::sqrt(static_cast<double>(variance[c]) + epsilon));
    centre[c] = mean[c];
    add[c] = offset ? offset[c] : 0.0f;
  }
  const int64_t rows = count / channels;
  const int64_t grain = std::max<int64_t>(1, 32768 / std::max<int64_t>(1, channels));
  at::parallel_for(0, rows, grain, [&](int64_t begin, int64_t end) {
    const float* m = centre.data();
    const float* s = mul.data();
    const float* o = add.data();
    for (int64_t r = begin; r < end; r++) {
      const float* xr = x + r * channels;
      float* yr = y + r * channels;
      for (int64_t c = 0; c < channels; c++) yr[c] = (xr[c] - m[c]) * s[c] + o[c];
    }
  });
}

// The per-channel loops below run over rows of `channels` contiguous floats. They are
// built twice (AVX2 and baseline x86-64, picked at load time) so that the inner loop
// over channels vectorises at the machine's width; sums over rows are kept in float
// for blocks of rows and in double across blocks.
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define TORCH_CPU_MULTIVERSION __attribute__((target_clones("avx2", "default")))
#else
#define TORCH_CPU_MULTIVERSION
#endif

namespace {

constexpr int64_t kRowBlock = 64;

int64_t rowGrain(int64_t channels) { return std::max<int64_t>(kRowBlock, 32768 / std::max<int64_t>(1, channels)); }

/** Per-thread double accumulators of `channels` values, summed over threads at the end. */
class ChannelSums {
 public:
  ChannelSums(int64_t channels, int parts)
      : channels_(channels), parts_(parts), sums_(static_cast<size_t>(parts) * channels * 2, 0.0) {}
  double* first(int thread) { return sums_.data() + static_cast<size_t>(thread) * channels_ * 2; }
  double* second(int thread) { return first(thread) + channels_; }
  double total(bool secondSum, int64_t c) const {
    double t = 0;
    for (int p = 0; p < parts_; p++) t += sums_[static_cast<size_t>(p) * channels_ * 2 + (secondSum ? channels_ : 0) + c];
    return t;
  }

 private:
  int64_t channels_;
  int parts_;
  std::vector<double> sums_;
};

// s1 += sum(x - shift), s2 += sum((x - shift)^2) over rows [begin, end).
TORCH_CPU_MULTIVERSION void momentRows(const float* __restrict x, int64_t begin, int64_t end, int64_t channels,
                                       const float* __restrict shift, double* __restrict s1, double* __restrict s2,
                                       float* __restrict b1, float* __restrict b2) {
  for (int64_t block = begin; block < end; block += kRowBlock) {
    const int64_t stop = std::min(end, block + kRowBlock);
    for (int64_t c = 0; c < channels; c++) b1[c] = b2[c] = 0.0f;
    for (int64_t i = block; i < stop; i++) {
      const float* __restrict xi = x + i * channels;
      for (int64_t c = 0; c < channels; c++) {
        const float d = xi[c] - shift[c];
        b1[c] += d;
        b2[c] += d * d;
      }
    }
    for (int64_t c = 0; c < channels; c++) {
      s1[c] += b1[c];
      s2[c] += b2[c];
    }
  }
}

// The BN-ReLU loops read one channel piece at a time: `width` channels per row, from x rows
// `xStride` apart and dr/r rows `stride` apart (the concatenation's width), over one block of
// rows. A piece is often one layer's k new maps, a short row; for the common growth rates
// the width is made a compile-time constant, so each row is whole vectors with no loop set-up.

#define TORCH_CPU_INLINE __attribute__((always_inline))

/** Calls f with the width as a constant for the usual growth rates, else as a plain integer. */
template <typename F>
inline TORCH_CPU_INLINE void withWidth(int64_t width, const F& f) {
  switch (width) {
    case 12: return f(std::integral_constant<int64_t, 12>());
    case 16: return f(std::integral_constant<int64_t, 16>());
    case 24: return f(std::integral_constant<int64_t, 24>());
    case 32: return f(std::integral_constant<int64_t, 32>());
    case 48: return f(std::integral_constant<int64_t, 48>());
    default: return f(width);
  }
}

TORCH_CPU_MULTIVERSION void bnReluRows(const float* __restrict x, int64_t xStride, float* __restrict r,
                                       int64_t stride, int64_t begin, int64_t end, int64_t width,
                                       const float* __restrict scale, const float* __restrict shift) {
  withWidth(width, [&](auto w) TORCH_CPU_INLINE {
    for (int64_t i = begin; i < end; i++) {
      const float* __restrict xi = x + i * xStride;
      float* __restrict ri = r + i * stride;
      for (int64_t c = 0; c < w; c++) {
        const float v = xi[c] * scale[c] + shift[c];
        ri[c] = v < 0.0f ? 0.0f : v;  // NaN stays NaN, like tfjs's relu
      }
    }
  });
}

// sd += sum(dy), sdx += sum(dy * x) over one block of rows, with dy = dr where the forward
// output x * scale + shift was positive (the same float ops as bnReluRows); float partial
// sums in b1, b2, added to the double totals at the end.
TORCH_CPU_MULTIVERSION void gradSumRows(const float* __restrict x, int64_t xStride, const float* __restrict dr,
                                        int64_t stride, const DrRows& drRows, int64_t begin, int64_t end, int64_t width,
                                        const float* __restrict scale, const float* __restrict shift,
                                        double* __restrict sd, double* __restrict sdx, float* __restrict b1,
                                        float* __restrict b2) {
  for (int64_t c = 0; c < width; c++) b1[c] = b2[c] = 0.0f;
  for (int64_t i = begin; i < end; i++) {
    const float* __restrict xi = x + i * xStride;
    const float* __restrict dri = dr + drRows(i) * stride;
    for (int64_t c = 0; c < width; c++) {
      const float dy = xi[c] * scale[c] + shift[c] > 0.0f ? dri[c] : 0.0f;
      b1[c] += dy;
      b2[c] += dy * xi[c];
    }
  }
  for (int64_t c = 0; c < width; c++) {
    sd[c] += b1[c];
    sdx[c] += b2[c];
  }
}

// dx = scale * dy + a * x + b over one block of rows, plus acc where given; dx and acc rows are `width` apart.
TORCH_CPU_MULTIVERSION void gradRows(const float* __restrict x, int64_t xStride, const float* __restrict dr,
                                     int64_t stride, const DrRows& drRows, float* __restrict dx, const float* __restrict acc,
                                     int64_t begin, int64_t end, int64_t width, const float* __restrict scale,
                                     const float* __restrict shift, const float* __restrict a,
                                     const float* __restrict b) {
  const auto rowsWith = [&](auto w, auto withAcc) TORCH_CPU_INLINE {
    for (int64_t i = begin; i < end; i++) {
      const float* __restrict xi = x + i * xStride;
      const float* __restrict dri = dr + drRows(i) * stride;
      const float* __restrict acci = acc + i * w;
      float* __restrict dxi = dx + i * w;
      for (int64_t c = 0; c < w; c++) {
        const float dy = xi[c] * scale[c] + shift[c] > 0.0f ? dri[c] : 0.0f;
        const float g = scale[c] * dy + a[c] * xi[c] + b[c];
        if constexpr (decltype(withAcc)::value) {
          dxi[c] = acci[c] + g;
        } else {
          dxi[c] = g;
        }
      }
    }
  };
  withWidth(width, [&](auto w) TORCH_CPU_INLINE {
    if (acc) {
      rowsWith(w, std::true_type());
    } else {
      rowsWith(w, std::false_type());
    }
  });
}

/** Runs f(begin, end) on blocks of at most kRowBlock rows, in parallel over threads. */
template <typename F>
void forEachRowBlock(int64_t rows, int64_t channels, const F& f) {
  at::parallel_for(0, rows, rowGrain(channels), [&](int64_t begin, int64_t end) {
    for (int64_t block = begin; block < end; block += kRowBlock) f(block, std::min(end, block + kRowBlock));
  });
}

int64_t totalWidth(const std::vector<ChannelPiece>& pieces) {
  int64_t total = 0;
  for (const ChannelPiece& p : pieces) total += p.width;
  return total;
}

/** Where split j of dx reads x: the piece it lies in, from its channel offset there. */
struct SplitSource {
  const float* x;
  int64_t xStride;
  int64_t channel;
};

/** The source of each split; throws unless every split is positive and lies within one piece, and they cover all. */
std::vector<SplitSource> splitSources(const std::vector<ChannelPiece>& pieces, const std::vector<GradSplit>& splits) {
  std::vector<SplitSource> sources;
  int64_t channel = 0;
  size_t piece = 0;
  int64_t pieceStart = 0;
  for (const GradSplit& s : splits) {
    while (piece < pieces.size() && channel >= pieceStart + pieces[piece].width) pieceStart += pieces[piece++].width;
    if (s.width <= 0 || piece == pieces.size() || channel + s.width > pieceStart + pieces[piece].width) {
      throw std::invalid_argument("split widths: each split must be positive and lie within one piece");
    }
    sources.push_back({pieces[piece].data + (channel - pieceStart), pieces[piece].width, channel});
    channel += s.width;
  }
  if (channel != totalWidth(pieces)) {
    throw std::invalid_argument("split widths: expected widths adding up to " + std::to_string(totalWidth(pieces)));
  }
  return sources;
}

}  // namespace

void moments(const float* x, int64_t count, int64_t channels, float* mean, float* variance) {
  const int64_t rows = count / channels;
  // Sums of x - (first row) keep the one-pass variance from cancelling when |mean| >> std.
  const float* shift = x;
  ChannelSums sums(channels, at::get_num_threads());
  at::parallel_for(0, rows, rowGrain(channels), [&](int64_t begin, int64_t end) {
    const int t = at::get_thread_num();
    std::vector<float> b1(channels), b2(channels);
    momentRows(x, begin, end, channels, shift, sums.first(t), sums.second(t), b1.data(), b2.data());
  });
  for (int64_t c = 0; c < channels; c++) {
    const double m1 = sums.total(false, c) / static_cast<double>(rows);
    const double m2 = sums.total(true, c) / static_cast<double>(rows);
    mean[c] = static_cast<float>(shift[c] + m1);
    variance[c] = static_cast<float>(std::max(0.0, m2 - m1 * m1));
  }
}

void bnRelu(const std::vector<ChannelPiece>& pieces, int64_t rows, const float* scale, const float* shift, float* r) {
  const int64_t channels = totalWidth(pieces);
  forEachRowBlock(rows, channels, [&](int64_t begin, int64_t end) {
    int64_t start = 0;
    for (const ChannelPiece& p : pieces) {
      bnReluRows(p.data, p.width, r + start, channels, begin, end, p.width, scale + start, shift + start);
      start += p.width;
    }
  });
}

void bnReluGrad(const std::vector<ChannelPiece>& pieces, int64_t rows, const float* dr, const DrRows& drRows,
                const float* gamma, const float* beta, const float* mean, const float* invStd,
                const std::vector<GradSplit>& splits, float* dGamma, float* dBeta) {
  const int64_t channels = totalWidth(pieces);
  const std::vector<SplitSource> sources = splitSources(pieces, splits);
  // The forward's float32 scale and shift (gamma * invStd, beta - mean * scale) give the same ReLU mask.
  std::vector<float> scale(channels), shift(channels), a(channels), b(channels);
  for (int64_t c = 0; c < channels; c++) {
    scale[c] = gamma[c] * invStd[c];
    shift[c] = beta[c] - mean[c] * scale[c];
  }
  ChannelSums sums(channels, at::get_num_threads());
  std::vector<std::vector<float>> partials(static_cast<size_t>(at::get_num_threads()));
  forEachRowBlock(rows, channels, [&](int64_t begin, int64_t end) {
    const int t = at::get_thread_num();
    std::vector<float>& partial = partials[t];
    partial.resize(2 * channels);
    int64_t start = 0;
    for (const ChannelPiece& p : pieces) {
      gradSumRows(p.data, p.width, dr + start, channels, drRows, begin, end, p.width, scale.data() + start,
                  shift.data() + start, sums.first(t) + start, sums.second(t) + start, partial.data() + start,
                  partial.data() + channels + start);
      start += p.width;
    }
  });
  const double m = static_cast<double>(rows);
  for (int64_t c = 0; c < channels; c++) {
    const double sd = sums.total(false, c), sdx = sums.total(true, c);
    const double g = static_cast<double>(invStd[c]) * (sdx - static_cast<double>(mean[c]) * sd);
    const double s = scale[c];
    const double gOverM = g * invStd[c] / m;
    dGamma[c] = static_cast<float>(g);
    dBeta[c] = static_cast<float>(sd);
    a[c] = static_cast<float>(-s * gOverM);
    b[c] = static_cast<float>(s * (mean[c] * gOverM - sd / m));
  }
  forEachRowBlock(rows, channels, [&](int64_t begin, int64_t end) {
    for (size_t j = 0; j < splits.size(); j++) {
      const SplitSource& src = sources[j];
      const int64_t c = src.channel;
      gradRows(src.x, src.xStride, dr + c, channels, drRows, splits[j].data, splits[j].acc, begin, end, splits[j].width,
               scale.data() + c, shift.data() + c, a.data() + c, b.data() + c);
    }
  });
}

void maxPool(const at::Tensor& x, const PoolGeometry& p, OutputSlot& out, const std::vector<int64_t>& outNhwc) {
  const PoolPlan plan = planPool(p);
  const at::Tensor input = padNhwc(x, plan.pad, -std::numeric_limits<double>::infinity());
  out.arm();
  at::Tensor y = at::max_pool2d(input, {p.filterH, p.filterW}, {p.strideH, p.strideW}, {plan.pad.h, plan.pad.w});
  out.deliver(y, nchwOf(outNhwc), kChannelsLast);
}

void maxPoolGrad(const at::Tensor& dy, const at::Tensor& x, const PoolGeometry& p, OutputSlot& out) {
  const PoolPlan plan = planPool(p);
  const at::Tensor input = padNhwc(x, plan.pad, -std::numeric_limits<double>::infinity());
  // Owning vectors: an IntArrayRef built from a braced list would dangle.
  const std::vector<int64_t> kernel{p.filterH, p.filterW}, stride{p.strideH, p.strideW};
  const std::vector<int64_t> padding{plan.pad.h, plan.pad.w};
  // ATen's backward needs the argmax positions; like tfjs, the first maximum of a window wins.
  auto pooled = at::max_pool2d_with_indices(input, kernel, stride, padding);
  if (!plan.explicitPad) out.arm();
  at::Tensor dx = at::max_pool2d_with_indices_backward(dy, input, kernel, stride, padding, {1, 1}, false,
                                                       std::get<1>(pooled));
  out.deliver(cropNhwc(dx, plan.pad, x.size(2), x.size(3)), x.sizes(), kChannelsLast);
}

void avgPool(const at::Tensor& x, const PoolGeometry& p, OutputSlot& out, const std::vector<int64_t>& outNhwc) {
  const PoolPlan plan = planPool(p);
  if (plan.explicitPad) throw std::invalid_argument("avgPool: asymmetric padding is handled in JS");
  out.arm();
  // tfjs averages over the window's pixels inside the input only.
  at::Tensor y = at::avg_pool2d(x, {p.filterH, p.filterW}, {p.strideH, p.strideW}, {plan.pad.h, plan.pad.w}, false,
                                /*count_include_pad=*/false);
  out.deliver(y, nchwOf(outNhwc), kChannelsLast);
}

void avgPoolGrad(const at::Tensor& dy, const at::Tensor& x, const PoolGeometry& p, OutputSlot& out) {
  const PoolPlan plan = planPool(p);
  if (plan.explicitPad) throw std::invalid_argument("avgPoolGrad: asymmetric padding is handled in JS");
  out.arm();
  // tfjs's gradient divides by the full window size, even where the window overlaps padding.
  at::Tensor dx = at::avg_pool2d_backward(dy, x, {p.filterH, p.filterW}, {p.strideH, p.strideW},
                                          {plan.pad.h, plan.pad.w}, false, true, p.filterH * p.filterW);
  out.deliver(dx, x.sizes(), kChannelsLast);
}

void binary(BinaryOp op, const at::Tensor& a, const at::Tensor& b, OutputSlot& out,
            const std::vector<int64_t>& outShape) {
  out.arm();
  at::Tensor y;
  switch (op) {
    case BinaryOp::kAdd: y = at::add(a, b); break;
    case BinaryOp::kSub: y = at::sub(a, b); break;
    case BinaryOp::kMul: y = at::mul(a, b); break;
    case BinaryOp::kDiv: y = at::div(a, b); break;
    case BinaryOp::kSquaredDifference: y = at::sub(a, b); y.mul_(y); break;
    case BinaryOp::kMaximum: y = at::maximum(a, b); break;
    case BinaryOp::kMinimum: y = at::minimum(a, b); break;
    default: throw std::invalid_argument("unknown binary op code " + std::to_string(static_cast<int>(op)));
  }
  out.deliver(y, outShape);
}

void unary(UnaryOp op, const at::Tensor& x, double alpha, OutputSlot& out) {
  if (op == UnaryOp::kStep) {
    // tfjs: 1 where x > 0, NaN stays NaN, alpha elsewhere.
    const float* src = x.data_ptr<float>();
    float* dst = static_cast<float*>(out.data());
    const float a = static_cast<float>(alpha);
    at::parallel_for(0, x.numel(), 32768, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; i++) dst[i] = src[i] > 0.0f ? 1.0f : (std::isnan(src[i]) ? src[i] : a);
    });
    return;
  }
  out.arm();
  at::Tensor y;
  switch (op) {
    case UnaryOp::kRelu: y = at::relu(x); break;
    case UnaryOp::kRelu6: y = at::clamp(x, 0.0, 6.0); break;
    case UnaryOp::kSigmoid: y = at::sigmoid(x); break;
    case UnaryOp::kNeg: y = at::neg(x); break;
    case UnaryOp::kSquare: y = at::square(x); break;
    default: throw std::invalid_argument("unknown unary op code " + std::to_string(static_cast<int>(op)));
  }
  out.deliver(y, x.sizes());
}

void pad(const at::Tensor& x, const std::vector<int64_t>& paddings, double value, OutputSlot& out,
         const std::vector<int64_t>& outShape) {
  // ATen lists the last axis first.
  std::vector<int64_t> atenPad;
  for (int64_t d = x.dim() - 1; d >= 0; d--) {
    atenPad.push_back(paddings[2 * d]);
    atenPad.push_back(paddings[2 * d + 1]);
  }
  out.arm();
  out.deliver(at::constant_pad_nd(x, atenPad, value), outShape);
}

void tile(const at::Tensor& x, const std::vector<int64_t>& reps, OutputSlot& out, const std::vector<int64_t>& outShape) {
  out.arm();
  out.deliver(x.repeat(reps), outShape);
}

void reduce(ReduceOp op, const at::Tensor& x, const std::vector<int64_t>& axes, OutputSlot& out,
            const std::vector<int64_t>& outShape) {
  out.arm();
  at::Tensor y;
  switch (op) {
    case ReduceOp::kSum: y = at::sum(x, axes); break;
    case ReduceOp::kMean: y = at::mean(x, axes); break;
    case ReduceOp::kMax: y = at::amax(x, axes); break;
    default: throw std::invalid_argument("unknown reduction code " + std::to_string(static_cast<int>(op)));
  }
  out.deliver(y.reshape(outShape), outShape);
}

void concatRows(const std::vector<const uint8_t*>& sources, const std::vector<int64_t>& chunkBytes, int64_t rows,
                uint8_t* dst) {
  int64_t rowBytes = 0;
  for (int64_t b : chunkBytes) rowBytes += b;
  const int64_t grain = std::max<int64_t>(1, (1 << 17) / std::max<int64_t>(1, rowBytes));
  at::parallel_for(0, rows, grain, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; r++) {
      uint8_t* d = dst + r * rowBytes;
      for (size_t i = 0; i < sources.size(); i++) {
        std::memcpy(d, sources[i] + r * chunkBytes[i], chunkBytes[i]);
        d += chunkBytes[i];
      }
    }
  });
}

void splitRows(const uint8_t* src, const std::vector<int64_t>& chunkBytes, int64_t rows,
               const std::vector<uint8_t*>& destinations) {
  int64_t rowBytes = 0;
  for (int64_t b : chunkBytes) rowBytes += b;
  const int64_t grain = std::max<int64_t>(1, (1 << 17) / std::max<int64_t>(1, rowBytes));
  at::parallel_for(0, rows, grain, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; r++) {
      const uint8_t* s = src + r * rowBytes;
      for (size_t i = 0; i < destinations.size(); i++) {
        std::memcpy(destinations[i] + r * chunkBytes[i], s, chunkBytes[i]);
        s += chunkBytes[i];
      }
    }
  });
}

void sliceCopy(const uint8_t* src, const std::vector<int64_t>& shape, const std::vector<int64_t>& begin,
               const std::vector<int64_t>& size, int64_t elementBytes, uint8_t* dst) {
  const int64_t rank = static_cast<int64_t>(shape.size());
  if (rank == 0) {
    std::memcpy(dst, src, elementBytes);
    return;
  }
  // Trailing axes taken whole merge with the last partial axis into one contiguous chunk.
  int64_t k = rank - 1;
  int64_t inner = elementBytes;
  while (k > 0 && size[k] == shape[k]) inner *= shape[k--];
  const int64_t chunk = size[k] * inner;
  std::vector<int64_t> strides(k + 1);  // bytes per step along axes 0..k
  strides[k] = inner;
  for (int64_t d = k - 1; d >= 0; d--) strides[d] = strides[d + 1] * shape[d + 1];
  int64_t rows = 1;
  for (int64_t d = 0; d < k; d++) rows *= size[d];
  const int64_t grain = std::max<int64_t>(1, (1 << 17) / std::max<int64_t>(1, chunk));
  at::parallel_for(0, rows, grain, [&](int64_t first, int64_t last) {
    for (int64_t r = first; r < last; r++) {
      int64_t offset = begin[k] * strides[k];
      int64_t rest = r;
      for (int64_t d = k - 1; d >= 0; d--) {
        offset += (begin[d] + rest % size[d]) * strides[d];
        rest /= size[d];
      }
      std::memcpy(dst + r * chunk, src + offset, chunk);
    }
  });
}

}  // namespace torch_cpu
