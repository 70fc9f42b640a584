// Fused BatchNorm-ReLU kernels for tfjs-backend-wasm, compiled to a small module
// that imports the backend's own linear memory, so tensors are read and written
// where they live (see scripts/build-wasm-kernels.sh and
// src/backend/wasm-fused-kernels.ts).
//
// Results are bit-for-bit those of the JS reference kernels in
// src/core/fused-kernels.ts, which compute in float64: the same float64
// operations in the same order, two channels per f64x2 vector. Only the ReLU
// mask is computed differently, and exactly: see relu_threshold.
//
// Rules for this file, checked by the build script: no static data and no stack
// (the module shares the backend's memory and owns none of it); scratch space is
// passed in by the caller.
//
// Layout: the logical x is `rows` rows of `channels` floats (NHWC with rows =
// N*H*W), given as channel pieces (the channel concatenation, never built) and
// described to the kernels by a table of Segments (below).
#include <stdint.h>
#include <wasm_simd128.h>

typedef uint32_t u32;

#define EXPORT(name) __attribute__((export_name(#name)))

// float32 lanes 0,1 (lo) and 2,3 (hi) of v as float64x2.
static inline v128_t lo_f64(v128_t v) { return wasm_f64x2_promote_low_f32x4(v); }
static inline v128_t hi_f64(v128_t v) { return wasm_f64x2_promote_low_f32x4(wasm_i32x4_shuffle(v, v, 2, 3, 2, 3)); }

// Two float64x2 back to one float32x4 (each rounded once, like a Float32Array store).
static inline v128_t to_f32x4(v128_t lo, v128_t hi) {
  return wasm_i32x4_shuffle(wasm_f32x4_demote_f64x2_zero(lo), wasm_f32x4_demote_f64x2_zero(hi), 0, 1, 4, 5);
}

// Channels [channel, channel + width) of the logical x: row r of them is read at
// x + r * x_stride and its result written at out + r * out_stride, added to
// acc + r * out_stride where acc is not null. The caller writes a table of these
// (7 u32 words each) into the scratch memory it passes in.
typedef struct {
  const float* x;
  u32 x_stride;
  u32 channel;
  u32 width;
  float* out;
  u32 out_stride;
  const float* acc;
} Segment;
_Static_assert(sizeof(Segment) == 7 * sizeof(u32), "src/backend/wasm-fused-kernels.ts writes segments as 7 u32 words");

// ---------------------------------------------------------------------------
// Forward: out = max(0, x * scale[c] + shift[c]), computed in float64.

EXPORT(bn_relu_scratch_bytes) u32 bn_relu_scratch_bytes(u32 channels) { return 2 * channels * (u32)sizeof(double); }

static inline float bn_relu_scalar(float x, double s, double h) {
  double y = x * s + h;
  return (float)(y > 0 ? y : 0);
}

// One row of one segment; s and h point at the segment's first channel.
static inline void bn_relu_row(const float* xr, float* o, const double* s, const double* h, u32 width) {
  if (width < 4) {
    for (u32 c = 0; c < width; c++) o[c] = bn_relu_scalar(xr[c], s[c], h[c]);
    return;
  }
  const v128_t zero = wasm_f64x2_splat(0);
  // Four channels at a time; the last group is moved back to end at `width`
  // (overlapping the previous one, which it rewrites with the same values).
  for (u32 c0 = 0; c0 < width; c0 += 4) {
    const u32 c = c0 + 4 <= width ? c0 : width - 4;
    const v128_t x4 = wasm_v128_load(xr + c);
    // pmax(0, y) is (0 < y ? y : 0): NaN gives 0, as in the reference.
    const v128_t ylo = wasm_f64x2_pmax(zero, wasm_f64x2_add(wasm_f64x2_mul(lo_f64(x4), wasm_v128_load(s + c)), wasm_v128_load(h + c)));
    const v128_t yhi = wasm_f64x2_pmax(zero, wasm_f64x2_add(wasm_f64x2_mul(hi_f64(x4), wasm_v128_load(s + c + 2)), wasm_v128_load(h + c + 2)));
    wasm_v128_store(o + c, to_f32x4(ylo, yhi));
  }
}

// segs: one per (non-empty) x piece, out pointing at its channels of the output
// (out_stride = channels); acc is ignored. Row by row over all pieces, so the
// output is written in order.
EXPORT(bn_relu)
void bn_relu(const Segment* segs, u32 nsegs, const float* scale, const float* shift, u32 rows, u32 channels, double* scratch) {
  double* s = scratch;
  double* h = scratch + channels;
  for (u32 c = 0; c < channels; c++) {
    s[c] = scale[c];
    h[c] = shift[c];
  }
  for (u32 r = 0; r < rows; r++) {
    for (const Segment* g = segs; g < segs + nsegs; g++) {
      bn_relu_row(g->x + r * g->x_stride, g->out + r * g->out_stride, s + g->channel, h + g->channel, g->width);
    }
  }
}

// ---------------------------------------------------------------------------
// Backward of r = relu(gamma * (x - mean) * invStd + beta) with batch statistics.

// float32 <-> an unsigned key with the same order (for -inf..+inf; NaNs excluded).
static inline u32 order_key(float f) {
  const u32 b = __builtin_bit_cast(u32, f);
  return (b & 0x80000000u) ? ~b : (b ^ 0x80000000u);
}
static inline float from_order_key(u32 k) {
  return __builtin_bit_cast(float, (k & 0x80000000u) ? (k ^ 0x80000000u) : ~k);
}

static inline int relu_active(float x, double s, double h) { return x * s + h > 0; }

// The reference decides the ReLU mask as x*s + h > 0 in float64. Rounding is
// monotonic, so for s != 0 that holds exactly for x*sign >= t with sign = +-1
// and a float32 threshold t, found by bisection over all float32 values. The
// per-element test is then one float32 multiply and compare. A NaN threshold
// means "never" (every comparison with NaN is false), as does a NaN s or h.
static void relu_threshold(double s, double h, float* sign, float* threshold) {
  *sign = 1.0f;
  if (!(s > 0 || s < 0)) {
    *threshold = (s == 0 && h > 0) ? -__builtin_inff() : __builtin_nanf("");
    return;
  }
  const float sg = s > 0 ? 1.0f : -1.0f;
  *sign = sg;
  u32 lo = order_key(-__builtin_inff());
  u32 hi = order_key(__builtin_inff());
  if (!relu_active(from_order_key(hi) * sg, s, h)) {
    *threshold = __builtin_nanf("");
    return;
  }
  // Invariant: the answer is in [lo, hi] and relu_active holds at hi.
  while (lo < hi) {
    const u32 mid = lo + (hi - lo) / 2;
    if (relu_active(from_order_key(mid) * sg, s, h)) hi = mid;
    else lo = mid + 1;
  }
  *threshold = from_order_key(lo);
}

// Per-channel scratch of bn_relu_grad (all channels of the logical x): five
// float64 arrays, then two float32 ones.
typedef struct {
  double *scale, *sum_dy, *sum_dy_x, *a, *k;
  float *sign, *threshold;
} GradScratch;

EXPORT(bn_relu_grad_scratch_bytes)
u32 bn_relu_grad_scratch_bytes(u32 channels) { return channels * (5 * (u32)sizeof(double) + 2 * (u32)sizeof(float)); }

static GradScratch grad_scratch(void* base, u32 channels) {
  GradScratch g;
  g.scale = (double*)base;
  g.sum_dy = g.scale + channels;
  g.sum_dy_x = g.sum_dy + channels;
  g.a = g.sum_dy_x + channels;
  g.k = g.a + channels;
  g.sign = (float*)(g.k + channels);
  g.threshold = g.sign + channels;
  return g;
}

// The ReLU mask of channels k..k+3.
static inline v128_t relu_mask(v128_t x4, const GradScratch* g, u32 k) {
  return wasm_f32x4_ge(wasm_f32x4_mul(x4, wasm_v128_load(g->sign + k)), wasm_v128_load(g->threshold + k));
}

// Pass 1, one row of one segment whose first channel is k0: per-channel sums of dy
// and dy*x over active elements, in float64 and in row order (exact products, the
// reference's summation order).
static inline void grad_sums_row(const float* xr, const float* dd, u32 width, u32 k0, const GradScratch* g) {
  const u32 vec_end = width & ~3u;
  for (u32 c = 0; c < vec_end; c += 4) {
    const u32 k = k0 + c;
    const v128_t x4 = wasm_v128_load(xr + c);
    const v128_t mask = relu_mask(x4, g, k);
    // Inactive lanes add +0 and +0*+0 (masking x too keeps inf*0 out).
    const v128_t d4 = wasm_v128_and(wasm_v128_load(dd + c), mask);
    const v128_t xm = wasm_v128_and(x4, mask);
    const v128_t dlo = lo_f64(d4), dhi = hi_f64(d4);
    wasm_v128_store(g->sum_dy + k, wasm_f64x2_add(wasm_v128_load(g->sum_dy + k), dlo));
    wasm_v128_store(g->sum_dy + k + 2, wasm_f64x2_add(wasm_v128_load(g->sum_dy + k + 2), dhi));
    wasm_v128_store(g->sum_dy_x + k, wasm_f64x2_add(wasm_v128_load(g->sum_dy_x + k), wasm_f64x2_mul(dlo, lo_f64(xm))));
    wasm_v128_store(g->sum_dy_x + k + 2, wasm_f64x2_add(wasm_v128_load(g->sum_dy_x + k + 2), wasm_f64x2_mul(dhi, hi_f64(xm))));
  }
  // The tail can't overlap the last group as the other passes do: it would add twice.
  for (u32 c = vec_end; c < width; c++) {
    const u32 k = k0 + c;
    if (xr[c] * g->sign[k] >= g->threshold[k]) {
      const double d = dd[c];
      g->sum_dy[k] += d;
      g->sum_dy_x[k] += d * xr[c];
    }
  }
}

// Pass 2: dx = dy*scale + x*a + k (float64, rounded once), then + acc in float32.
static inline float grad_dx_scalar(float x, float d, const GradScratch* g, u32 k) {
  const double dy = x * g->sign[k] >= g->threshold[k] ? d : 0;
  return (float)(dy * g->scale[k] + x * g->a[k] + g->k[k]);
}

// One row of one segment whose first channel is k0; ar is the accumulator's row or null.
static inline void grad_dx_row(const float* xr, const float* dd, const float* ar, float* o, u32 width, u32 k0, const GradScratch* g) {
  if (width < 4) {
    for (u32 c = 0; c < width; c++) {
      const float v = grad_dx_scalar(xr[c], dd[c], g, k0 + c);
      o[c] = ar ? ar[c] + v : v;
    }
    return;
  }
  for (u32 c0 = 0; c0 < width; c0 += 4) {
    // Overlapping last group, as in bn_relu_row (o is never acc, so rewriting is harmless).
    const u32 c = c0 + 4 <= width ? c0 : width - 4;
    const u32 k = k0 + c;
    const v128_t x4 = wasm_v128_load(xr + c);
    const v128_t d4 = wasm_v128_and(wasm_v128_load(dd + c), relu_mask(x4, g, k));
    const v128_t olo = wasm_f64x2_add(
        wasm_f64x2_add(wasm_f64x2_mul(lo_f64(d4), wasm_v128_load(g->scale + k)), wasm_f64x2_mul(lo_f64(x4), wasm_v128_load(g->a + k))),
        wasm_v128_load(g->k + k));
    const v128_t ohi = wasm_f64x2_add(
        wasm_f64x2_add(wasm_f64x2_mul(hi_f64(d4), wasm_v128_load(g->scale + k + 2)), wasm_f64x2_mul(hi_f64(x4), wasm_v128_load(g->a + k + 2))),
        wasm_v128_load(g->k + k + 2));
    const v128_t v = to_f32x4(olo, ohi);
    wasm_v128_store(o + c, ar ? wasm_f32x4_add(wasm_v128_load(ar + c), v) : v);
  }
}

// pieces: one per (non-empty) x piece, for the sums (out and acc ignored). splits:
// one per output dx_j (out = dx_j, out_stride = its width, acc = acc_j or null),
// x pointing at the split's first channel in its piece. dr is the whole [rows,
// channels]; dgamma and dbeta have `channels` floats.
EXPORT(bn_relu_grad)
void bn_relu_grad(const Segment* pieces, u32 npieces, const Segment* splits, u32 nsplits, const float* dr,
                  const float* gamma, const float* beta, const float* mean, const float* inv_std,
                  float* dgamma, float* dbeta, u32 rows, u32 channels, void* scratch) {
  const GradScratch g = grad_scratch(scratch, channels);
  for (u32 c = 0; c < channels; c++) {
    g.scale[c] = (double)gamma[c] * inv_std[c];
    relu_threshold(g.scale[c], beta[c] - mean[c] * g.scale[c], &g.sign[c], &g.threshold[c]);
    g.sum_dy[c] = 0;
    g.sum_dy_x[c] = 0;
  }
  for (u32 r = 0; r < rows; r++) {
    const float* dd = dr + r * channels;
    for (const Segment* s = pieces; s < pieces + npieces; s++) {
      grad_sums_row(s->x + r * s->x_stride, dd + s->channel, s->width, s->channel, &g);
    }
  }
  // dx = scale * (dy - sum_dy/M - xhat * dgamma/M) = dy*scale + x*a + k, M = rows.
  const double count = rows;
  for (u32 c = 0; c < channels; c++) {
    const double dg = inv_std[c] * (g.sum_dy_x[c] - mean[c] * g.sum_dy[c]);
    dgamma[c] = (float)dg;
    dbeta[c] = (float)g.sum_dy[c];
    const double dg_over_m = (dg * inv_std[c]) / count;
    g.a[c] = -g.scale[c] * dg_over_m;
    g.k[c] = g.scale[c] * (mean[c] * dg_over_m - g.sum_dy[c] / count);
  }
  for (u32 r = 0; r < rows; r++) {
    const float* dd = dr + r * channels;
    for (const Segment* s = splits; s < splits + nsplits; s++) {
      const float* xr = s->x + r * s->x_stride;
      float* o = s->out + r * s->out_stride;
      // Two copies of the row loop, one without the accumulator.
      if (s->acc) grad_dx_row(xr, dd + s->channel, s->acc + r * s->out_stride, o, s->width, s->channel, &g);
      else grad_dx_row(xr, dd + s->channel, 0, o, s->width, s->channel, &g);
    }
  }
}
