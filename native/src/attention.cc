#include "attention.h"

#include <cmath>
#include <cstring>
#include <limits>

#include "aligned_buffer.h"
#include "gemm.h"
#include "simd.h"
#include "softmax.h"
#include "thread_pool.h"

namespace mt {
namespace {

constexpr int64_t BQ = 96;   // query rows per tile (a multiple of the GEMM's MR: 12 and 6)
constexpr int64_t BK = 256;  // keys per tile (a multiple of the GEMM's NR: 32 and 16)
// Below this many flops in total the whole call stays on one thread.
constexpr double kMinFlopsThreaded = 1.0e6;
constexpr float kNegInf = -std::numeric_limits<float>::infinity();

inline int64_t clamp64(int64_t x, int64_t lo, int64_t hi) { return x < lo ? lo : (x > hi ? hi : x); }

struct Dims {
  int64_t B, T, S, H, Hkv, Dh;
  int64_t group, off, ldq, ldk, nqb;
  int64_t mr, nr;
  bool causal;
  Dims(int64_t B_, int64_t T_, int64_t S_, int64_t H_, int64_t Hkv_, int64_t Dh_, bool causal_)
      : B(B_), T(T_), S(S_), H(H_), Hkv(Hkv_), Dh(Dh_), causal(causal_) {
    group = H / Hkv;
    off = S - T;
    ldq = H * Dh;
    ldk = Hkv * Dh;
    nqb = (T + BQ - 1) / BQ;
    mr = gemm_mr();
    nr = gemm_nr();
  }
  // Keys [0, visible(t)) are seen by query t.
  int64_t visible(int64_t t) const { return causal ? clamp64(t + off + 1, 0, S) : S; }
  const float* qrow(const float* base, int64_t b, int64_t t, int64_t h) const {
    return base + ((b * T + t) * H + h) * Dh;
  }
  float* qrow(float* base, int64_t b, int64_t t, int64_t h) const { return base + ((b * T + t) * H + h) * Dh; }
  int64_t kvoffset(int64_t b, int64_t s, int64_t hk) const { return ((b * S + s) * Hkv + hk) * Dh; }
  // Sizes of one kv head's packed K^T [Dh, S] (B panels of NR keys) and K or V [S, Dh].
  int64_t packedT() const { return gemm_packed_b_size(Dh, S); }
  int64_t packedN() const { return gemm_packed_b_size(S, Dh); }
};

int threads_for(double flops, int64_t tasks) {
  int nt = pool_threads();
  if (flops < kMinFlopsThreaded) nt = 1;
  if (tasks < nt) nt = (int)tasks;
  return nt < 1 ? 1 : nt;
}

// Runs body(task) for every task, on the pool when nt > 1.
template <class F>
void for_each_task(int nt, int64_t tasks, F& body) {
  auto call = [&](int t, int) { body((int64_t)t); };
  if (nt <= 1 || tasks > (1 << 30)) {
    for (int64_t t = 0; t < tasks; t++) body(t);
  } else {
    run_tasks((int)tasks, call);
  }
}

// Packs, for every (b, kv head), the operands that all query blocks share: K^T (keys as columns)
// for the scores, and optionally V^T (for dP) and K / V as [S, Dh] rows (for P V and dS K).
void pack_kv(const Dims& d, int nt, const float* k, const float* v, float* KT, float* VT, float* Kn, float* Vn) {
  auto body = [&](int64_t g) {
    const int64_t b = g / d.Hkv, hk = g % d.Hkv;
    const float* K = k + d.kvoffset(b, 0, hk);
    const float* V = v + d.kvoffset(b, 0, hk);
    if (KT) gemm_pack_b(true, d.Dh, d.S, K, d.ldk, KT + g * d.packedT());
    if (VT) gemm_pack_b(true, d.Dh, d.S, V, d.ldk, VT + g * d.packedT());
    if (Kn) gemm_pack_b(false, d.S, d.Dh, K, d.ldk, Kn + g * d.packedN());
    if (Vn) gemm_pack_b(false, d.S, d.Dh, V, d.ldk, Vn + g * d.packedN());
  };
  for_each_task(nt, d.B * d.Hkv, body);
}

// The key block [s0, s0 + sk) of a packed K^T / V^T (columns s0..) and of a packed K / V (rows s0..).
inline const float* colsT(const Dims& d, const float* packedT, int64_t s0) { return packedT + (s0 / d.nr) * d.Dh * d.nr; }
inline const float* rowsN(const Dims& d, const float* packedN, int64_t s0) { return packedN + s0 * d.nr; }

// One (batch, head, query block) of the forward.
void forward_tile(const Dims& d, const float* q, const float* KT, const float* Vn, float scale, int64_t b, int64_t h,
                  int64_t qb, float* out, float* lse) {
  static thread_local AlignedBuffer scBuf, accBuf, mBuf, qpBuf, ppBuf;
  float* sc = scBuf.get(BQ * BK);
  float* acc = accBuf.get(BQ * d.Dh);
  float* m = mBuf.get(BQ);
  float* Qp = qpBuf.get(gemm_packed_a_size(BQ, d.Dh));
  float* Pp = ppBuf.get(gemm_packed_a_size(BQ, BK));
  double l[BQ];
  const int64_t t0 = qb * BQ, tq = d.T - t0 < BQ ? d.T - t0 : BQ;
  const int64_t g = b * d.Hkv + h / d.group;
  const float* KTg = KT + g * d.packedT();
  const float* Vg = Vn + g * d.packedN();
  const int64_t sEnd = d.visible(t0 + tq - 1);
  for (int64_t i = 0; i < tq; i++) m[i] = kNegInf, l[i] = 0.0;
  std::memset(acc, 0, sizeof(float) * tq * d.Dh);
  gemm_pack_a(false, tq, d.Dh, d.qrow(q, b, t0, h), d.ldq, Qp);
  for (int64_t s0 = 0; s0 < sEnd; s0 += BK) {
    const int64_t sk = sEnd - s0 < BK ? sEnd - s0 : BK;
    sgemm_packed(tq, sk, d.Dh, scale, Qp, d.Dh * d.mr, colsT(d, KTg, s0), d.Dh * d.nr, 0.0f, sc, BK);
    for (int64_t i = 0; i < tq; i++) {
      float* row = sc + i * BK;
      const int64_t vis = clamp64(d.visible(t0 + i) - s0, 0, sk);
      if (vis > 0) {
        const float bm = row_max(row, vis);
        const float mn = bm > m[i] ? bm : m[i];
        const float corr = m[i] == kNegInf ? 0.0f : sexp_ftz(m[i] - mn);
        const double s = exp_shifted_sum(row, mn, row, vis);
        l[i] = l[i] * (double)corr + s;
        m[i] = mn;
        if (corr != 1.0f) {
          float* a = acc + i * d.Dh;
          map1(a, a, d.Dh, [corr](auto x) { return x * corr; });
        }
      }
      for (int64_t j = vis; j < sk; j++) row[j] = 0.0f;
    }
    gemm_pack_a(false, tq, sk, sc, BK, Pp);
    sgemm_packed(tq, d.Dh, sk, 1.0f, Pp, sk * d.mr, rowsN(d, Vg, s0), d.S * d.nr, 1.0f, acc, d.Dh);
  }
  float* L = lse + (b * d.H + h) * d.T + t0;
  for (int64_t i = 0; i < tq; i++) {
    float* o = d.qrow(out, b, t0 + i, h);
    const float* a = acc + i * d.Dh;
    if (l[i] > 0.0) {
      const float inv = (float)(1.0 / l[i]);
      map1(a, o, d.Dh, [inv](auto x) { return x * inv; });
      L[i] = (float)((double)m[i] + std::log(l[i]));
    } else {
      for (int64_t j = 0; j < d.Dh; j++) o[j] = 0.0f;
      L[i] = kNegInf;
    }
  }
}

// All query blocks qb = first, first + stride, ... of query head h, accumulating into dK / dV
// (rows of length Dh, leading dimension ldkv).
void backward_head(const Dims& d, const float* q, const float* KT, const float* VT, const float* Kn, const float* out,
                   const float* lse, const float* dout, float scale, int64_t b, int64_t h, int64_t first,
                   int64_t stride, float* dq, float* dK, float* dV, int64_t ldkv) {
  static thread_local AlignedBuffer pBuf, dpBuf, dBuf, qaBuf, oaBuf, qbBuf, obBuf, saBuf, stBuf;
  float* P = pBuf.get(BQ * BK);
  float* dP = dpBuf.get(BQ * BK);
  float* D = dBuf.get(BQ);
  float* Qa = qaBuf.get(gemm_packed_a_size(BQ, d.Dh));   // Q as the A of Q K^T
  float* dOa = oaBuf.get(gemm_packed_a_size(BQ, d.Dh));  // dO as the A of dO V^T
  float* Qb = qbBuf.get(gemm_packed_b_size(BQ, d.Dh));   // Q as the B of dS^T Q
  float* dOb = obBuf.get(gemm_packed_b_size(BQ, d.Dh));  // dO as the B of P^T dO
  float* dSa = saBuf.get(gemm_packed_a_size(BQ, BK));    // dS as the A of dS K
  float* Ta = stBuf.get(gemm_packed_a_size(BK, BQ));     // dS^T or P^T as an A
  const int64_t g = b * d.Hkv + h / d.group;
  const float* KTg = KT + g * d.packedT();
  const float* VTg = VT + g * d.packedT();
  const float* Kg = Kn + g * d.packedN();
  for (int64_t qb = first; qb < d.nqb; qb += stride) {
    const int64_t t0 = qb * BQ, tq = d.T - t0 < BQ ? d.T - t0 : BQ;
    const float* Q = d.qrow(q, b, t0, h);
    const float* dO = d.qrow(dout, b, t0, h);
    float* dQ = d.qrow(dq, b, t0, h);
    const float* L = lse + (b * d.H + h) * d.T + t0;
    for (int64_t i = 0; i < tq; i++) D[i] = (float)dot_d(dO + i * d.ldq, d.qrow(out, b, t0 + i, h), d.Dh);
    const int64_t sEnd = d.visible(t0 + tq - 1);
    if (sEnd == 0) {
      for (int64_t i = 0; i < tq; i++) std::memset(dQ + i * d.ldq, 0, sizeof(float) * d.Dh);
      continue;
    }
    gemm_pack_a(false, tq, d.Dh, Q, d.ldq, Qa);
    gemm_pack_a(false, tq, d.Dh, dO, d.ldq, dOa);
    gemm_pack_b(false, tq, d.Dh, Q, d.ldq, Qb);
    gemm_pack_b(false, tq, d.Dh, dO, d.ldq, dOb);
    for (int64_t s0 = 0; s0 < sEnd; s0 += BK) {
      const int64_t sk = sEnd - s0 < BK ? sEnd - s0 : BK;
      sgemm_packed(tq, sk, d.Dh, scale, Qa, d.Dh * d.mr, colsT(d, KTg, s0), d.Dh * d.nr, 0.0f, P, BK);
      sgemm_packed(tq, sk, d.Dh, 1.0f, dOa, d.Dh * d.mr, colsT(d, VTg, s0), d.Dh * d.nr, 0.0f, dP, BK);
      for (int64_t i = 0; i < tq; i++) {
        float* p = P + i * BK;
        float* gr = dP + i * BK;
        const int64_t vis = clamp64(d.visible(t0 + i) - s0, 0, sk);
        const float li = L[i], di = D[i];
        int64_t j = 0;
        const vf lv = vsplat(li), dv = vsplat(di);
        for (; j + kLanes <= vis; j += kLanes) {
          vf pj = vexp_ftz(vload(p + j) - lv);
          vstore(p + j, pj);
          vstore(gr + j, pj * (vload(gr + j) - dv));
        }
        if (j < vis) {  // the tail through one padded vector: exp(-inf) = 0 past vis
          vf pj = vexp_ftz(load_tail(p + j, vis - j, kNegInf) - lv);
          vstore(p + j, pj);  // the buffers are BK wide, a multiple of the vector width
          vstore(gr + j, pj * (vload(gr + j) - dv));
          j += kLanes;
        }
        for (; j < sk; j++) p[j] = 0.0f, gr[j] = 0.0f;
      }
      // dQ (+)= scale dS K; dK += scale dS^T Q; dV += P^T dO.
      gemm_pack_a(false, tq, sk, dP, BK, dSa);
      sgemm_packed(tq, d.Dh, sk, scale, dSa, sk * d.mr, rowsN(d, Kg, s0), d.S * d.nr, s0 == 0 ? 0.0f : 1.0f, dQ,
                   d.ldq);
      gemm_pack_a(true, sk, tq, dP, BK, Ta);
      sgemm_packed(sk, d.Dh, tq, scale, Ta, tq * d.mr, Qb, tq * d.nr, 1.0f, dK + s0 * ldkv, ldkv);
      gemm_pack_a(true, sk, tq, P, BK, Ta);
      sgemm_packed(sk, d.Dh, tq, 1.0f, Ta, tq * d.mr, dOb, tq * d.nr, 1.0f, dV + s0 * ldkv, ldkv);
    }
  }
}

}  // namespace

void attention_forward(const float* q, const float* k, const float* v, int64_t B, int64_t T, int64_t S, int64_t H,
                       int64_t Hkv, int64_t Dh, float scale, bool causal, float* out, float* lse) {
  if (B <= 0 || T <= 0 || H <= 0) return;
  Dims d(B, T, S, H, Hkv, Dh, causal);
  const int64_t tasks = B * H * d.nqb;
  const int nt = threads_for(4.0 * (double)B * H * T * S * Dh, tasks);
  static thread_local AlignedBuffer ktBuf, vBuf;
  float* KT = ktBuf.get(B * Hkv * d.packedT());
  float* Vn = vBuf.get(B * Hkv * d.packedN());
  pack_kv(d, nt, k, v, KT, nullptr, nullptr, Vn);
  // One pool task per tile; threads claim them as they go, which balances causal tiles (later
  // query blocks see more keys).
  auto body = [&](int64_t task) {
    const int64_t qb = task % d.nqb, bh = task / d.nqb;
    forward_tile(d, q, KT, Vn, scale, bh / H, bh % H, qb, out, lse);
  };
  for_each_task(nt, tasks, body);
}

void attention_backward(const float* q, const float* k, const float* v, const float* out, const float* lse,
                        const float* dout, int64_t B, int64_t T, int64_t S, int64_t H, int64_t Hkv, int64_t Dh,
                        float scale, bool causal, float* dq, float* dk, float* dv) {
  if (B <= 0 || Hkv <= 0 || Dh <= 0) return;
  if (S <= 0 || T <= 0) {  // no keys (dq = 0) or no queries (dk = dv = 0)
    std::memset(dq, 0, sizeof(float) * B * T * H * Dh);
    std::memset(dk, 0, sizeof(float) * B * S * Hkv * Dh);
    std::memset(dv, 0, sizeof(float) * B * S * Hkv * Dh);
    return;
  }
  Dims d(B, T, S, H, Hkv, Dh, causal);
  const int64_t groups = B * Hkv;
  const double flops = 8.0 * (double)B * H * T * S * Dh;
  int nt = threads_for(flops, groups * (d.nqb > 0 ? d.nqb : 1));
  // Tasks own one kv head (so dK / dV of a group are written by one task); with fewer kv heads
  // than threads, query blocks are also split, each part into its own dK / dV partial sums that
  // are added afterwards in a fixed order.
  int64_t split = 1;
  if (groups < nt && d.nqb > 1) {
    split = (nt + groups - 1) / groups;
    if (split > d.nqb) split = d.nqb;
  }
  const int64_t tasks = groups * split;
  if (tasks < nt) nt = (int)tasks;
  const int64_t slab = S * Dh;  // one partial dK (or dV) of a kv head
  static thread_local AlignedBuffer partBuf, ktBuf, vtBuf, kBuf;
  float* parts = split > 1 ? partBuf.get(2 * tasks * slab) : nullptr;
  float* KT = ktBuf.get(groups * d.packedT());
  float* VT = vtBuf.get(groups * d.packedT());
  float* Kn = kBuf.get(groups * d.packedN());
  pack_kv(d, nt, k, v, KT, VT, Kn, nullptr);

  auto body = [&](int64_t task) {
    const int64_t part = task % split, g = task / split;
    const int64_t b = g / Hkv, hk = g % Hkv;
    float *dK, *dV;
    int64_t ld;
    if (split > 1) {
      dK = parts + 2 * task * slab;
      dV = dK + slab;
      ld = Dh;
      std::memset(dK, 0, sizeof(float) * 2 * slab);
    } else {
      dK = dk + d.kvoffset(b, 0, hk);
      dV = dv + d.kvoffset(b, 0, hk);
      ld = d.ldk;
      for (int64_t s = 0; s < S; s++) {
        std::memset(dK + s * ld, 0, sizeof(float) * Dh);
        std::memset(dV + s * ld, 0, sizeof(float) * Dh);
      }
    }
    for (int64_t h = hk * d.group; h < (hk + 1) * d.group; h++)
      backward_head(d, q, KT, VT, Kn, out, lse, dout, scale, b, h, part, split, dq, dK, dV, ld);
  };
  for_each_task(nt, tasks, body);

  if (split > 1) {
    parallel_for(groups * S, (1 << 14) / Dh + 1, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; r++) {
        const int64_t g = r / S, s = r % S, b = g / Hkv, hk = g % Hkv;
        float* oK = dk + d.kvoffset(b, s, hk);
        float* oV = dv + d.kvoffset(b, s, hk);
        for (int64_t j = 0; j < Dh; j++) oK[j] = oV[j] = 0.0f;
        for (int64_t p = 0; p < split; p++) {
          const float* pK = parts + 2 * (g * split + p) * slab + s * Dh;
          const float* pV = pK + slab;
          for (int64_t j = 0; j < Dh; j++) oK[j] += pK[j], oV[j] += pV[j];
        }
      }
    });
  }
}

}  // namespace mt
