// Fused CPU attention for heads of width 16 (graphformer.nn.core.small_attention).
//
// One call runs a group of samples. Block g is head h of the group's sample b (g = b·H + h):
// the n = sizes[b] nodes from row starts[b] of the packed (N, 3, H, 16) queries, keys and
// values, read in place (no padded copy). With an additive mask M (the group's
// (B, 1 or H, 1 or L, L) tensor, L ≥ n its padded length), an optional 0/1 keep mask Z (the
// group's (B·H, L, L) bytes) and c = 1/(1-p):
//   forward:  S = s Q Kᵀ + M,  P = softmax(S) row-wise,  O = c (P ⊙ Z) V,  lse = log Σ_j e^S
//   backward: P recomputed from lse; dP = c (dO Vᵀ) ⊙ Z; dS = P ⊙ (dP − rowsum(P ⊙ dP));
//             dQ = s dS K, dK = s dSᵀ Q, dV = c (P ⊙ Z)ᵀ dO (and dM = dS when asked for).
// A block's work is its n × ⌈n/16⌉·16 cells, whatever L: padding is neither read nor
// computed. Its scores stay in its thread's buffers: no (B, H, L, L) tensor is written
// except the mask's gradient. Rows of q, k, v are one 16-float vector each (GCC vector
// extensions, vectorised for the machine the kernel builds on); a row whose keys are all
// masked gets zeros (and lse = -inf). Outputs and gradients are written to the nodes' rows
// of the (N, H, 16) output and (N, 3, H, 16) gradient. Blocks run in parallel.
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

// exp(x) for x <= 0, exactly 0 at and below -87 (e^-87 = 1.6e-38) and at -inf: Cody-Waite
// reduction, degree-6 polynomial; relative error ≤ 2.5e-7 above -87 (checked in steps of
// 1e-4 against double-precision exp).
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

// One block: head h of a sample of n nodes from row ``start``; np = n rounded up to 16.
struct Block {
  int64_t b, h, start, n, np;
};

// Where the group's tensors are: H heads, the mask's head and row counts, the padded length L.
struct Group {
  int64_t heads, length, mask_heads, mask_rows;
};

// node row i's part (0 q, 1 k, 2 v) of head h in the packed (N, 3, H, 16) tensor
inline int64_t packed(const Group& G, const Block& k, int64_t i, int64_t part) {
  return (((k.start + i) * 3 + part) * G.heads + k.h) * W;
}

// node row i, head h in an (N, H, 16) tensor
inline int64_t headed(const Group& G, const Block& k, int64_t i) {
  return ((k.start + i) * G.heads + k.h) * W;
}

// the block's n rows of ``part`` → (n, 16) contiguous
inline void gather(const float* qkv, const Group& G, const Block& k, int64_t part, float* out) {
  for (int64_t i = 0; i < k.n; ++i) std::memcpy(out + i * W, qkv + packed(G, k, i, part), sizeof(float) * W);
}

// (n, 16) rows → (16, np) columns, zero past n
inline void transpose(const float* x, const Block& k, float* xt) {
  std::memset(xt, 0, sizeof(float) * W * k.np);
  for (int64_t j = 0; j < k.n; ++j)
    for (int64_t d = 0; d < W; ++d) xt[d * k.np + j] = x[j * W + d];
}

inline const float* mask_row(const float* mask, const Group& G, const Block& k, int64_t i) {
  const int64_t h = G.mask_heads == 1 ? 0 : k.h;
  return mask + ((k.b * G.mask_heads + h) * G.mask_rows + (G.mask_rows == 1 ? 0 : i)) * G.length;
}

// 16 values from column j0 of a row of n, zeros past n
inline v16 chunk(const float* row, int64_t j0, int64_t n) {
  if (j0 + W <= n) return load(row + j0);
  float tail[W] = {};
  std::memcpy(tail, row + j0, sizeof(float) * (n - j0));
  return load(tail);
}

// Rows per register block: eight independent accumulator chains keep two FMA units busy
// through an FMA's four-cycle latency.
constexpr int64_t R = 8;

// out[i][j] = scale · a_i · x_j (+ mask[i][j]) for the n rows a_i (n, 16) and the columns of
// ``xt`` (16, np); ``past`` from n to np. R rows at a time, so each 16-column chunk of ``xt``
// is loaded once per R rows.
inline void all_dots(const float* a, const float* xt, const float* mask, const Group& G,
                     const Block& k, float scale, float past, float* out) {
  for (int64_t i0 = 0; i0 < k.n; i0 += R) {
    const int64_t m = k.n - i0 < R ? k.n - i0 : R;
    float q[R][W] = {};
    for (int64_t r = 0; r < m; ++r)
      for (int64_t d = 0; d < W; ++d) q[r][d] = a[(i0 + r) * W + d] * scale;
    for (int64_t j0 = 0; j0 < k.np; j0 += W) {
      v16 acc[R];
#pragma GCC unroll 8
      for (int64_t r = 0; r < R; ++r) acc[r] = v16{};
      for (int64_t d = 0; d < W; ++d) {
        const v16 x = load(xt + d * k.np + j0);
#pragma GCC unroll 8
        for (int64_t r = 0; r < R; ++r) acc[r] += q[r][d] * x;
      }
      for (int64_t r = 0; r < m; ++r) {
        if (mask != nullptr) acc[r] += chunk(mask_row(mask, G, k, i0 + r), j0, k.n);
        store(out + (i0 + r) * k.np + j0, acc[r]);
      }
    }
    for (int64_t r = 0; r < m; ++r)
      for (int64_t j = k.n; j < k.np; ++j) out[(i0 + r) * k.np + j] = past;
  }
}

// f[j] = c where keep[j] else 0 for j < n, zeros to np
inline void keep_factors(const uint8_t* keep, float c, const Block& k, float* f) {
  int64_t j = 0;
  for (; j + W <= k.n; j += W) {
    u16 bytes;
    std::memcpy(&bytes, keep + j, sizeof(bytes));
    store(f + j, __builtin_convertvector(bytes, v16) * c);
  }
  if (j < k.np) {  // the tail: bytes past n read as zeros
    u16 bytes = u16{};
    std::memcpy(&bytes, keep + j, k.n - j);
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

Group check_inputs(const at::Tensor& qkv, const at::Tensor& starts, const at::Tensor& sizes,
                   int64_t length, const std::optional<at::Tensor>& mask,
                   const std::optional<at::Tensor>& keep) {
  TORCH_CHECK(qkv.dim() == 4 && qkv.size(1) == 3 && qkv.size(3) == W &&
                  qkv.scalar_type() == at::kFloat && qkv.is_contiguous(),
              "small_attention: qkv must be a contiguous float32 (N, 3, H, 16) tensor; got ",
              qkv.sizes(), " ", qkv.scalar_type());
  TORCH_CHECK(starts.scalar_type() == at::kLong && sizes.scalar_type() == at::kLong &&
                  starts.dim() == 1 && starts.sizes() == sizes.sizes() &&
                  starts.is_contiguous() && sizes.is_contiguous() && starts.is_cpu(),
              "small_attention: starts and sizes must be contiguous int64 (B,) CPU tensors");
  const int64_t batch = sizes.size(0), heads = qkv.size(2);
  const int64_t* st = starts.data_ptr<int64_t>();
  const int64_t* sz = sizes.data_ptr<int64_t>();
  for (int64_t b = 0; b < batch; ++b)
    TORCH_CHECK(sz[b] >= 0 && sz[b] <= length && st[b] >= 0 && st[b] + sz[b] <= qkv.size(0),
                "small_attention: sample ", b, " (rows ", st[b], " + ", sz[b],
                ") lies outside the ", qkv.size(0), " rows or beyond length ", length);
  Group G{heads, length, 1, 1};
  if (mask) {
    TORCH_CHECK(mask->dim() == 4 && mask->scalar_type() == at::kFloat && mask->is_contiguous() &&
                    mask->size(0) == batch && (mask->size(1) == 1 || mask->size(1) == heads) &&
                    (mask->size(2) == 1 || mask->size(2) == length) && mask->size(3) == length,
                "small_attention: the mask must be a contiguous float32 (B, 1 or H, 1 or L, L) "
                "tensor with B = ", batch, ", H = ", heads, ", L = ", length, "; got ",
                mask->sizes());
    G.mask_heads = mask->size(1);
    G.mask_rows = mask->size(2);
  }
  if (keep) {
    TORCH_CHECK(keep->scalar_type() == at::kByte && keep->is_contiguous() &&
                    keep->numel() == batch * heads * length * length,
                "small_attention: the keep mask must be a contiguous uint8 (B·H, L, L) tensor");
  }
  return G;
}

inline Block block_of(const Group& G, const int64_t* st, const int64_t* sz, int64_t g) {
  const int64_t b = g / G.heads, n = sz[b];
  return {b, g % G.heads, st[b], n, (n + W - 1) / W * W};
}

// Writes the group's rows of ``out`` (N, H, 16); returns the rows' log-sum-exp (B·H, L).
at::Tensor forward(at::Tensor& out, const at::Tensor& qkv, const at::Tensor& starts,
                   const at::Tensor& sizes, int64_t length, const std::optional<at::Tensor>& mask,
                   const std::optional<at::Tensor>& keep, double scale, double keep_scale) {
  const Group G = check_inputs(qkv, starts, sizes, length, mask, keep);
  TORCH_CHECK(out.is_contiguous() && out.scalar_type() == at::kFloat && out.dim() == 3 &&
                  out.size(0) == qkv.size(0) && out.size(1) == G.heads && out.size(2) == W,
              "small_attention: out must be a contiguous float32 (N, H, 16) tensor");
  const int64_t blocks = sizes.size(0) * G.heads, L = length;
  auto lse = at::full({blocks, L}, -std::numeric_limits<float>::infinity(), qkv.options());
  const float* qkvp = qkv.data_ptr<float>();
  const int64_t *st = starts.data_ptr<int64_t>(), *sz = sizes.data_ptr<int64_t>();
  const float* mp = mask ? mask->data_ptr<float>() : nullptr;
  const uint8_t* keepp = keep ? keep->data_ptr<uint8_t>() : nullptr;
  float *op = out.data_ptr<float>(), *lp = lse.data_ptr<float>();
  const float sc = static_cast<float>(scale), c = static_cast<float>(keep_scale);
  const int64_t Lp = (L + W - 1) / W * W;
  at::parallel_for(0, blocks, 1, [&](int64_t begin, int64_t end) {
    std::vector<float> q(L * W), v(L * W), kt(W * Lp), weights(L * Lp), f(Lp), norm(L), o(L * W);
    for (int64_t g = begin; g < end; ++g) {
      const Block k = block_of(G, st, sz, g);
      if (k.n == 0) continue;
      gather(qkvp, G, k, 0, q.data());
      gather(qkvp, G, k, 1, o.data());  // the keys, transposed next
      transpose(o.data(), k, kt.data());
      gather(qkvp, G, k, 2, v.data());
      all_dots(q.data(), kt.data(), mp, G, k, sc, kNegInf, weights.data());
      for (int64_t i = 0; i < k.n; ++i) {
        float* w = weights.data() + i * k.np;  // S's row, then e^(S - max) (⊙ c Z)
        v16 peak_v = splat(kNegInf);
        for (int64_t j0 = 0; j0 < k.np; j0 += W) peak_v = vmax(peak_v, load(w + j0));
        const float peak = hmax(peak_v);
        if (peak == kNegInf) {
          std::memset(w, 0, sizeof(float) * k.np);
          norm[i] = 0.0f;
          continue;
        }
        v16 total_v = v16{};
        if (keepp != nullptr) {
          keep_factors(keepp + (g * L + i) * L, c, k, f.data());
          for (int64_t j0 = 0; j0 < k.np; j0 += W) {
            const v16 e = exp_nonpositive(load(w + j0) - peak);
            store(w + j0, e * load(f.data() + j0));
            total_v += e;
          }
        } else {
          for (int64_t j0 = 0; j0 < k.np; j0 += W) {
            const v16 e = exp_nonpositive(load(w + j0) - peak);
            store(w + j0, e);
            total_v += e;
          }
        }
        const float total = hsum(total_v);
        lp[g * L + i] = peak + std::log(total);
        norm[i] = 1.0f / total;  // applied to the output row
      }
      combine_rows(weights.data(), k.np, k.n, v.data(), k.n, o.data());
      for (int64_t i = 0; i < k.n; ++i) store(op + headed(G, k, i), load(o.data() + i * W) * norm[i]);
    }
  });
  return lse;
}

// Writes the group's rows of ``grad_qkv`` (N, 3, H, 16); returns the scores' gradient
// (B·H, L, L) when ``mask_grad`` (zero outside each block's n × n cells), else None.
std::optional<at::Tensor> backward(at::Tensor& grad_qkv, const at::Tensor& grad,
                                   const at::Tensor& qkv, const at::Tensor& starts,
                                   const at::Tensor& sizes, int64_t length,
                                   const std::optional<at::Tensor>& mask,
                                   const std::optional<at::Tensor>& keep, const at::Tensor& lse,
                                   double scale, double keep_scale, bool mask_grad) {
  const Group G = check_inputs(qkv, starts, sizes, length, mask, keep);
  TORCH_CHECK(grad_qkv.sizes() == qkv.sizes() && grad_qkv.is_contiguous() &&
                  grad_qkv.scalar_type() == at::kFloat,
              "small_attention: grad_qkv must be a contiguous float32 tensor shaped as qkv");
  TORCH_CHECK(grad.is_contiguous() && grad.scalar_type() == at::kFloat && grad.dim() == 3 &&
                  grad.size(0) == qkv.size(0) && grad.size(1) == G.heads && grad.size(2) == W,
              "small_attention: the output's gradient must be a contiguous float32 (N, H, 16) tensor");
  const int64_t blocks = sizes.size(0) * G.heads, L = length;
  std::optional<at::Tensor> dscores;
  if (mask_grad) dscores = at::zeros({blocks, L, L}, qkv.options());
  const float *qkvp = qkv.data_ptr<float>(), *gp = grad.data_ptr<float>();
  const int64_t *st = starts.data_ptr<int64_t>(), *sz = sizes.data_ptr<int64_t>();
  const float* mp = mask ? mask->data_ptr<float>() : nullptr;
  const uint8_t* keepp = keep ? keep->data_ptr<uint8_t>() : nullptr;
  const float* lp = lse.data_ptr<float>();
  float* dqkvp = grad_qkv.data_ptr<float>();
  float* dsp = mask_grad ? dscores->data_ptr<float>() : nullptr;
  const float sc = static_cast<float>(scale), c = static_cast<float>(keep_scale);
  const int64_t Lp = (L + W - 1) / W * W;
  at::parallel_for(0, blocks, 1, [&](int64_t begin, int64_t end) {
    std::vector<float> q(L * W), kk(L * W), go(L * W), tmp(L * W), kt(W * Lp), vt(W * Lp),
        dps(L * Lp), f(Lp, 1.0f), ds(L * Lp), weights(L * Lp);
    for (int64_t g = begin; g < end; ++g) {
      const Block k = block_of(G, st, sz, g);
      if (k.n == 0) continue;
      gather(qkvp, G, k, 0, q.data());
      gather(qkvp, G, k, 1, kk.data());
      transpose(kk.data(), k, kt.data());
      gather(qkvp, G, k, 2, tmp.data());
      transpose(tmp.data(), k, vt.data());
      for (int64_t i = 0; i < k.n; ++i)
        std::memcpy(go.data() + i * W, gp + headed(G, k, i), sizeof(float) * W);
      all_dots(q.data(), kt.data(), mp, G, k, sc, kNegInf, ds.data());           // S
      all_dots(go.data(), vt.data(), nullptr, G, k, 1.0f, 0.0f, dps.data());  // dO Vᵀ
      for (int64_t i = 0; i < k.n; ++i) {
        const float lse_i = lp[g * L + i];
        float* p = ds.data() + i * k.np;        // P's row, then s · dS's in place
        float* w = weights.data() + i * k.np;   // P ⊙ c Z
        float* dp = dps.data() + i * k.np;
        if (lse_i == kNegInf) {
          std::memset(p, 0, sizeof(float) * k.np);
          std::memset(w, 0, sizeof(float) * k.np);
          continue;
        }
        if (keepp != nullptr) keep_factors(keepp + (g * L + i) * L, c, k, f.data());
        v16 dot_v = v16{};
        for (int64_t j0 = 0; j0 < k.np; j0 += W) {
          const v16 pj = exp_nonpositive(load(p + j0) - lse_i);
          const v16 fj = load(f.data() + j0);
          const v16 dpj = load(dp + j0) * fj;
          store(p + j0, pj);
          store(w + j0, pj * fj);
          store(dp + j0, dpj);
          dot_v += pj * dpj;
        }
        const float dot = hsum(dot_v);
        for (int64_t j0 = 0; j0 < k.np; j0 += W) store(p + j0, load(p + j0) * (load(dp + j0) - dot));
        if (dsp) std::memcpy(dsp + (g * L + i) * L, p, sizeof(float) * k.n);
        for (int64_t j0 = 0; j0 < k.np; j0 += W) store(p + j0, load(p + j0) * sc);
      }
      // dQ = s dS K, dK = s dSᵀ Q, dV = (P ⊙ c Z)ᵀ dO, scattered to the nodes' rows
      combine_rows(ds.data(), k.np, k.n, kk.data(), k.n, tmp.data());
      for (int64_t i = 0; i < k.n; ++i)
        std::memcpy(dqkvp + packed(G, k, i, 0), tmp.data() + i * W, sizeof(float) * W);
      combine_cols(ds.data(), k.np, k.n, q.data(), k.n, tmp.data());
      for (int64_t i = 0; i < k.n; ++i)
        std::memcpy(dqkvp + packed(G, k, i, 1), tmp.data() + i * W, sizeof(float) * W);
      combine_cols(weights.data(), k.np, k.n, go.data(), k.n, tmp.data());
      for (int64_t i = 0; i < k.n; ++i)
        std::memcpy(dqkvp + packed(G, k, i, 2), tmp.data() + i * W, sizeof(float) * W);
    }
  });
  return dscores;
}

}  // namespace

TORCH_LIBRARY(graphformer_small_attention, m) {
  m.def(
      "forward(Tensor(a!) out, Tensor qkv, Tensor starts, Tensor sizes, int length, Tensor? mask, "
      "Tensor? keep, float scale, float keep_scale) -> Tensor");
  m.def(
      "backward(Tensor(a!) grad_qkv, Tensor grad, Tensor qkv, Tensor starts, Tensor sizes, "
      "int length, Tensor? mask, Tensor? keep, Tensor lse, float scale, float keep_scale, "
      "bool mask_grad) -> Tensor?");
}

TORCH_LIBRARY_IMPL(graphformer_small_attention, CPU, m) {
  m.impl("forward", &forward);
  m.impl("backward", &backward);
}
