// test_attention.cpp — the fused CPU attention (attention.h) against plain LibTorch attention in fp64: the
// output and the gradients of Q, K and V, with one block of query rows, several (a remainder block included)
// and several whole slices per block, with N ≠ M and d ≠ e, whatever the thread count; bf16 inputs come back
// in bf16 near the fp32 answer; large logits do not overflow; no-grad calls give the same numbers. CPU only.
#include "ddpm/nn/attention.h"

#include "tensor_compare.h"

#include <gtest/gtest.h>

using namespace ddpm;
using ddpm::test::max_rel;

namespace {

struct Case {
  int64_t S, N, M, d, e;
  double logit_scale;  // scales q: large values make peaked softmax rows
};

void check(const Case& c, int threads) {
  const int before = at::get_num_threads();
  torch::set_num_threads(threads);
  torch::manual_seed(static_cast<uint64_t>(c.S * 131 + c.N * 7 + c.M));
  auto q = (torch::randn({c.S, c.N, c.d}) * c.logit_scale).requires_grad_();
  auto k = torch::randn({c.S, c.M, c.d}, torch::requires_grad());
  auto v = torch::randn({c.S, c.M, c.e}, torch::requires_grad());
  auto dout = torch::randn({c.S, c.N, c.e});
  auto o = attention(q, k, v);
  ASSERT_EQ(o.sizes(), (std::vector<int64_t>{c.S, c.N, c.e}));
  o.backward(dout);
  // Reference in fp64 by plain ops.
  auto q64 = q.detach().to(torch::kFloat64).requires_grad_(), k64 = k.detach().to(torch::kFloat64).requires_grad_(),
       v64 = v.detach().to(torch::kFloat64).requires_grad_();
  auto ref = attention_reference(q64, k64, v64);
  ref.backward(dout.to(torch::kFloat64));
  torch::set_num_threads(before);
  EXPECT_LT(max_rel(o.detach(), ref.detach()), 2e-6) << "output";
  EXPECT_LT(max_rel(q.grad(), q64.grad()), 2e-5) << "dQ";
  EXPECT_LT(max_rel(k.grad(), k64.grad()), 2e-5) << "dK";
  EXPECT_LT(max_rel(v.grad(), v64.grad()), 2e-6) << "dV";
  {
    torch::NoGradGuard ng;
    EXPECT_TRUE(torch::equal(attention(q, k, v), o.detach())) << "no-grad path differs";
  }
}

}  // namespace

TEST(Attention, MatchesReferenceInOneBlock) { check({6, 49, 49, 16, 16, 1.0}, 2); }

TEST(Attention, MatchesReferenceWithSeveralSlicesPerBlock) {
  // 37 small slices on 2 threads: blocks of 9 whole slices (at least two blocks per thread), the last one short.
  check({37, 20, 20, 8, 8, 1.0}, 2);
  check({64, 49, 49, 64, 64, 1.0}, 2);  // the UNet's 7×7 attention at batch 64
}

TEST(Attention, MatchesReferenceOverSeveralBlocksWithRemainder) {
  // 2000 keys: 32 query rows per 256 KiB block, so 100 queries are 3 full blocks and a remainder of 4.
  check({3, 100, 2000, 8, 5, 1.0}, 2);
}

TEST(Attention, MatchesReferenceOnOneThreadAndWithPeakedRows) {
  check({5, 37, 23, 24, 24, 1.0}, 1);
  check({4, 30, 30, 8, 8, 12.0}, 2);  // logits of order ±100: the max shift keeps exp finite
}

TEST(Attention, Bf16InputsComeBackInBf16NearFp32) {
  torch::NoGradGuard ng;
  torch::manual_seed(3);
  auto q = torch::randn({8, 196, 24}), k = torch::randn({8, 196, 24}), v = torch::randn({8, 196, 24});
  auto ref = attention_reference(q.to(torch::kFloat64), k.to(torch::kFloat64), v.to(torch::kFloat64));
  auto o = attention(q.to(torch::kBFloat16), k.to(torch::kBFloat16), v.to(torch::kBFloat16));
  EXPECT_EQ(o.scalar_type(), torch::kBFloat16);
  EXPECT_LT(max_rel(o, ref), 3e-2);  // bf16 inputs and output: 8 mantissa bits
}

TEST(Attention, StridedInputsAndBadShapes) {
  torch::NoGradGuard ng;
  torch::manual_seed(4);
  auto qkv = torch::randn({2, 40, 3 * 16});  // [S,N,3d]: q, k, v as strided slices (the UNet's layout)
  auto q = qkv.slice(2, 0, 16), k = qkv.slice(2, 16, 32), v = qkv.slice(2, 32);
  auto ref = attention_reference(q.to(torch::kFloat64), k.to(torch::kFloat64), v.to(torch::kFloat64));
  EXPECT_LT(max_rel(attention(q, k, v), ref), 2e-6);
  EXPECT_THROW(attention(q, k.slice(1, 0, 39), v), std::runtime_error);          // M of k ≠ M of v
  EXPECT_THROW(attention(q, k.slice(2, 0, 8), v), std::runtime_error);           // d of k ≠ d of q
  EXPECT_THROW(attention(q[0], k[0], v[0]), std::runtime_error);                 // not [S,N,d]
}
