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

// The gate denominator of one token: its chosen true probabilities summed in double and rounded to
// float (as a float32 sum over the slots), or 1 when it chose none.
inline float denominator(const float* p, const int32_t* idx, int64_t k, int64_t N) {
  double s = 0.0;
  bool any = false;
  for (int64_t j = 0; j < k; j++) {
    if (idx[j] < N) {
      s += (double)p[idx[j]];
      any = true;
    }
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
      uint8_t* sel = selected + t * R;
      std::memset(sel, 0, (size_t)R);
      for (int64_t j = 0; j < k; j++) sel[idx[j]] = 1;
      if (null_sums) {
        double s = 0.0;
        for (int64_t j = 0; j < k; j++)
          if (idx[j] >= N) s += (double)p[idx[j]];
        null_sums[t] = (float)s;
      }
    }
  });
  // counting sort of the pairs by expert, tokens ascending within an expert
  for (int64_t s = 0; s < T * k; s++)
    if (slot_rows[s] < N) offsets[slot_rows[s] + 1]++;
  for (int64_t e = 0; e < N; e++) offsets[e + 1] += offsets[e];
  std::vector<int32_t> next(offsets, offsets + N);
  for (int64_t t = 0; t < T; t++) {
    const float* p = probs + t * R;
    const int32_t* idx = slot_rows + t * k;
    const float denom = normalize ? denominator(p, idx, k, N) : 1.0f;
    for (int64_t j = 0; j < k; j++) {
      const int32_t r = idx[j];
      if (r >= N) {
        slot_pair[t * k + j] = -1;
        continue;
      }
      const int32_t q = next[r]++;
      tokens[q] = (int32_t)t;
      gates[q] = normalize ? p[r] / denom : p[r];
      slot_pair[t * k + j] = q;
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
