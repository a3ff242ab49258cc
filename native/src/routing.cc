#include "routing.h"

#include <cstring>
#include <vector>

#include "softmax.h"
#include "thread_pool.h"

namespace mt {
namespace {
constexpr int64_t kRowGrain = 2048;  // tokens per thread, at least (~50 ns each: a layer of 512 runs on one)

// The k largest of p[0..R) in descending order, ties to the lower row; the same partial selection
// as topkRows in src/tensor/topk.ts (a candidate enters only past entries with a larger value, so
// a NaN never displaces a number once the list is full).
inline void top_k_row(const float* p, int64_t R, int64_t k, int32_t* idx) {
  int64_t n = 0;
  for (int64_t c = 0; c < R; c++) {
    const float v = p[c];
    if (n == k && !(v > p[idx[k - 1]])) continue;
    int64_t j = n < k ? n++ : k - 1;
    while (j > 0 && v > p[idx[j - 1]]) {
      idx[j] = idx[j - 1];
      j--;
    }
    idx[j] = (int32_t)c;
  }
}

// The same choice for a short row without NaN (probabilities >= 0), without branches on the values
// (the insertion above mispredicts several times per token on fresh router output): row c goes to
// slot rank(c) = #{larger} + #{equal and before c}, its place in the stable descending order, when
// that is below k. Fixed-length loops over the row padded with -1, so they vectorise.
template <int W>
inline void top_k_short(const float* p, int64_t R, int64_t k, int32_t* idx) {
  alignas(64) float q[W];
  for (int o = 0; o < W; o++) q[o] = o < R ? p[o] : -1.0f;
  int32_t slot[W + 1];  // slot[k] takes every row ranked k or later
  for (int64_t c = 0; c < R; c++) {
    const float v = q[c];
    int32_t rank = 0;
    for (int o = 0; o < W; o++) rank += (int32_t)((q[o] > v) | ((q[o] == v) & (o < c)));
    slot[rank < k ? rank : k] = (int32_t)c;
  }
  for (int64_t j = 0; j < k; j++) idx[j] = slot[j];
}

inline bool has_nan(const float* p, int64_t R) {
  bool nan = false;
  for (int64_t c = 0; c < R; c++) nan |= p[c] != p[c];
  return nan;
}

// The gate denominator of one token: its chosen true probabilities summed in double and rounded to
// float (as a float32 sum over the slots), or 1 when it chose none.
inline float denominator(const float* p, const int32_t* idx, int64_t k, int64_t N) {
  double s = 0.0;
  bool any = false;
  for (int64_t j = 0; j < k; j++) {
    const bool tr = idx[j] < N;
    s += tr ? (double)p[idx[j]] : 0.0;
    any |= tr;
  }
  return any ? (float)s : 1.0f;
}

}  // namespace

int64_t route_top_k(const float* logits, int64_t T, int64_t R, int64_t N, int64_t k, bool normalize, float* probs,
                    int32_t* slot_rows, int32_t* slot_pair, int32_t* top1, uint8_t* selected, int32_t* offsets,
                    int32_t* tokens, float* gates, float* null_sums) {
  for (int64_t e = 0; e <= N; e++) offsets[e] = 0;
  if (T <= 0) return 0;
  softmax_forward(logits, T, R, probs);
  parallel_for(T, kRowGrain, [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; t++) {
      const float* p = probs + t * R;
      int32_t* idx = slot_rows + t * k;
      if (R <= 32 && !has_nan(p, R)) {
        if (R <= 16)
          top_k_short<16>(p, R, k, idx);
        else
          top_k_short<32>(p, R, k, idx);
        top1[t] = idx[0];  // rank 0: the largest, first on ties
      } else {
        top_k_row(p, R, k, idx);
        int32_t a = -1;
        float best = 0.0f;
        for (int64_t c = 0; c < R; c++) {
          if (a < 0 || p[c] > best) {
            best = p[c];
            a = (int32_t)c;
          }
        }
        top1[t] = a;
      }
      uint8_t* sel = selected + t * R;
      std::memset(sel, 0, (size_t)R);
      for (int64_t j = 0; j < k; j++) sel[idx[j]] = 1;
      if (null_sums) {
        double s = 0.0;
        for (int64_t j = 0; j < k; j++) s += idx[j] >= N ? (double)p[idx[j]] : 0.0;
        null_sums[t] = (float)s;
      }
    }
  });
  // counting sort of the pairs by expert, tokens ascending within an expert; null slots count and
  // write into a spare slot N (no branch on which slots are null)
  std::vector<int32_t> next((size_t)N + 1, 0);
  for (int64_t s = 0; s < T * k; s++) next[slot_rows[s] < N ? slot_rows[s] : N]++;
  for (int64_t e = 0; e < N; e++) offsets[e + 1] = offsets[e] + next[e];
  for (int64_t e = 0; e < N; e++) next[e] = offsets[e];
  next[N] = 0;
  int32_t spareToken;
  float spareGate;
  for (int64_t t = 0; t < T; t++) {
    const float* p = probs + t * R;
    const int32_t* idx = slot_rows + t * k;
    const float denom = normalize ? denominator(p, idx, k, N) : 1.0f;
    for (int64_t j = 0; j < k; j++) {
      const int32_t r = idx[j];
      const bool tr = r < N;
      const int64_t e = tr ? r : N;
      const int32_t q = next[e];
      next[e] = q + (int32_t)tr;
      *(tr ? tokens + q : &spareToken) = (int32_t)t;
      *(tr ? gates + q : &spareGate) = normalize ? p[r] / denom : p[r];
      slot_pair[t * k + j] = tr ? q : -1;
    }
  }
  return offsets[N];
}

void route_top_k_backward(const float* probs, const int32_t* slot_rows, const int32_t* slot_pair, const float* gates,
                          int64_t T, int64_t R, int64_t N, int64_t k, bool normalize, const float* dprobs,
                          const float* dgates, const float* dnull, float* dlogits) {
  parallel_for(T, kRowGrain, [&](int64_t b, int64_t e) {
    std::vector<double> d((size_t)R);  // dL/dprobs of one token, in double (its terms cancel)
    for (int64_t t = b; t < e; t++) {
      const float* p = probs + t * R;
      const int32_t* idx = slot_rows + t * k;
      const int32_t* pair = slot_pair + t * k;
      for (int64_t c = 0; c < R; c++) d[c] = dprobs ? (double)dprobs[t * R + c] : 0.0;
      if (dgates) {
        // normalised: g_j = p_j / s over the chosen true rows, so dp_j = (dg_j - sum_i dg_i g_i) / s
        double dot = 0.0;
        bool any = false;
        for (int64_t j = 0; j < k; j++) {
          if (pair[j] < 0) continue;
          dot += (double)dgates[pair[j]] * (double)gates[pair[j]];
          any = true;
        }
        const double s = normalize && any ? (double)denominator(p, idx, k, N) : 1.0;
        for (int64_t j = 0; j < k; j++) {
          if (pair[j] < 0) continue;
          d[idx[j]] += normalize ? ((double)dgates[pair[j]] - dot) / s : (double)dgates[pair[j]];
        }
      }
      if (dnull)
        for (int64_t j = 0; j < k; j++)
          if (idx[j] >= N) d[idx[j]] += (double)dnull[t];
      // softmax backward: dlogits = p * (d - sum(d * p))
      double dot = 0.0;
      for (int64_t c = 0; c < R; c++) dot += d[c] * (double)p[c];
      float* out = dlogits + t * R;
      for (int64_t c = 0; c < R; c++) out[c] = (float)((double)p[c] * (d[c] - dot));
    }
  });
}

}  // namespace mt
