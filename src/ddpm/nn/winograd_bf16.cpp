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

// C[R × 16·NB] = A[R × 2·K2] · B[2·K2 × 16·NB]: A rows of bf16 pairs (lda elements apart), B in pairs
// [K2][ldb/2][2] (ldb elements per pair row), C fp32 (ldc apart). R·NB ≤ 24 accumulators.
template <int R, int NB>
BF16_TARGET inline void gemm_kernel(const uint16_t* A, int64_t lda, const uint16_t* B, int64_t ldb, float* Cm, int64_t ldc,
                                    int64_t K2) {
  __m512 acc[R][NB];
  for (int r = 0; r < R; r++)
    for (int j = 0; j < NB; j++) acc[r][j] = _mm512_setzero_ps();
  for (int64_t k = 0; k < K2; k++) {
    const uint16_t* bk = B + k * ldb;
    __m512i bv[NB];
    for (int j = 0; j < NB; j++) bv[j] = _mm512_loadu_si512(bk + 32 * j);
    for (int r = 0; r < R; r++) {
      int32_t pair;
      std::memcpy(&pair, A + r * lda + 2 * k, sizeof pair);
      const __m512i a = _mm512_set1_epi32(pair);
      for (int j = 0; j < NB; j++)
        acc[r][j] = _mm512_dpbf16_ps(acc[r][j], reinterpret_cast<__m512bh>(a), reinterpret_cast<__m512bh>(bv[j]));
    }
  }
  for (int r = 0; r < R; r++)
    for (int j = 0; j < NB; j++) _mm512_storeu_ps(Cm + r * ldc + 16 * j, acc[r][j]);
}

template <int NB>
BF16_TARGET void gemm_rows(const uint16_t* A, int64_t lda, const uint16_t* B, int64_t ldb, float* Cm, int64_t ldc,
                           int64_t K2, int64_t rows) {
  int64_t r = 0;
  for (; r + 6 <= rows; r += 6) gemm_kernel<6, NB>(A + r * lda, lda, B, ldb, Cm + r * ldc, ldc, K2);
  switch (rows - r) {
    case 5: gemm_kernel<5, NB>(A + r * lda, lda, B, ldb, Cm + r * ldc, ldc, K2); break;
    case 4: gemm_kernel<4, NB>(A + r * lda, lda, B, ldb, Cm + r * ldc, ldc, K2); break;
    case 3: gemm_kernel<3, NB>(A + r * lda, lda, B, ldb, Cm + r * ldc, ldc, K2); break;
    case 2: gemm_kernel<2, NB>(A + r * lda, lda, B, ldb, Cm + r * ldc, ldc, K2); break;
    case 1: gemm_kernel<1, NB>(A + r * lda, lda, B, ldb, Cm + r * ldc, ldc, K2); break;
    default: break;
  }
}

// Tiles [b0·kTiles, b1·kTiles) of the output. V: [16][kTiles][C] bf16, M: [16][kTiles][64] fp32 (scratch).
BF16_TARGET void run_blocks(const Args& a, int64_t b0, int64_t b1, uint16_t* V, float* M) {
  const int64_t C = a.C, O = a.O, H = a.H, W = a.W, per_image = a.th * a.tw;
  for (int64_t blk = b0; blk < b1; blk++) {
    const int64_t t0 = blk * kTiles, nt = std::min(kTiles, a.tiles - t0);
    // V = Bᵀ d B for every tile of the block and every input channel (16 at a time).
    for (int64_t i = 0; i < nt; i++) {
      const int64_t t = t0 + i, n = t / per_image, ty = (t % per_image) / a.tw, tx = t % a.tw;
      const uint16_t* p[4][4];  // the tile's 16 pixels; nullptr in the zero padding
      for (int r = 0; r < 4; r++)
        for (int s = 0; s < 4; s++) {
          const int64_t yy = 2 * ty - 1 + r, xx = 2 * tx - 1 + s;
          p[r][s] = (yy >= 0 && yy < H && xx >= 0 && xx < W) ? a.x + ((n * H + yy) * W + xx) * C : nullptr;
        }
      const bool inside = p[0][0] && p[3][3];  // no padding in the tile: no per-pixel test
      for (int64_t c = 0; c < C; c += 16) {
        __m512 e[4][4];
        for (int s = 0; s < 4; s++) {  // Bᵀ d, a column at a time (16 live registers, not 32)
          __m512 d[4];
          for (int r = 0; r < 4; r++) d[r] = inside || p[r][s] ? load_bf16(p[r][s] + c) : _mm512_setzero_ps();
          e[0][s] = _mm512_sub_ps(d[0], d[2]);
          e[1][s] = _mm512_add_ps(d[1], d[2]);
          e[2][s] = _mm512_sub_ps(d[2], d[1]);
          e[3][s] = _mm512_sub_ps(d[1], d[3]);
        }
        for (int r = 0; r < 4; r++) {  // (Bᵀ d) B
          uint16_t* v = V + (r * 4 * kTiles + i) * C + c;
          store_bf16(v, _mm512_sub_ps(e[r][0], e[r][2]));
          store_bf16(v + kTiles * C, _mm512_add_ps(e[r][1], e[r][2]));
          store_bf16(v + 2 * kTiles * C, _mm512_sub_ps(e[r][2], e[r][1]));
          store_bf16(v + 3 * kTiles * C, _mm512_sub_ps(e[r][1], e[r][3]));
        }
      }
    }
    for (int64_t ob = 0; ob < O; ob += 64) {
      const int nb = static_cast<int>(std::min<int64_t>(64, O - ob) / 16);
      for (int xi = 0; xi < 16; xi++) {  // M_ξ = V_ξ · U_ξ for output channels [ob, ob + 16·nb)
        const uint16_t* A = V + xi * kTiles * C;
        const uint16_t* B = a.u + xi * (C / 2) * O * 2 + ob * 2;
        float* Cm = M + xi * kTiles * 64;
        switch (nb) {
          case 4: gemm_rows<4>(A, C, B, O * 2, Cm, 64, C / 2, nt); break;
          case 3: gemm_rows<3>(A, C, B, O * 2, Cm, 64, C / 2, nt); break;
          case 2: gemm_rows<2>(A, C, B, O * 2, Cm, 64, C / 2, nt); break;
          default: gemm_rows<1>(A, C, B, O * 2, Cm, 64, C / 2, nt); break;
        }
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
    const auto wb = w.to(torch::kBFloat16).contiguous(kCL);
    const auto dw = std::get<1>(at::convolution_backward(dy, x, wb, c10::nullopt, {1, 1}, {1, 1}, {1, 1}, false, {0, 0}, 1,
                                                         {false, true, false}));
    const auto db = dy.sum({0, 2, 3}, false, torch::kFloat32);
    return {dx, dw.to(torch::kFloat32).contiguous(), db};
  }
};

}  // namespace

torch::Tensor winograd_bf16_conv3x3_train(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b) {
  TORCH_CHECK(b.defined(), "winograd_bf16_conv3x3_train: needs a bias");
  return WinogradBf16Fn::apply(x, w, b);
}

}  // namespace ddpm
