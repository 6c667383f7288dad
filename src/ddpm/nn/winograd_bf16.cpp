// winograd_bf16.cpp — see winograd_bf16.h. The kernels are compiled for AVX-512 BF16 through GCC/Clang target
// attributes (the rest of the build stays x86-64 baseline) and only called where cpu_features() has it.
// F(2×2, 3×3), Lavin & Gray 2016 §4.1: Y = Aᵀ[(G g Gᵀ) ⊙ (Bᵀ d B)]A for each 4×4 input tile d (stride 2) and
// 2×2 output tile Y, with
//   Bᵀ = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1],  G = [1 0 0; ½ ½ ½; ½ -½ ½; 0 0 1],  Aᵀ = [1 1 1 0; 0 1 -1 -1].
// The sum over input channels c of U[ξ][o][c]·V[ξ][tile][c] is, for each of the 16 positions ξ, a GEMM
// M_ξ[tiles × O] = V_ξ[tiles × C] · U_ξ[C × O]. Tiles go through in blocks of kTiles (per thread: transform the
// block's inputs, 16 GEMMs per 64 output channels, transform back), so V and M stay in the core's L2.
#include "ddpm/nn/winograd_bf16.h"

#include "ddpm/nn/winograd_conv.h"
#include "ddpm/util/cpu_features.h"

#include <ATen/Parallel.h>
#include <torch/csrc/autograd/custom_function.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define DDPM_WINOGRAD_BF16 1
#include <immintrin.h>
#define BF16_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))
#endif

namespace ddpm {

bool winograd_bf16_available() {
#if defined(DDPM_WINOGRAD_BF16)
  const auto& f = cpu_features();
  return winograd_enabled() && f.avx512_bf16 && !f.amx_bf16;
#else
  return false;
#endif
}

bool winograd_bf16_applies(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b, int64_t stride,
                           int64_t padding, int64_t dilation, int64_t groups) {
  if (!winograd_bf16_available() || stride != 1 || padding != 1 || dilation != 1 || groups != 1) return false;
  if (!x.defined() || !w.defined() || x.dim() != 4 || w.dim() != 4 || !x.device().is_cpu()) return false;
  if (x.scalar_type() != torch::kBFloat16 || w.scalar_type() != torch::kFloat32) return false;
  if (!x.is_contiguous(at::MemoryFormat::ChannelsLast)) return false;
  if (b.defined() && (b.scalar_type() != torch::kFloat32 || b.dim() != 1 || b.size(0) != w.size(0))) return false;
  const int64_t C = x.size(1), O = w.size(0);
  return w.size(1) == C && w.size(2) == 3 && w.size(3) == 3 && C % 16 == 0 && O % 16 == 0 && C > 0 && O > 0 &&
         x.size(0) > 0 && x.size(2) > 0 && x.size(3) > 0;
}

torch::Tensor winograd_bf16_weights(const torch::Tensor& w) {
  TORCH_CHECK(w.dim() == 4 && w.size(2) == 3 && w.size(3) == 3 && w.size(1) % 2 == 0,
              "winograd_bf16_weights: expected [O,C,3,3] with C even, got ", w.sizes());
  const auto wc = w.detach().to(torch::kFloat32).contiguous();
  const int64_t O = wc.size(0), C = wc.size(1);
  auto u = torch::empty({16, C / 2, O, 2}, wc.options());
  const float* g = wc.data_ptr<float>();
  float* up = u.data_ptr<float>();
  static const float G[4][3] = {{1, 0, 0}, {0.5f, 0.5f, 0.5f}, {0.5f, -0.5f, 0.5f}, {0, 0, 1}};
  at::parallel_for(0, O, 1, [&](int64_t o0, int64_t o1) {
    for (int64_t o = o0; o < o1; o++)
      for (int64_t c = 0; c < C; c++) {
        const float* k = g + (o * C + c) * 9;  // 3×3
        float t[4][3];                          // G g
        for (int i = 0; i < 4; i++)
          for (int j = 0; j < 3; j++) t[i][j] = G[i][0] * k[j] + G[i][1] * k[3 + j] + G[i][2] * k[6 + j];
        for (int i = 0; i < 4; i++)
          for (int l = 0; l < 4; l++)  // (G g) Gᵀ
            up[(((i * 4 + l) * (C / 2) + c / 2) * O + o) * 2 + c % 2] = t[i][0] * G[l][0] + t[i][1] * G[l][1] + t[i][2] * G[l][2];
      }
  });
  return u.to(torch::kBFloat16);
}

#if defined(DDPM_WINOGRAD_BF16)
namespace {

// GEMM rows per block: a multiple of the kernel's 6 rows; V, M ≤ 0.8 MB at C = 256. Not 64: M's 16 planes would
// then lie 16 KiB apart and share L1 sets in the output transform (measured 2× slower there).
constexpr int64_t kTiles = 60;

struct Args {
  const uint16_t* x;  // [N,H,W,C] bf16 bits
  const uint16_t* u;  // [16][C/2][O][2]
  const float* bias;  // [O] or nullptr
  uint16_t* y;        // [N,H,W,O]
  int64_t N, C, H, W, O, th, tw, tiles;
};

// 16 bf16 → 16 fp32 (a bf16 is the top half of an fp32).
BF16_TARGET inline __m512 load_bf16(const uint16_t* p) {
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))), 16));
}
// 16 fp32 → 16 bf16, round to nearest even (as LibTorch's casts and oneDNN's bf16 outputs).
BF16_TARGET inline void store_bf16(uint16_t* p, __m512 v) {
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), reinterpret_cast<__m256i>(_mm512_cvtneps_pbh(v)));
}

// C[R × 16·NB] (=, or += with ACC) A[R × 2·K2] · B[2·K2 × 16·NB]: A's rows lda elements apart, its bf16 pairs
// ldk apart (2: contiguous); B in pairs [K2][ldb/2][2] (ldb elements per pair row); C fp32, rows ldc apart.
// R·NB ≤ 24 accumulators.
template <int R, int NB, bool ACC>
BF16_TARGET inline void gemm_kernel(const uint16_t* A, int64_t lda, int64_t ldk, const uint16_t* B, int64_t ldb, float* Cm,
                                    int64_t ldc, int64_t K2) {
  __m512 acc[R][NB];
  for (int r = 0; r < R; r++)
    for (int j = 0; j < NB; j++) acc[r][j] = ACC ? _mm512_loadu_ps(Cm + r * ldc + 16 * j) : _mm512_setzero_ps();
  for (int64_t k = 0; k < K2; k++) {
    const uint16_t* bk = B + k * ldb;
    __m512i bv[NB];
    for (int j = 0; j < NB; j++) bv[j] = _mm512_loadu_si512(bk + 32 * j);
    for (int r = 0; r < R; r++) {
      int32_t pair;
      std::memcpy(&pair, A + r * lda + k * ldk, sizeof pair);
      const __m512i a = _mm512_set1_epi32(pair);
      for (int j = 0; j < NB; j++)
        acc[r][j] = _mm512_dpbf16_ps(acc[r][j], reinterpret_cast<__m512bh>(a), reinterpret_cast<__m512bh>(bv[j]));
    }
  }
  for (int r = 0; r < R; r++)
    for (int j = 0; j < NB; j++) _mm512_storeu_ps(Cm + r * ldc + 16 * j, acc[r][j]);
}

template <int NB, bool ACC>
BF16_TARGET void gemm_rows(const uint16_t* A, int64_t lda, int64_t ldk, const uint16_t* B, int64_t ldb, float* Cm,
                           int64_t ldc, int64_t K2, int64_t rows) {
  int64_t r = 0;
  for (; r + 6 <= rows; r += 6) gemm_kernel<6, NB, ACC>(A + r * lda, lda, ldk, B, ldb, Cm + r * ldc, ldc, K2);
  switch (rows - r) {
    case 5: gemm_kernel<5, NB, ACC>(A + r * lda, lda, ldk, B, ldb, Cm + r * ldc, ldc, K2); break;
    case 4: gemm_kernel<4, NB, ACC>(A + r * lda, lda, ldk, B, ldb, Cm + r * ldc, ldc, K2); break;
    case 3: gemm_kernel<3, NB, ACC>(A + r * lda, lda, ldk, B, ldb, Cm + r * ldc, ldc, K2); break;
    case 2: gemm_kernel<2, NB, ACC>(A + r * lda, lda, ldk, B, ldb, Cm + r * ldc, ldc, K2); break;
    case 1: gemm_kernel<1, NB, ACC>(A + r * lda, lda, ldk, B, ldb, Cm + r * ldc, ldc, K2); break;
    default: break;
  }
}

// rows × cols (cols a multiple of 16) through gemm_rows, 64 columns at a time.
template <bool ACC>
BF16_TARGET void gemm(const uint16_t* A, int64_t lda, int64_t ldk, const uint16_t* B, int64_t ldb, float* Cm, int64_t ldc,
                      int64_t K2, int64_t rows, int64_t cols) {
  for (int64_t cb = 0; cb < cols; cb += 64) {
    const uint16_t* Bc = B + cb * 2;
    float* Cc = Cm + cb;
    switch (std::min<int64_t>(64, cols - cb) / 16) {
      case 4: gemm_rows<4, ACC>(A, lda, ldk, Bc, ldb, Cc, ldc, K2, rows); break;
      case 3: gemm_rows<3, ACC>(A, lda, ldk, Bc, ldb, Cc, ldc, K2, rows); break;
      case 2: gemm_rows<2, ACC>(A, lda, ldk, Bc, ldb, Cc, ldc, K2, rows); break;
      default: gemm_rows<1, ACC>(A, lda, ldk, Bc, ldb, Cc, ldc, K2, rows); break;
    }
  }
}

// Bᵀ d B of tile (n, ty, tx) for channels [c, c + 16) of x [N,H,W,C] → v[16] (ξ = 4·row + column).
BF16_TARGET inline void input_tile(const uint16_t* x, int64_t C, int64_t H, int64_t W, int64_t n, int64_t ty, int64_t tx,
                                   int64_t c, __m512* v) {
  __m512 e[4][4];
  const bool inside = ty >= 1 && tx >= 1 && 2 * ty + 2 < H && 2 * tx + 2 < W;  // no padding in the tile
  const int64_t o0 = ((n * H + 2 * ty - 1) * W + 2 * tx - 1) * C + c;  // offset of the tile's pixel (−1, −1)
  for (int s = 0; s < 4; s++) {
    __m512 d[4];
    const int64_t xx = 2 * tx - 1 + s;
    for (int r = 0; r < 4; r++) {
      const int64_t yy = 2 * ty - 1 + r;
      d[r] = inside || (yy >= 0 && yy < H && xx >= 0 && xx < W) ? load_bf16(x + (o0 + (r * W + s) * C)) : _mm512_setzero_ps();
    }
    e[0][s] = _mm512_sub_ps(d[0], d[2]);
    e[1][s] = _mm512_add_ps(d[1], d[2]);
    e[2][s] = _mm512_sub_ps(d[2], d[1]);
    e[3][s] = _mm512_sub_ps(d[1], d[3]);
  }
  for (int r = 0; r < 4; r++) {
    v[r * 4 + 0] = _mm512_sub_ps(e[r][0], e[r][2]);
    v[r * 4 + 1] = _mm512_add_ps(e[r][1], e[r][2]);
    v[r * 4 + 2] = _mm512_sub_ps(e[r][2], e[r][1]);
    v[r * 4 + 3] = _mm512_sub_ps(e[r][1], e[r][3]);
  }
}

// Tiles [b0·kTiles, b1·kTiles) of the output. V: [16][kTiles][C] bf16, M: [16][kTiles][64] fp32 (scratch).
BF16_TARGET void run_blocks(const Args& a, int64_t b0, int64_t b1, uint16_t* V, float* M) {
  const int64_t C = a.C, O = a.O, H = a.H, W = a.W, per_image = a.th * a.tw;
  for (int64_t blk = b0; blk < b1; blk++) {
    const int64_t t0 = blk * kTiles, nt = std::min(kTiles, a.tiles - t0);
    // V = Bᵀ d B for every tile of the block and every input channel (16 at a time).
    __m512 v[16];
    for (int64_t i = 0; i < nt; i++) {
      const int64_t t = t0 + i, n = t / per_image, ty = (t % per_image) / a.tw, tx = t % a.tw;
      for (int64_t c = 0; c < C; c += 16) {
        input_tile(a.x, C, H, W, n, ty, tx, c, v);
        for (int xi = 0; xi < 16; xi++) store_bf16(V + (xi * kTiles + i) * C + c, v[xi]);
      }
    }
    for (int64_t ob = 0; ob < O; ob += 64) {
      const int nb = static_cast<int>(std::min<int64_t>(64, O - ob) / 16);
      for (int xi = 0; xi < 16; xi++) {  // M_ξ = V_ξ · U_ξ for output channels [ob, ob + 16·nb)
        const uint16_t* A = V + xi * kTiles * C;
        const uint16_t* B = a.u + xi * (C / 2) * O * 2 + ob * 2;
        float* Cm = M + xi * kTiles * 64;
        gemm<false>(A, C, 2, B, O * 2, Cm, 64, C / 2, nt, 16 * nb);
      }
      // Y = Aᵀ M A (+ bias), cropped to the image.
      for (int64_t i = 0; i < nt; i++) {
        const int64_t t = t0 + i, n = t / per_image, ty = (t % per_image) / a.tw, tx = t % a.tw;
        for (int j = 0; j < nb; j++) {
          const int64_t o = 16 * j;
          __m512 m[4][4], s[2][4];
          for (int r = 0; r < 4; r++)
            for (int q = 0; q < 4; q++) m[r][q] = _mm512_loadu_ps(M + ((r * 4 + q) * kTiles + i) * 64 + o);
          for (int q = 0; q < 4; q++) {  // Aᵀ M
            s[0][q] = _mm512_add_ps(_mm512_add_ps(m[0][q], m[1][q]), m[2][q]);
            s[1][q] = _mm512_sub_ps(_mm512_sub_ps(m[1][q], m[2][q]), m[3][q]);
          }
          const __m512 bv = a.bias ? _mm512_loadu_ps(a.bias + ob + o) : _mm512_setzero_ps();
          for (int r = 0; r < 2; r++) {  // (Aᵀ M) A
            const int64_t yy = 2 * ty + r, xx = 2 * tx;
            if (yy >= H) break;
            uint16_t* out = a.y + ((n * H + yy) * W + xx) * O + ob + o;
            store_bf16(out, _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(s[r][0], s[r][1]), s[r][2]), bv));
            if (xx + 1 < W) store_bf16(out + O, _mm512_add_ps(_mm512_sub_ps(_mm512_sub_ps(s[r][1], s[r][2]), s[r][3]), bv));
          }
        }
      }
    }
  }
}

// ---- backward-weights: dL/dU_ξ[o][c] = Σ_tiles (A dY Aᵀ)_ξ[o] · (Bᵀ d B)_ξ[c], then dL/dg = Gᵀ (dL/dU) G ----

constexpr int64_t kTilesW = 120;  // tiles per block (even: the GEMM's K runs over pairs of tiles)

// A dY Aᵀ of the 2×2 output tile (n, ty, tx) of dy [N,H,W,O] for channels [o, o + 16) → m[16]; A = (Aᵀ)ᵀ, rows
// [1 0; 1 1; 1 -1; 0 -1]. Pixels outside the image (odd H, W) count as 0.
BF16_TARGET inline void output_grad_tile(const uint16_t* dy, int64_t O, int64_t H, int64_t W, int64_t n, int64_t ty,
                                         int64_t tx, int64_t o, __m512* m) {
  __m512 g[2][2];
  for (int r = 0; r < 2; r++)
    for (int q = 0; q < 2; q++) {
      const int64_t yy = 2 * ty + r, xx = 2 * tx + q;
      g[r][q] = (yy < H && xx < W) ? load_bf16(dy + ((n * H + yy) * W + xx) * O + o) : _mm512_setzero_ps();
    }
  __m512 t[4][2];  // A g
  for (int q = 0; q < 2; q++) {
    t[0][q] = g[0][q];
    t[1][q] = _mm512_add_ps(g[0][q], g[1][q]);
    t[2][q] = _mm512_sub_ps(g[0][q], g[1][q]);
    t[3][q] = _mm512_sub_ps(_mm512_setzero_ps(), g[1][q]);
  }
  for (int r = 0; r < 4; r++) {  // (A g) Aᵀ
    m[r * 4 + 0] = t[r][0];
    m[r * 4 + 1] = _mm512_add_ps(t[r][0], t[r][1]);
    m[r * 4 + 2] = _mm512_sub_ps(t[r][0], t[r][1]);
    m[r * 4 + 3] = _mm512_sub_ps(_mm512_setzero_ps(), t[r][1]);
  }
}

// Two tiles' 16 channels as 16 bf16 pairs (tile a, tile b) per channel: VDPBF16PS's pair layout along the tiles.
BF16_TARGET inline void store_pairs(uint16_t* p, __m512 a, __m512 b) {
  static const int16_t kIdx[32] = {0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23,
                                   8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31};
  const __m512i both = reinterpret_cast<__m512i>(_mm512_cvtne2ps_pbh(b, a));  // words 0–15: a, 16–31: b
  _mm512_storeu_si512(p, _mm512_permutexvar_epi16(_mm512_loadu_si512(kIdx), both));
}

struct WArgs {
  const uint16_t* x;   // [N,H,W,C]
  const uint16_t* dy;  // [N,H,W,O]
  int64_t N, C, H, W, O, th, tw, tiles;
};

// Blocks blk = first, first + step, … of the tiles, summed into dU [16][O][C] (fp32, this thread's own).
// Vp: [16][kTilesW/2][C][2], Mp: [16][kTilesW/2][O][2] bf16 (scratch).
BF16_TARGET void weight_grad_blocks(const WArgs& a, int64_t first, int64_t step, uint16_t* Vp, uint16_t* Mp, float* dU) {
  const int64_t C = a.C, O = a.O, per_image = a.th * a.tw, P = kTilesW / 2;
  __m512 va[16], vb[16];
  for (int64_t t0 = first * kTilesW; t0 < a.tiles; t0 += step * kTilesW) {
    const int64_t nt = std::min(kTilesW, a.tiles - t0), np = (nt + 1) / 2;
    for (int64_t q = 0; q < np; q++) {
      const int64_t ta = t0 + 2 * q, tb = ta + 1;
      const bool has_b = 2 * q + 1 < nt;
      const int64_t na = ta / per_image, ya = (ta % per_image) / a.tw, xa = ta % a.tw;
      const int64_t nb = tb / per_image, yb = (tb % per_image) / a.tw, xb = tb % a.tw;
      for (int64_t c = 0; c < C; c += 16) {
        input_tile(a.x, C, a.H, a.W, na, ya, xa, c, va);
        if (has_b) input_tile(a.x, C, a.H, a.W, nb, yb, xb, c, vb);
        else
          for (auto& v : vb) v = _mm512_setzero_ps();
        for (int xi = 0; xi < 16; xi++) store_pairs(Vp + ((xi * P + q) * C + c) * 2, va[xi], vb[xi]);
      }
      for (int64_t o = 0; o < O; o += 16) {
        output_grad_tile(a.dy, O, a.H, a.W, na, ya, xa, o, va);
        if (has_b) output_grad_tile(a.dy, O, a.H, a.W, nb, yb, xb, o, vb);
        else
          for (auto& v : vb) v = _mm512_setzero_ps();
        for (int xi = 0; xi < 16; xi++) store_pairs(Mp + ((xi * P + q) * O + o) * 2, va[xi], vb[xi]);
      }
    }
    // dU_ξ[O × C] += Mp_ξ (rows o: 2 apart, tile pairs 2·O apart) · Vp_ξ (pairs of rows C wide)
    for (int xi = 0; xi < 16; xi++)
      gemm<true>(Mp + xi * P * O * 2, 2, 2 * O, Vp + xi * P * C * 2, 2 * C, dU + xi * O * C, C, np, O, C);
  }
}

}  // namespace
#endif

torch::Tensor winograd_bf16_conv3x3(const torch::Tensor& x, const torch::Tensor& u, const torch::Tensor& b) {
#if defined(DDPM_WINOGRAD_BF16)
  TORCH_CHECK(winograd_bf16_available(), "winograd_bf16_conv3x3: needs AVX-512 BF16");
  TORCH_CHECK(x.dim() == 4 && x.scalar_type() == torch::kBFloat16 && x.is_contiguous(at::MemoryFormat::ChannelsLast),
              "winograd_bf16_conv3x3: x must be bf16 channels-last [N,C,H,W]");
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  TORCH_CHECK(u.dim() == 4 && u.size(0) == 16 && u.size(1) * 2 == C && u.size(3) == 2 && u.scalar_type() == torch::kBFloat16 &&
                  u.is_contiguous() && C % 16 == 0 && u.size(2) % 16 == 0,
              "winograd_bf16_conv3x3: weights ", u.sizes(), " do not fit x ", x.sizes());
  const int64_t O = u.size(2);
  torch::Tensor bias;
  if (b.defined()) {
    bias = b.to(torch::kFloat32).contiguous();
    TORCH_CHECK(bias.dim() == 1 && bias.size(0) == O, "winograd_bf16_conv3x3: bias ", b.sizes(), " for ", O, " channels");
  }
  auto y = torch::empty({N, O, H, W}, x.options().memory_format(at::MemoryFormat::ChannelsLast));
  Args a{reinterpret_cast<const uint16_t*>(x.data_ptr()), reinterpret_cast<const uint16_t*>(u.data_ptr()),
         bias.defined() ? bias.data_ptr<float>() : nullptr, reinterpret_cast<uint16_t*>(y.data_ptr()),
         N, C, H, W, O, (H + 1) / 2, (W + 1) / 2, 0};
  a.tiles = N * a.th * a.tw;
  const int64_t blocks = (a.tiles + kTiles - 1) / kTiles;
  at::parallel_for(0, blocks, 1, [&](int64_t b0, int64_t b1) {
    std::vector<uint16_t> V(static_cast<size_t>(16 * kTiles * C));
    std::vector<float> M(static_cast<size_t>(16 * kTiles * 64));
    run_blocks(a, b0, b1, V.data(), M.data());
  });
  return y;
#else
  (void)x, (void)u, (void)b;
  TORCH_CHECK(false, "winograd_bf16_conv3x3: not built for this CPU architecture");
#endif
}

torch::Tensor winograd_bf16_weight_grad(const torch::Tensor& x, const torch::Tensor& dy) {
#if defined(DDPM_WINOGRAD_BF16)
  TORCH_CHECK(winograd_bf16_available(), "winograd_bf16_weight_grad: needs AVX-512 BF16");
  TORCH_CHECK(x.dim() == 4 && dy.dim() == 4 && x.scalar_type() == torch::kBFloat16 && dy.scalar_type() == torch::kBFloat16 &&
                  x.is_contiguous(at::MemoryFormat::ChannelsLast) && dy.is_contiguous(at::MemoryFormat::ChannelsLast) &&
                  x.size(0) == dy.size(0) && x.size(2) == dy.size(2) && x.size(3) == dy.size(3) && x.size(1) % 16 == 0 &&
                  dy.size(1) % 16 == 0,
              "winograd_bf16_weight_grad: x ", x.sizes(), " and dy ", dy.sizes(), " must be bf16 channels-last, same N, H, W");
  WArgs a{reinterpret_cast<const uint16_t*>(x.data_ptr()), reinterpret_cast<const uint16_t*>(dy.data_ptr()), x.size(0),
          x.size(1), x.size(2), x.size(3), dy.size(1), (x.size(2) + 1) / 2, (x.size(3) + 1) / 2, 0};
  a.tiles = a.N * a.th * a.tw;
  const int64_t C = a.C, O = a.O, blocks = (a.tiles + kTilesW - 1) / kTilesW;
  // A fixed split of the blocks over the threads and a fixed order of the final sum: the same result every run
  // with the same thread count.
  const int64_t parts = std::max<int64_t>(1, std::min<int64_t>(at::get_num_threads(), blocks));
  auto dU = torch::zeros({parts, 16, O, C}, torch::kFloat32);
  at::parallel_for(0, parts, 1, [&](int64_t p0, int64_t p1) {
    std::vector<uint16_t> Vp(static_cast<size_t>(16 * kTilesW * C)), Mp(static_cast<size_t>(16 * kTilesW * O));
    for (int64_t p = p0; p < p1; p++) weight_grad_blocks(a, p, parts, Vp.data(), Mp.data(), dU[p].data_ptr<float>());
  });
  const auto u = dU.sum(0);  // [16, O, C]
  const auto G = torch::tensor({1.f, 0.f, 0.f, .5f, .5f, .5f, .5f, -.5f, .5f, 0.f, 0.f, 1.f}).view({4, 3});
  return torch::einsum("ki,kloc,lj->ocij", {G, u.view({4, 4, O, C}), G}).contiguous();  // Gᵀ dU G: [O, C, 3, 3]
#else
  (void)x, (void)dy;
  TORCH_CHECK(false, "winograd_bf16_weight_grad: not built for this CPU architecture");
#endif
}

namespace {

constexpr auto kCL = at::MemoryFormat::ChannelsLast;

struct WinogradBf16Fn : public torch::autograd::Function<WinogradBf16Fn> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x, const torch::Tensor& w,
                               const torch::Tensor& b) {
    ctx->save_for_backward({x, w});
    return winograd_bf16_conv3x3(x, winograd_bf16_weights(w), b);
  }
  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx, torch::autograd::tensor_list g) {
    const auto saved = ctx->get_saved_variables();
    const auto &x = saved[0], &w = saved[1];
    const auto dy = g[0].to(torch::kBFloat16).contiguous(kCL);  // [N,O,H,W]
    // dL/dx = conv(dy, w flipped in space, in and out channels swapped), stride 1, padding 1.
    const auto dx = winograd_bf16_conv3x3(dy, winograd_bf16_weights(w.flip({2, 3}).transpose(0, 1)), torch::Tensor());
    // Backward-weights through Winograd where it measured faster than LibTorch's bf16 kernel (bench_winograd_bf16,
    // docs/precision.md: 1.5–1.6× at ≤ 128×128 channels on ≥ 14×14 pixels); with more channels its per-block
    // fp32 sums (16·C·O floats) leave L2, and 7×7 images have too few tiles, so there the direct kernel stays.
    torch::Tensor dw;
    if (x.size(1) * dy.size(1) <= 128 * 128 && x.size(2) * x.size(3) >= 14 * 14) {
      dw = winograd_bf16_weight_grad(x, dy);
    } else {
      const auto wb = w.to(torch::kBFloat16).contiguous(kCL);
      dw = std::get<1>(at::convolution_backward(dy, x, wb, c10::nullopt, {1, 1}, {1, 1}, {1, 1}, false, {0, 0}, 1,
                                                {false, true, false}))
               .to(torch::kFloat32)
               .contiguous();
    }
    const auto db = dy.sum({0, 2, 3}, false, torch::kFloat32);
    return {dx, dw, db};
  }
};

}  // namespace

torch::Tensor winograd_bf16_conv3x3_train(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b) {
  TORCH_CHECK(b.defined(), "winograd_bf16_conv3x3_train: needs a bias");
  return WinogradBf16Fn::apply(x, w, b);
}

}  // namespace ddpm
