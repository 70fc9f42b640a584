// ATen implementations of the tfjs kernels that torch-cpu replaces. Tensors come in
// as views of tfjs's own memory (NHWC data viewed as channels-last NCHW) and every
// result is delivered into a JS-owned output buffer (see output_slot.h).
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <vector>

#include "output_slot.h"

namespace torch_cpu {

/** Strides, dilations and the four paddings of a 2-D convolution, as tfjs computes them. */
struct ConvGeometry {
  int64_t strideH, strideW, dilationH, dilationW;
  int64_t padTop, padBottom, padLeft, padRight;
};

/** Filter size, strides and paddings of a 2-D pooling window. */
struct PoolGeometry {
  int64_t filterH, filterW, strideH, strideW;
  int64_t padTop, padBottom, padLeft, padRight;
};

/** tfjs's fused activations that ATen can apply in place (prelu stays in JS). */
enum class Activation : int { kLinear = 0, kRelu = 1, kRelu6 = 2, kSigmoid = 3, kElu = 4, kLeakyRelu = 5 };

enum class BinaryOp : int { kAdd = 0, kSub = 1, kMul = 2, kDiv = 3, kSquaredDifference = 4, kMaximum = 5, kMinimum = 6 };
enum class UnaryOp : int { kRelu = 0, kRelu6 = 1, kStep = 2, kSigmoid = 3, kNeg = 4, kSquare = 5 };
enum class ReduceOp : int { kSum = 0, kMean = 1, kMax = 2 };

/** [N,H,W,C] float memory viewed as an NCHW tensor in channels-last layout (no copy). */
at::Tensor nhwcView(float* data, const std::vector<int64_t>& nhwc);
/** A [H,W,I,O] filter viewed as ATen's [O,I,H,W] weight (no copy). */
at::Tensor hwioView(float* data, const std::vector<int64_t>& hwio);
/** Row-major float memory of the given shape (no copy). */
at::Tensor denseView(float* data, const std::vector<int64_t>& shape);

void conv2d(const at::Tensor& x, const at::Tensor& weight, const c10::optional<at::Tensor>& bias,
            const ConvGeometry& g, Activation act, double alpha, OutputSlot& out,
            const std::vector<int64_t>& outNhwc);
void conv2dBackpropInput(const at::Tensor& dy, const at::Tensor& weight, const std::vector<int64_t>& inNhwc,
                         const ConvGeometry& g, OutputSlot& out);
void conv2dBackpropFilter(const at::Tensor& x, const at::Tensor& dy, const std::vector<int64_t>& filterHwio,
                          const ConvGeometry& g, OutputSlot& out);

/** a, b are [batch, rows, cols] before the optional transposes; batch 1 broadcasts. */
void batchMatMul(const at::Tensor& a, const at::Tensor& b, bool transposeA, bool transposeB,
                 const c10::optional<at::Tensor>& bias, Activation act, double alpha, OutputSlot& out,
                 const std::vector<int64_t>& outShape);

/** y = (x - mean) * scale / sqrt(variance + eps) + offset over the last axis of length `channels`. */
void batchNorm(const float* x, int64_t count, int64_t channels, const float* mean, const float* variance,
               const float* scale, const float* offset, double epsilon, float* y);

/** Per-channel mean and biased variance over the last axis of length `channels` (one pass). */
void moments(const float* x, int64_t count, int64_t channels, float* mean, float* variance);

/** `rows` rows of `width` contiguous floats: one channel piece of a larger (concatenated) tensor. */
struct ChannelPiece {
  const float* data;
  int64_t width;
};

/** One channel split of an input gradient: `width` floats per row, plus `acc` (same layout) where non-null. */
struct GradSplit {
  float* data;
  const float* acc;
  int64_t width;
};

/**
 * r = max(x * scale + shift, 0) per channel, where x is the channel concatenation of `pieces`
 * (never built); r has rows of sum(widths) floats.
 */
void bnRelu(const std::vector<ChannelPiece>& pieces, int64_t rows, const float* scale, const float* shift, float* r);

/**
 * Backward of r = relu(gamma * (x - mean) * invStd + beta) with batch statistics, given dr
 * (the ReLU mask is recomputed from x, the concatenation of `pieces`): dBeta = sum(dy),
 * dGamma = invStd * (sum(dy * x) - mean * sum(dy)), dx = scale * dy + a * x + b with the
 * batch-norm mean terms folded into a, b. dx is written split along channels into `splits`
 * (each within one piece), each added to its accumulator where given.
 */
/**
 * Which row of dr pixel row i of x reads: itself (h = 0), or, for a unit whose BN-ReLU output is
 * 2x2 average-pooled, the window's row of a dr at half x's height h and width w (both even).
 */
struct DrRows {
  int64_t h = 0;
  int64_t w = 0;
  int64_t operator()(int64_t i) const {
    if (h == 0) return i;
    const int64_t image = i / (h * w);
    const int64_t at = i - image * h * w;
    const int64_t y = at / w;
    const int64_t x = at - y * w;
    return (image * (h / 2) + (y >> 1)) * (w / 2) + (x >> 1);
  }
};

void bnReluGrad(const std::vector<ChannelPiece>& pieces, int64_t rows, const float* dr, const DrRows& drRows,
                const float* gamma, const float* beta, const float* mean, const float* invStd,
                const std::vector<GradSplit>& splits, float* dGamma, float* dBeta);

void maxPool(const at::Tensor& x, const PoolGeometry& p, OutputSlot& out, const std::vector<int64_t>& outNhwc);
void maxPoolGrad(const at::Tensor& dy, const at::Tensor& x, const PoolGeometry& p, OutputSlot& out);
void avgPool(const at::Tensor& x, const PoolGeometry& p, OutputSlot& out, const std::vector<int64_t>& outNhwc);
void avgPoolGrad(const at::Tensor& dy, const at::Tensor& x, const PoolGeometry& p, OutputSlot& out);

void binary(BinaryOp op, const at::Tensor& a, const at::Tensor& b, OutputSlot& out,
            const std::vector<int64_t>& outShape);
void unary(UnaryOp op, const at::Tensor& x, double alpha, OutputSlot& out);
/** tfjs's PadV2: `paddings` holds (before, after) per axis, filled with `value`. */
void pad(const at::Tensor& x, const std::vector<int64_t>& paddings, double value, OutputSlot& out,
         const std::vector<int64_t>& outShape);
/** tfjs's Tile: x repeated reps[i] times along axis i. */
void tile(const at::Tensor& x, const std::vector<int64_t>& reps, OutputSlot& out, const std::vector<int64_t>& outShape);
void reduce(ReduceOp op, const at::Tensor& x, const std::vector<int64_t>& axes, OutputSlot& out,
            const std::vector<int64_t>& outShape);

/** Concatenation of `rows` rows made of one chunk of each source (any element type). */
void concatRows(const std::vector<const uint8_t*>& sources, const std::vector<int64_t>& chunkBytes,
                int64_t rows, uint8_t* dst);
/** The inverse of concatRows: row r of the source is split into one chunk per destination. */
void splitRows(const uint8_t* src, const std::vector<int64_t>& chunkBytes, int64_t rows,
               const std::vector<uint8_t*>& destinations);
/** Copies the box [begin, begin + size) of a row-major array of `shape` (any element type). */
void sliceCopy(const uint8_t* src, const std::vector<int64_t>& shape, const std::vector<int64_t>& begin,
               const std::vector<int64_t>& size, int64_t elementBytes, uint8_t* dst);

}  // namespace torch_cpu
