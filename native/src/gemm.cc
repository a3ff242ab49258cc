#include "gemm.h"

#include <algorithm>
#include <vector>

#include "aligned_buffer.h"
#include "gemm_driver.h"
#include "gemm_skinny.h"
#include "gemv.h"

namespace mt {
namespace {

using gemm::ceil_div;
using gemm::MR;
using gemm::NR;

void scale_c(float* C, int64_t M, int64_t N, int64_t ldc, float beta) {
  for (int64_t i = 0; i < M; i++) {
    float* c = C + i * ldc;
    if (beta == 0.0f)
      for (int64_t j = 0; j < N; j++) c[j] = 0.0f;
    else
      for (int64_t j = 0; j < N; j++) c[j] = beta * c[j];
  }
}

// M == 1 or N == 1: a matrix-vector product on the unpacked operands.
void gemv_case(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
               const float* B, int64_t ldb, float beta, float* C, int64_t ldc, int maxThreads) {
  static thread_local AlignedBuffer vecBuf, outBuf;
  // The vector operand, made contiguous when it is strided.
  auto contiguous = [&](const float* p, int64_t stride) -> const float* {
    if (stride == 1) return p;
    float* v = vecBuf.get(K);
    for (int64_t k = 0; k < K; k++) v[k] = p[k * stride];
    return v;
  };
  if (M == 1) {
    const float* a = contiguous(A, ta ? lda : 1);
    if (tb)
      gemv_rows(N, K, alpha, B, ldb, a, beta, C, 1, maxThreads);
    else
      gemv_cols(N, K, alpha, B, ldb, a, beta, C, maxThreads);
    return;
  }
  const float* b = contiguous(B, tb ? 1 : ldb);
  if (!ta) {
    gemv_rows(M, K, alpha, A, lda, b, beta, C, ldc, maxThreads);
  } else if (ldc == 1) {
    gemv_cols(M, K, alpha, A, lda, b, beta, C, maxThreads);
  } else {
    float* y = outBuf.get(M);
    gemv_cols(M, K, alpha, A, lda, b, 0.0f, y, maxThreads);
    for (int64_t i = 0; i < M; i++) C[i * ldc] = beta == 0.0f ? y[i] : y[i] + beta * C[i * ldc];
  }
}

}  // namespace

void sgemm(bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
           const float* B, int64_t ldb, float beta, float* C, int64_t ldc, int maxThreads) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0) {
    scale_c(C, M, N, ldc, beta);
    return;
  }
  if (M == 1 || N == 1) {
    gemv_case(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, maxThreads);
    return;
  }
  if (sgemm_skinny(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, maxThreads)) return;
  gemm::GemmAC g{transA, M, N, K, alpha, A, lda, beta, C, ldc};
  gemm::gemm_threaded(g, gemm::DenseB{transB, B, ldb}, maxThreads);
}

void sgemm_grouped(bool transA, bool transB, int64_t count, const GemmProblem* problems, float alpha, float beta,
                   int maxThreads) {
  const int threads = maxThreads <= 0 ? pool_threads() : maxThreads;
  // Tasks: (problem, part of parts); a product goes whole unless it is over half a thread's share
  // of the total (then it is cut into a grid of parts as sgemm would).
  struct Task {
    int64_t problem;
    int part, parts, tm, tn;
    double flops;
  };
  static thread_local std::vector<Task> taskBuf;
  std::vector<Task>& tasks = taskBuf;  // (the workers read the caller's list through this reference)
  tasks.clear();
  double total = 0.0;
  for (int64_t i = 0; i < count; i++) {
    const GemmProblem& p = problems[i];
    total += 2.0 * (double)p.M * (double)p.N * (double)p.K;
  }
  const double share = total / (double)(threads > 0 ? threads : 1);
  for (int64_t i = 0; i < count; i++) {
    const GemmProblem& p = problems[i];
    if (p.M <= 0 || p.N <= 0) continue;
    const double flops = 2.0 * (double)p.M * (double)p.N * (double)p.K;
    int parts = (int)(flops / (0.5 * share));
    if (parts > threads) parts = threads;
    // short sides and degenerate products run whole, through sgemm's own paths
    const bool blocked = p.K > 0 && p.M > kSkinnyMax && p.N > kSkinnyMax;
    if (parts < 2 || !blocked || flops < gemm::kMinFlopsPerThread * 2) parts = 1;
    int tm = parts, tn = 1;
    if (parts > 1) {
      double best = -1.0;
      for (int a = 1; a <= parts; a++) {
        if (parts % a) continue;
        const int b = parts / a;
        if (ceil_div(p.M, MR) < a || ceil_div(p.N, NR) < b) continue;
        const double rows = (double)ceil_div(ceil_div(p.M, MR), a) * MR;
        const double cols = (double)ceil_div(ceil_div(p.N, NR), b) * NR;
        const double c = 2.0 * rows * cols * (double)p.K + gemm::kPackCostFlops * (double)p.K * (rows + cols);
        if (best < 0 || c < best) best = c, tm = a, tn = b;
      }
      if (best < 0) parts = 1, tm = 1, tn = 1;
    }
    for (int q = 0; q < parts; q++) tasks.push_back({i, q, parts, tm, tn, flops / parts});
  }
  // largest first: the last tasks to be claimed are the short ones
  std::stable_sort(tasks.begin(), tasks.end(), [](const Task& a, const Task& b) { return a.flops > b.flops; });
  auto body = [&](int t, int) {
    const Task& task = tasks[(size_t)t];
    const GemmProblem& p = problems[task.problem];
    const bool blocked = p.K > 0 && p.M > kSkinnyMax && p.N > kSkinnyMax;
    if (task.parts == 1 && !blocked) {
      sgemm(transA, transB, p.M, p.N, p.K, alpha, p.A, p.lda, p.B, p.ldb, beta, p.C, p.ldc, 1);
      return;
    }
    const gemm::GemmAC g{transA, p.M, p.N, p.K, alpha, p.A, p.lda, beta, p.C, p.ldc};
    int64_t m0, m1, n0, n1;
    gemm::split_range(p.M, task.tm, MR, task.part / task.tn, m0, m1);
    gemm::split_range(p.N, task.tn, NR, task.part % task.tn, n0, n1);
    gemm::gemm_region(g, gemm::DenseB{transB, p.B, p.ldb}, m0, m1, n0, n1);
  };
  if (threads <= 1) {
    for (size_t t = 0; t < tasks.size(); t++) body((int)t, (int)tasks.size());
    return;
  }
  run_tasks((int)tasks.size(), body);
}

int64_t gemm_mr() { return MR; }
int64_t gemm_nr() { return NR; }
int64_t gemm_packed_a_size(int64_t M, int64_t K) { return ceil_div(M, MR) * MR * K; }
int64_t gemm_packed_b_size(int64_t K, int64_t N) { return ceil_div(N, NR) * NR * K; }

void gemm_pack_a(bool transA, int64_t M, int64_t K, const float* A, int64_t lda, float* Ap) {
  gemm::pack_a(transA, A, lda, 0, M, 0, K, Ap);
}

void gemm_pack_b(bool transB, int64_t K, int64_t N, const float* B, int64_t ldb, float* Bp) {
  gemm::pack_b(transB, B, ldb, 0, K, 0, N, Bp);
}

void sgemm_packed(int64_t M, int64_t N, int64_t K, float alpha, const float* Ap, int64_t aPanelStride,
                  const float* Bp, int64_t bPanelStride, float beta, float* C, int64_t ldc) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0) {
    scale_c(C, M, N, ldc, beta);
    return;
  }
  gemm::macro_kernel(M, N, K, alpha, Ap, aPanelStride, Bp, bPanelStride, beta, C, ldc);
}

}  // namespace mt
