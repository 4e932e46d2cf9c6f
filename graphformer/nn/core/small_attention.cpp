// Fused CPU attention for heads of width 16 (graphformer.nn.core.small_attention).
//
// Per block g (a sample's head) of L rows, with q, k, v (L, 16), an additive mask M
// broadcast from (B, 1 or H, 1 or L, L), an optional 0/1 keep mask K (L, L) and c = 1/(1-p):
//   forward:  S = s Q Kᵀ + M,  P = softmax(S) row-wise,  O = c (P ⊙ K) V,  lse = log Σ_j e^S
//   backward: P recomputed from lse; dP = c (dO Vᵀ) ⊙ K; dS = P ⊙ (dP − rowsum(P ⊙ dP));
//             dQ = s dS K, dK = s dSᵀ Q, dV = c (P ⊙ K)ᵀ dO (and dM = dS when asked for).
// Each block's scores stay in a (L, ⌈L/16⌉·16) buffer of its thread: no (B, H, L, L)
// tensor is written to memory except the mask's gradient. Rows of q, k, v are one 16-float
// vector each (GCC vector extensions, vectorised by the compiler for the machine it builds
// on); a row whose keys are all masked gets zeros (and lse = -inf). Blocks run in parallel.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

namespace {

constexpr int64_t W = 16;  // head width: one vector of 16 floats
typedef float v16 __attribute__((vector_size(64)));
typedef int32_t i16 __attribute__((vector_size(64)));
constexpr float kNegInf = -std::numeric_limits<float>::infinity();

inline v16 load(const float* p) { v16 v; std::memcpy(&v, p, sizeof(v)); return v; }
inline void store(float* p, v16 v) { std::memcpy(p, &v, sizeof(v)); }
inline v16 splat(float x) { return v16{} + x; }
inline v16 vmax(v16 a, v16 b) { return a > b ? a : b; }
inline float hsum(v16 v) {
  v += __builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7);
  v += __builtin_shufflevector(v, v, 4, 5, 6, 7, 0, 1, 2, 3, 12, 13, 14, 15, 8, 9, 10, 11);
  v += __builtin_shufflevector(v, v, 2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13);
  v += __builtin_shufflevector(v, v, 1, 0, 3, 2, 5, 4, 7, 6, 9, 8, 11, 10, 13, 12, 15, 14);
  return v[0];
}
inline float hmax(v16 v) {
  v = vmax(v, __builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7));
  v = vmax(v, __builtin_shufflevector(v, v, 4, 5, 6, 7, 0, 1, 2, 3, 12, 13, 14, 15, 8, 9, 10, 11));
  v = vmax(v, __builtin_shufflevector(v, v, 2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13));
  v = vmax(v, __builtin_shufflevector(v, v, 1, 0, 3, 2, 5, 4, 7, 6, 9, 8, 11, 10, 13, 12, 15, 14));
  return v[0];
}
typedef uint8_t u16 __attribute__((vector_size(16)));

// exp(x) for x <= 0, exactly 0 below -87 (and at -inf): Cody-Waite reduction, degree-6
// polynomial; |relative error| < 2e-7.
inline v16 exp_nonpositive(v16 x) {
  const v16 lo = splat(-87.0f);
  const v16 c = x > lo ? x : lo;
  const i16 n = __builtin_convertvector(c * 1.44269504088896341f - 0.5f, i16);
  const v16 nf = __builtin_convertvector(n, v16);
  const v16 r = c - nf * 0.693145751953125f - nf * 1.428606765330187045e-06f;
  v16 p = splat(1.3981999507e-3f);
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  const v16 scale = (v16)((n + 127) << 23);
  return x > lo ? p * scale : v16{};
}

struct Shapes {
  int64_t groups, length, padded, heads, mask_heads, mask_rows;
};

// (L, 16) rows → (16, Lp) columns, zero past L
inline void transpose(const float* x, const Shapes& s, float* xt) {
  std::memset(xt, 0, sizeof(float) * W * s.padded);
  for (int64_t j = 0; j < s.length; ++j)
    for (int64_t d = 0; d < W; ++d) xt[d * s.padded + j] = x[j * W + d];
}

inline const float* mask_row(const float* mask, const Shapes& s, int64_t g, int64_t i) {
  if (mask == nullptr) return nullptr;
  const int64_t b = g / s.heads, h = s.mask_heads == 1 ? 0 : g % s.heads;
  return mask + ((b * s.mask_heads + h) * s.mask_rows + (s.mask_rows == 1 ? 0 : i)) * s.length;
}

// Rows per register block: eight independent accumulator chains keep two FMA units busy
// through an FMA's four-cycle latency.
constexpr int64_t R = 8;

// 16 mask values from column j0 of a row of L, zeros past L
inline v16 mask_chunk(const float* row, int64_t j0, int64_t L) {
  if (j0 + W <= L) return load(row + j0);
  float tail[W] = {};
  std::memcpy(tail, row + j0, sizeof(float) * (L - j0));
  return load(tail);
}

// out[i][j] = scale · a_i · x_j (+ mask[i][j]) for the L rows a_i of ``a`` (L, 16) and the
// columns of ``xt`` (16, Lp); ``past`` from L to Lp; ``mask``: block g's mask (row i by
// mask_row). R rows at a time, so each 16-column chunk of ``xt`` is loaded once per R rows.
inline void all_dots(const float* a, const float* xt, const float* mask, int64_t g,
                     float scale, const Shapes& s, float past, float* out) {
  const int64_t L = s.length, Lp = s.padded;
  for (int64_t i0 = 0; i0 < L; i0 += R) {
    const int64_t n = L - i0 < R ? L - i0 : R;
    float q[R][W] = {};
    for (int64_t r = 0; r < n; ++r)
      for (int64_t d = 0; d < W; ++d) q[r][d] = a[(i0 + r) * W + d] * scale;
    for (int64_t j0 = 0; j0 < Lp; j0 += W) {
      v16 acc[R];
#pragma GCC unroll 8
      for (int64_t r = 0; r < R; ++r) acc[r] = v16{};
      for (int64_t d = 0; d < W; ++d) {
        const v16 x = load(xt + d * Lp + j0);
#pragma GCC unroll 8
        for (int64_t r = 0; r < R; ++r) acc[r] += q[r][d] * x;
      }
      for (int64_t r = 0; r < n; ++r) {
        if (mask != nullptr) acc[r] += mask_chunk(mask_row(mask, s, g, i0 + r), j0, L);
        store(out + (i0 + r) * Lp + j0, acc[r]);
      }
    }
    for (int64_t r = 0; r < n; ++r)
      for (int64_t j = L; j < Lp; ++j) out[(i0 + r) * Lp + j] = past;
  }
}

// f[j] = c where keep[j] else 0, zeros past L
inline void keep_factors(const uint8_t* keep, float c, const Shapes& s, float* f) {
  int64_t j = 0;
  for (; j + W <= s.length; j += W) {
    u16 bytes;
    std::memcpy(&bytes, keep + j, sizeof(bytes));
    store(f + j, __builtin_convertvector(bytes, v16) * c);
  }
  if (j < s.padded) {  // the tail: bytes past L read as zeros
    u16 bytes = u16{};
    std::memcpy(&bytes, keep + j, s.length - j);
    store(f + j, __builtin_convertvector(bytes, v16) * c);
  }
}


// out[r] = Σ_j coef[r][j] · x_j over j < n for rows r of ``coef`` (row stride ``stride``),
// R rows at a time, so each x_j is loaded once per R rows
inline void combine_rows(const float* coef, int64_t stride, int64_t rows, const float* x,
                         int64_t n, float* out) {
  for (int64_t r0 = 0; r0 < rows; r0 += R) {
    const int64_t m = rows - r0 < R ? rows - r0 : R;
    const float* c[R];
    for (int64_t r = 0; r < R; ++r) c[r] = coef + (r0 + (r < m ? r : 0)) * stride;
    v16 acc[R];
#pragma GCC unroll 8
    for (int64_t r = 0; r < R; ++r) acc[r] = v16{};
    for (int64_t j = 0; j < n; ++j) {
      const v16 xj = load(x + j * W);
#pragma GCC unroll 8
      for (int64_t r = 0; r < R; ++r) acc[r] += c[r][j] * xj;
    }
    for (int64_t r = 0; r < m; ++r) store(out + (r0 + r) * W, acc[r]);
  }
}

// out[r] = Σ_i coef[i][r] · x_i over i < n for r < rows: ``coef`` read by columns (row
// stride ``stride``, at least ⌈rows/R⌉·R columns), R output rows at a time
inline void combine_cols(const float* coef, int64_t stride, int64_t rows, const float* x,
                         int64_t n, float* out) {
  for (int64_t r0 = 0; r0 < rows; r0 += R) {
    const int64_t m = rows - r0 < R ? rows - r0 : R;
    v16 acc[R];
#pragma GCC unroll 8
    for (int64_t r = 0; r < R; ++r) acc[r] = v16{};
    for (int64_t i = 0; i < n; ++i) {
      const v16 xi = load(x + i * W);
      const float* c = coef + i * stride + r0;
#pragma GCC unroll 8
      for (int64_t r = 0; r < R; ++r) acc[r] += c[r] * xi;
    }
    for (int64_t r = 0; r < m; ++r) store(out + (r0 + r) * W, acc[r]);
  }
}

void check_inputs(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                  const std::optional<at::Tensor>& mask, const std::optional<at::Tensor>& keep,
                  int64_t heads) {
  for (const at::Tensor* t : {&q, &k, &v}) {
    TORCH_CHECK(t->dim() == 3 && t->size(2) == W && t->scalar_type() == at::kFloat &&
                    t->is_contiguous() && t->sizes() == q.sizes(),
                "small_attention: q, k, v must be contiguous float32 (G, L, 16) blocks of one "
                "shape; got ", t->sizes(), " ", t->scalar_type());
  }
  TORCH_CHECK(heads > 0 && q.size(0) % heads == 0, "small_attention: ", q.size(0),
              " blocks are not a multiple of heads = ", heads);
  if (mask) {
    const int64_t L = q.size(1);
    TORCH_CHECK(mask->dim() == 4 && mask->scalar_type() == at::kFloat && mask->is_contiguous() &&
                    mask->size(0) * heads == q.size(0) &&
                    (mask->size(1) == 1 || mask->size(1) == heads) &&
                    (mask->size(2) == 1 || mask->size(2) == L) && mask->size(3) == L,
                "small_attention: the mask must be a contiguous float32 (B, 1 or H, 1 or L, L) "
                "tensor for ", q.sizes(), " blocks; got ", mask->sizes());
  }
  if (keep) {
    TORCH_CHECK(keep->scalar_type() == at::kByte && keep->is_contiguous() &&
                    keep->numel() == q.size(0) * q.size(1) * q.size(1),
                "small_attention: the keep mask must be a contiguous uint8 (G, L, L) tensor");
  }
}

std::tuple<at::Tensor, at::Tensor> forward(const at::Tensor& q, const at::Tensor& k,
                                           const at::Tensor& v, const std::optional<at::Tensor>& mask,
                                           const std::optional<at::Tensor>& keep, int64_t heads,
                                           double scale, double keep_scale) {
  check_inputs(q, k, v, mask, keep, heads);
  const int64_t L = q.size(1);
  const Shapes s{q.size(0), L, (L + W - 1) / W * W, heads,
                 mask ? mask->size(1) : 1, mask ? mask->size(2) : 1};
  auto out = at::empty_like(q);
  auto lse = at::empty({s.groups, L}, q.options());
  const float *qp = q.data_ptr<float>(), *kp = k.data_ptr<float>(), *vp = v.data_ptr<float>();
  const float* mp = mask ? mask->data_ptr<float>() : nullptr;
  const uint8_t* keepp = keep ? keep->data_ptr<uint8_t>() : nullptr;
  float *op = out.data_ptr<float>(), *lp = lse.data_ptr<float>();
  const float sc = static_cast<float>(scale), c = static_cast<float>(keep_scale);
  at::parallel_for(0, s.groups, 1, [&](int64_t begin, int64_t end) {
    std::vector<float> kt(W * s.padded), weights(L * s.padded), f(s.padded), norm(L);
    for (int64_t g = begin; g < end; ++g) {
      const int64_t base = g * L * W;
      transpose(kp + base, s, kt.data());
      all_dots(qp + base, kt.data(), mp, g, sc, s, kNegInf, weights.data());
      for (int64_t i = 0; i < L; ++i) {
        float* w = weights.data() + i * s.padded;  // S's row, then e^(S - max) (⊙ c Z)
        v16 peak_v = splat(kNegInf);
        for (int64_t j0 = 0; j0 < s.padded; j0 += W) peak_v = vmax(peak_v, load(w + j0));
        const float peak = hmax(peak_v);
        if (peak == kNegInf) {
          lp[g * L + i] = kNegInf;
          std::memset(w, 0, sizeof(float) * s.padded);
          norm[i] = 0.0f;
          continue;
        }
        v16 total_v = v16{};
        if (keepp != nullptr) {
          keep_factors(keepp + (g * L + i) * L, c, s, f.data());
          for (int64_t j0 = 0; j0 < s.padded; j0 += W) {
            const v16 e = exp_nonpositive(load(w + j0) - peak);
            store(w + j0, e * load(f.data() + j0));
            total_v += e;
          }
        } else {
          for (int64_t j0 = 0; j0 < s.padded; j0 += W) {
            const v16 e = exp_nonpositive(load(w + j0) - peak);
            store(w + j0, e);
            total_v += e;
          }
        }
        const float total = hsum(total_v);
        lp[g * L + i] = peak + std::log(total);
        norm[i] = 1.0f / total;  // applied to the output row
      }
      combine_rows(weights.data(), s.padded, L, vp + base, L, op + base);
      for (int64_t i = 0; i < L; ++i) store(op + base + i * W, load(op + base + i * W) * norm[i]);
    }
  });
  return {out, lse};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> backward(
    const at::Tensor& grad, const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
    const std::optional<at::Tensor>& mask, const std::optional<at::Tensor>& keep,
    const at::Tensor& lse, int64_t heads, double scale, double keep_scale, bool mask_grad) {
  check_inputs(q, k, v, mask, keep, heads);
  TORCH_CHECK(grad.sizes() == q.sizes() && grad.is_contiguous() && grad.scalar_type() == at::kFloat,
              "small_attention: the output's gradient must be contiguous float32 ", q.sizes());
  const int64_t L = q.size(1);
  const Shapes s{q.size(0), L, (L + W - 1) / W * W, heads,
                 mask ? mask->size(1) : 1, mask ? mask->size(2) : 1};
  auto dq = at::empty_like(q), dk = at::empty_like(q), dv = at::empty_like(q);
  at::Tensor dscores = mask_grad ? at::empty({s.groups, L, L}, q.options()) : at::Tensor();
  const float *qp = q.data_ptr<float>(), *kp = k.data_ptr<float>(), *vp = v.data_ptr<float>();
  const float* gp = grad.data_ptr<float>();
  const float* mp = mask ? mask->data_ptr<float>() : nullptr;
  const uint8_t* keepp = keep ? keep->data_ptr<uint8_t>() : nullptr;
  const float* lp = lse.data_ptr<float>();
  float *dqp = dq.data_ptr<float>(), *dkp = dk.data_ptr<float>(), *dvp = dv.data_ptr<float>();
  float* dsp = mask_grad ? dscores.data_ptr<float>() : nullptr;
  const float sc = static_cast<float>(scale), c = static_cast<float>(keep_scale);
  at::parallel_for(0, s.groups, 1, [&](int64_t begin, int64_t end) {
    std::vector<float> kt(W * s.padded), vt(W * s.padded), dps(L * s.padded), f(s.padded, 1.0f),
        ds(L * s.padded), weights(L * s.padded);
    for (int64_t g = begin; g < end; ++g) {
      const int64_t base = g * L * W;
      transpose(kp + base, s, kt.data());
      transpose(vp + base, s, vt.data());
      all_dots(qp + base, kt.data(), mp, g, sc, s, kNegInf, ds.data());  // S
      all_dots(gp + base, vt.data(), nullptr, g, 1.0f, s, 0.0f, dps.data());  // dO Vᵀ
      for (int64_t i = 0; i < L; ++i) {
        const float lse_i = lp[g * L + i];
        float* dp = dps.data() + i * s.padded;
        float* p = ds.data() + i * s.padded;  // P's row, then s · dS's in place
        float* w = weights.data() + i * s.padded;  // P ⊙ F
        if (lse_i == kNegInf) {
          std::memset(p, 0, sizeof(float) * s.padded);
          std::memset(w, 0, sizeof(float) * s.padded);
          if (dsp) std::memset(dsp + (g * L + i) * L, 0, sizeof(float) * L);
          continue;
        }
        if (keepp != nullptr) keep_factors(keepp + (g * L + i) * L, c, s, f.data());
        v16 dot_v = v16{};
        for (int64_t j0 = 0; j0 < s.padded; j0 += W) {
          const v16 pj = exp_nonpositive(load(p + j0) - lse_i);
          const v16 fj = load(f.data() + j0);
          const v16 dpj = load(dp + j0) * fj;
          store(p + j0, pj);
          store(w + j0, pj * fj);
          store(dp + j0, dpj);
          dot_v += pj * dpj;
        }
        const float dot = hsum(dot_v);
        for (int64_t j0 = 0; j0 < s.padded; j0 += W)
          store(p + j0, load(p + j0) * (load(dp + j0) - dot));
        if (dsp) std::memcpy(dsp + (g * L + i) * L, p, sizeof(float) * L);
        for (int64_t j0 = 0; j0 < s.padded; j0 += W) store(p + j0, load(p + j0) * sc);
      }
      combine_rows(ds.data(), s.padded, L, kp + base, L, dqp + base);       // dQ = s dS K
      combine_cols(ds.data(), s.padded, L, qp + base, L, dkp + base);       // dK = s dSᵀ Q
      combine_cols(weights.data(), s.padded, L, gp + base, L, dvp + base);  // dV = (P ⊙ F)ᵀ dO
    }
  });
  return {dq, dk, dv, dscores};
}

}  // namespace

TORCH_LIBRARY(graphformer_small_attention, m) {
  m.def("forward(Tensor q, Tensor k, Tensor v, Tensor? mask, Tensor? keep, int heads, float scale, float keep_scale) -> (Tensor, Tensor)");
  m.def("backward(Tensor grad, Tensor q, Tensor k, Tensor v, Tensor? mask, Tensor? keep, Tensor lse, int heads, float scale, float keep_scale, bool mask_grad) -> (Tensor, Tensor, Tensor, Tensor)");
}

TORCH_LIBRARY_IMPL(graphformer_small_attention, CPU, m) {
  m.impl("forward", &forward);
  m.impl("backward", &backward);
}
