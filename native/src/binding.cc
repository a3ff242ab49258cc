// Node-API binding of the moe-tune kernels. Every function takes the same arguments, in the same
// order, as the matching method of `Backend` in src/tensor/backend.ts, checks them (types, counts,
// array lengths, index ranges) and throws one-line errors naming the kernel and the argument.
// Float64Array inputs are refused: the TypeScript layer routes float64 work to the js backend.
#include <node_api.h>

#include <cmath>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "adamw.h"
#include "attention.h"
#include "cross_entropy.h"
#include "elementwise.h"
#include "gemm.h"
#include "gemm_kernel.h"
#include "indexing.h"
#include "nf4_gemm.h"
#include "reduce.h"
#include "rmsnorm.h"
#include "rope.h"
#include "routing.h"
#include "softmax.h"
#include "swiglu.h"
#include "thread_pool.h"
#include "weight_load.h"

namespace {

constexpr int64_t kMaxCount = (int64_t)1 << 50;

// Saturating product of non-negative counts (a length check then fails cleanly).
int64_t mul(int64_t a, int64_t b) {
  int64_t r;
  if (__builtin_mul_overflow(a, b, &r) || r > kMaxCount) return kMaxCount;
  return r;
}

const char* typed_array_name(napi_typedarray_type t) {
  switch (t) {
    case napi_int8_array: return "Int8Array";
    case napi_uint8_array: return "Uint8Array";
    case napi_uint8_clamped_array: return "Uint8ClampedArray";
    case napi_int16_array: return "Int16Array";
    case napi_uint16_array: return "Uint16Array";
    case napi_int32_array: return "Int32Array";
    case napi_uint32_array: return "Uint32Array";
    case napi_float32_array: return "Float32Array";
    case napi_float64_array: return "Float64Array";
    case napi_bigint64_array: return "BigInt64Array";
    case napi_biguint64_array: return "BigUint64Array";
    default: return "typed array";
  }
}

// Argument reader for one call. After the first failure every reader returns a harmless value
// and `ok` stays false; the function then returns without running the kernel.
class Call {
 public:
  Call(napi_env env, napi_callback_info info, const char* name, size_t expected) : env_(env), name_(name) {
    argc_ = kMaxArgs;
    if (napi_get_cb_info(env, info, &argc_, argv_, nullptr, nullptr) != napi_ok) {
      fail("could not read the arguments");
      return;
    }
    if (argc_ < expected) fail("expected %zu arguments, got %zu", expected, argc_);
  }

  bool ok() const { return ok_; }
  napi_env env() const { return env_; }

  void fail(const char* fmt, ...) {
    if (!ok_) return;
    ok_ = false;
    char msg[400], full[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(full, sizeof full, "moe-tune native %s: %s", name_, msg);
    napi_throw_error(env_, nullptr, full);
  }

  napi_valuetype type(size_t i) {
    napi_valuetype t = napi_undefined;
    if (ok_ && i < argc_) napi_typeof(env_, argv_[i], &t);
    return t;
  }

  bool is_null(size_t i) {
    napi_valuetype t = type(i);
    return t == napi_null || t == napi_undefined;
  }

  // A Float32Array with at least `need` elements.
  float* f32(size_t i, const char* what, int64_t need) {
    void* data = typed(i, what, napi_float32_array, need);
    return static_cast<float*>(data);
  }

  // An Int32Array with at least `need` elements.
  const int32_t* i32(size_t i, const char* what, int64_t need) {
    void* data = typed(i, what, napi_int32_array, need);
    return static_cast<const int32_t*>(data);
  }

  // A Uint8Array with at least `need` elements.
  const uint8_t* u8(size_t i, const char* what, int64_t need) {
    void* data = typed(i, what, napi_uint8_array, need);
    return static_cast<const uint8_t*>(data);
  }

  // Length of the JS array at i (0 after a failure).
  uint32_t array_length(size_t i, const char* what) {
    if (!ok_) return 0;
    bool isArray = false;
    if (i >= argc_ || napi_is_array(env_, argv_[i], &isArray) != napi_ok || !isArray) {
      fail("%s must be an array of Float32Array", what);
      return 0;
    }
    uint32_t n = 0;
    napi_get_array_length(env_, argv_[i], &n);
    return n;
  }

  // Element j of the JS array at i: a typed array of type `want` with at least `need` elements.
  void* element_in(size_t i, uint32_t j, const char* what, napi_typedarray_type want, int64_t need) {
    if (!ok_) return nullptr;
    napi_value e;
    if (napi_get_element(env_, argv_[i], j, &e) != napi_ok) {
      fail("%s[%u]: could not read the element", what, j);
      return nullptr;
    }
    char name[64];
    snprintf(name, sizeof name, "%s[%u]", what, j);
    return typed_value(e, name, want, need);
  }

  // Element j of the JS array at i: a Float32Array with at least `need` elements.
  float* f32_in(size_t i, uint32_t j, const char* what, int64_t need) {
    return static_cast<float*>(element_in(i, j, what, napi_float32_array, need));
  }

  // Element j of the JS array at i: a Uint8Array with at least `need` elements.
  const uint8_t* u8_in(size_t i, uint32_t j, const char* what, int64_t need) {
    return static_cast<const uint8_t*>(element_in(i, j, what, napi_uint8_array, need));
  }

  // Elements of the typed array at i (0 after a failure).
  int64_t length(size_t i) {
    if (!ok_) return 0;
    napi_typedarray_type t;
    size_t len = 0;
    void* data;
    napi_value ab;
    size_t off;
    if (napi_get_typedarray_info(env_, argv_[i], &t, &len, &data, &ab, &off) != napi_ok) return 0;
    return (int64_t)len;
  }

  double number(size_t i, const char* what) {
    if (!ok_) return 0.0;
    double v = 0.0;
    if (type(i) != napi_number || napi_get_value_double(env_, argv_[i], &v) != napi_ok) {
      fail("%s must be a number", what);
      return 0.0;
    }
    return v;
  }

  // A non-negative integer count.
  int64_t count(size_t i, const char* what) {
    double v = number(i, what);
    if (!ok_) return 0;
    if (!(v >= 0.0) || v != std::floor(v) || v > (double)kMaxCount) {
      fail("%s must be a non-negative integer, got %g", what, v);
      return 0;
    }
    return (int64_t)v;
  }

  int32_t int32(size_t i, const char* what) {
    double v = number(i, what);
    if (!ok_) return 0;
    if (v != std::floor(v) || v < -2147483648.0 || v > 2147483647.0) {
      fail("%s must be a 32-bit integer, got %g", what, v);
      return 0;
    }
    return (int32_t)v;
  }

  bool flag(size_t i, const char* what) {
    if (!ok_) return false;
    bool b = false;
    if (type(i) != napi_boolean || napi_get_value_bool(env_, argv_[i], &b) != napi_ok) {
      fail("%s must be a boolean", what);
      return false;
    }
    return b;
  }

  // A short string (an op name).
  void str(size_t i, const char* what, char* buf, size_t cap) {
    buf[0] = '\0';
    if (!ok_) return;
    size_t len = 0;
    if (type(i) != napi_string || napi_get_value_string_utf8(env_, argv_[i], buf, cap, &len) != napi_ok) {
      fail("%s must be a string", what);
      buf[0] = '\0';
    }
  }

  // An array of non-negative integers (a shape). Returns the rank.
  int shape(size_t i, const char* what, int64_t* dims, int maxRank) {
    if (!ok_) return 0;
    bool isArray = false;
    if (i >= argc_ || napi_is_array(env_, argv_[i], &isArray) != napi_ok || !isArray) {
      fail("%s must be an array of dimensions", what);
      return 0;
    }
    uint32_t n = 0;
    napi_get_array_length(env_, argv_[i], &n);
    if ((int)n > maxRank) {
      fail("%s has rank %u, at most %d is supported", what, n, maxRank);
      return 0;
    }
    for (uint32_t d = 0; d < n; d++) {
      napi_value e;
      double v = -1.0;
      napi_get_element(env_, argv_[i], d, &e);
      napi_valuetype t;
      napi_typeof(env_, e, &t);
      if (t == napi_number) napi_get_value_double(env_, e, &v);
      if (!(v >= 0.0) || v != std::floor(v) || v > (double)kMaxCount) {
        fail("%s[%u] must be a non-negative integer", what, d);
        return 0;
      }
      dims[d] = (int64_t)v;
    }
    return (int)n;
  }

  // Indices idx[0..n) must lie in [0, limit).
  void check_indices(const int32_t* idx, int64_t n, int64_t limit, const char* what, const char* limitName) {
    if (!ok_) return;
    for (int64_t i = 0; i < n; i++) {
      if (idx[i] < 0 || idx[i] >= limit) {
        fail("%s[%lld] = %d is out of range [0, %s = %lld)", what, (long long)i, idx[i], limitName, (long long)limit);
        return;
      }
    }
  }

 private:
  static constexpr size_t kMaxArgs = 24;

  void* typed(size_t i, const char* what, napi_typedarray_type want, int64_t need) {
    if (!ok_) return nullptr;
    if (i >= argc_) {
      fail("%s must be a %s", what, typed_array_name(want));
      return nullptr;
    }
    return typed_value(argv_[i], what, want, need);
  }

  void* typed_value(napi_value v, const char* what, napi_typedarray_type want, int64_t need) {
    if (!ok_) return nullptr;
    bool isTyped = false;
    if (napi_is_typedarray(env_, v, &isTyped) != napi_ok || !isTyped) {
      fail("%s must be a %s", what, typed_array_name(want));
      return nullptr;
    }
    napi_typedarray_type t;
    size_t len = 0;
    void* data = nullptr;
    napi_value ab;
    size_t off = 0;
    if (napi_get_typedarray_info(env_, v, &t, &len, &data, &ab, &off) != napi_ok) {
      fail("%s: could not read the typed array", what);
      return nullptr;
    }
    if (t != want) {
      if (t == napi_float64_array && want == napi_float32_array)
        fail("%s is a Float64Array; the native backend computes in float32 only (float64 runs on the js backend)",
             what);
      else
        fail("%s must be a %s, got a %s", what, typed_array_name(want), typed_array_name(t));
      return nullptr;
    }
    if ((int64_t)len < need) {
      fail("%s has %zu elements, expected at least %lld", what, len, (long long)need);
      return nullptr;
    }
    return data;
  }

  napi_env env_;
  const char* name_;
  napi_value argv_[kMaxArgs];
  size_t argc_ = 0;
  bool ok_ = true;
};

napi_value undefined(napi_env env) {
  napi_value u;
  napi_get_undefined(env, &u);
  return u;
}

napi_value make_number(napi_env env, double v) {
  napi_value r;
  napi_create_double(env, v, &r);
  return r;
}

bool parse_binary_op(const char* s, mt::BinaryOp& op) {
  static const struct {
    const char* name;
    mt::BinaryOp op;
  } table[] = {{"add", mt::BinaryOp::Add}, {"sub", mt::BinaryOp::Sub}, {"mul", mt::BinaryOp::Mul},
               {"div", mt::BinaryOp::Div}, {"max", mt::BinaryOp::Max}, {"min", mt::BinaryOp::Min}};
  for (auto& e : table)
    if (!std::strcmp(s, e.name)) return op = e.op, true;
  return false;
}

bool parse_unary_op(const char* s, mt::UnaryOp& op) {
  static const struct {
    const char* name;
    mt::UnaryOp op;
  } table[] = {{"neg", mt::UnaryOp::Neg},         {"exp", mt::UnaryOp::Exp},   {"log", mt::UnaryOp::Log},
               {"sqrt", mt::UnaryOp::Sqrt},       {"rsqrt", mt::UnaryOp::Rsqrt}, {"square", mt::UnaryOp::Square},
               {"abs", mt::UnaryOp::Abs},         {"silu", mt::UnaryOp::Silu}, {"sigmoid", mt::UnaryOp::Sigmoid},
               {"relu", mt::UnaryOp::Relu},       {"tanh", mt::UnaryOp::Tanh}};
  for (auto& e : table)
    if (!std::strcmp(s, e.name)) return op = e.op, true;
  return false;
}

bool parse_reduce_op(const char* s, mt::ReduceOp& op) {
  if (!std::strcmp(s, "sum")) return op = mt::ReduceOp::Sum, true;
  if (!std::strcmp(s, "max")) return op = mt::ReduceOp::Max, true;
  if (!std::strcmp(s, "min")) return op = mt::ReduceOp::Min, true;
  return false;
}

// ------------------------------------------------------------------ pool and build information

napi_value Threads(napi_env env, napi_callback_info) { return make_number(env, mt::pool_threads()); }

// configure(threads): resizes the pool; returns the size.
napi_value Configure(napi_env env, napi_callback_info info) {
  Call c(env, info, "configure", 1);
  int64_t n = c.count(0, "threads");
  if (c.ok() && (n < 1 || n > 1024)) c.fail("threads must be between 1 and 1024, got %lld", (long long)n);
  if (!c.ok()) return nullptr;
  return make_number(env, mt::pool_configure((int)n));
}

napi_value KernelName(napi_env env, napi_callback_info) {
  napi_value s;
  napi_create_string_utf8(env, mt::gemm::kKernelName, NAPI_AUTO_LENGTH, &s);
  return s;
}

// buildIsa(): which of the compile-time kernel paths (the `#if defined(__AVX512F__)` / AVX2 + FMA /
// AVX / portable branches of simd.h, gemm_kernel.h, gemm_pack.h, gemm_skinny.cc, nf4_gemm.cc,
// weight_load.cc) this build took: "avx512", "avx2" (AVX2 + FMA), "avx" (AVX without AVX2 / FMA: 8-lane
// vectors, portable micro-kernel) or "portable" (SSE on x86, NEON on arm64). The ISA test variants
// (scripts/build-isa-variants.mjs) check that each build is the one they asked for.
napi_value BuildIsa(napi_env env, napi_callback_info) {
#if defined(__AVX512F__)
  const char* isa = "avx512";
#elif defined(__AVX2__) && defined(__FMA__)
  const char* isa = "avx2";
#elif defined(__AVX__)
  const char* isa = "avx";
#else
  const char* isa = "portable";
#endif
  napi_value s;
  napi_create_string_utf8(env, isa, NAPI_AUTO_LENGTH, &s);
  return s;
}

// ------------------------------------------------------------------ dense linear algebra

napi_value Gemm(napi_env env, napi_callback_info info) {
  Call c(env, info, "gemm", 10);
  bool ta = c.flag(0, "transA"), tb = c.flag(1, "transB");
  int64_t M = c.count(2, "M"), N = c.count(3, "N"), K = c.count(4, "K");
  double alpha = c.number(5, "alpha");
  const float* A = c.f32(6, "A", mul(M, K));
  const float* B = c.f32(7, "B", mul(K, N));
  double beta = c.number(8, "beta");
  float* C = c.f32(9, "C", mul(M, N));
  if (!c.ok()) return nullptr;
  mt::sgemm(ta, tb, M, N, K, (float)alpha, A, ta ? M : K, B, tb ? K : N, (float)beta, C, N, 0);
  return undefined(env);
}

// gemmGrouped(transA, transB, Ms, Ns, Ks, alpha, As, Bs, beta, Cs): products i < Ms.length, each
// as gemm with its own sizes and arrays (mt::sgemm_grouped).
napi_value GemmGrouped(napi_env env, napi_callback_info info) {
  Call c(env, info, "gemmGrouped", 10);
  bool ta = c.flag(0, "transA"), tb = c.flag(1, "transB");
  const int64_t count = c.length(2);
  const int32_t* Ms = c.i32(2, "Ms", 0);
  const int32_t* Ns = c.i32(3, "Ns", count);
  const int32_t* Ks = c.i32(4, "Ks", count);
  double alpha = c.number(5, "alpha"), beta = c.number(8, "beta");
  const uint32_t na = c.array_length(6, "As"), nb = c.array_length(7, "Bs"), nc = c.array_length(9, "Cs");
  if (c.ok() && (na != count || nb != count || nc != count))
    c.fail("As, Bs and Cs must hold Ms.length = %lld arrays each, got %u, %u and %u", (long long)count, na, nb, nc);
  static thread_local std::vector<mt::GemmProblem> problems;
  problems.assign(c.ok() ? (size_t)count : 0, mt::GemmProblem{});
  for (int64_t i = 0; c.ok() && i < count; i++) {
    if (Ms[i] < 0 || Ns[i] < 0 || Ks[i] < 0) {
      c.fail("Ms[%lld], Ns[%lld] and Ks[%lld] must be >= 0, got %d, %d, %d", (long long)i, (long long)i, (long long)i,
             Ms[i], Ns[i], Ks[i]);
      break;
    }
    const int64_t M = Ms[i], N = Ns[i], K = Ks[i];
    mt::GemmProblem& p = problems[(size_t)i];
    p.M = M, p.N = N, p.K = K;
    p.A = c.f32_in(6, (uint32_t)i, "As", mul(M, K));
    p.B = c.f32_in(7, (uint32_t)i, "Bs", mul(K, N));
    p.C = c.f32_in(9, (uint32_t)i, "Cs", mul(M, N));
    p.lda = ta ? M : K, p.ldb = tb ? K : N, p.ldc = N;
  }
  if (!c.ok()) return nullptr;
  mt::sgemm_grouped(ta, tb, count, problems.data(), (float)alpha, (float)beta, 0);
  return undefined(env);
}

// nf4Gemm(transW, M, N, K, A, codes, code, blockSize, absmax, qabsmax, nestedAbsmax, nestedCode,
//         nestedBlockSize, offset, beta, C): the NF4 GEMM (nf4_gemm.h). absmax, or (double
// quantisation) qabsmax + nestedAbsmax + nestedCode, the others null.
napi_value Nf4Gemm(napi_env env, napi_callback_info info) {
  Call c(env, info, "nf4Gemm", 16);
  bool transW = c.flag(0, "transW");
  int64_t M = c.count(1, "M"), N = c.count(2, "N"), K = c.count(3, "K");
  int64_t blockSize = c.count(7, "blockSize");
  if (c.ok() && blockSize < 1) c.fail("blockSize must be >= 1, got %lld", (long long)blockSize);
  int64_t numel = mul(N, K);
  int64_t blocks = blockSize > 0 ? (numel + blockSize - 1) / blockSize : 0;
  const float* A = c.f32(4, "A", transW ? mul(M, K) : mul(M, N));
  const uint8_t* codes = c.u8(5, "codes", (numel + 1) / 2);
  const float* code = c.f32(6, "code", 16);
  mt::Nf4Weight w{N, K, codes, code, blockSize, nullptr, nullptr, nullptr, nullptr, 1, 0.0f};
  bool single = !c.is_null(8), nested = !c.is_null(9);
  if (c.ok() && single == nested)
    c.fail("exactly one of absmax (Float32Array) and qabsmax (Uint8Array, double quantisation) must be given");
  if (single) {
    w.absmax = c.f32(8, "absmax", blocks);
  } else if (nested) {
    w.nestedBlockSize = c.count(12, "nestedBlockSize");
    if (c.ok() && w.nestedBlockSize < 1) c.fail("nestedBlockSize must be >= 1, got %lld", (long long)w.nestedBlockSize);
    w.qabsmax = c.u8(9, "qabsmax", blocks);
    w.nestedAbsmax = c.f32(10, "nestedAbsmax", w.nestedBlockSize > 0 ? (blocks + w.nestedBlockSize - 1) / w.nestedBlockSize : 0);
    w.nestedCode = c.f32(11, "nestedCode", 256);
    w.offset = (float)c.number(13, "offset");
  }
  double beta = c.number(14, "beta");
  float* C = c.f32(15, "C", transW ? mul(M, N) : mul(M, K));
  if (!c.ok()) return nullptr;
  mt::nf4_gemm(transW, M, A, w, (float)beta, C, 0);
  return undefined(env);
}

// nf4GemmGrouped(transW, Ms, N, K, As, codes, code, blockSize, absmax, qabsmax, nestedAbsmax,
//                nestedCode, nestedBlockSize, offsets, beta, Cs): nf4Gemm for every i < Ms.length
// with Ms[i] rows, As[i], the weight codes[i] with absmax[i] or (double quantisation) qabsmax[i],
// nestedAbsmax[i], offsets[i] (absmax null or qabsmax / nestedAbsmax / offsets null), into Cs[i];
// one call, the threads sharing out whole products (nf4_gemm_grouped).
napi_value Nf4GemmGrouped(napi_env env, napi_callback_info info) {
  Call c(env, info, "nf4GemmGrouped", 16);
  bool transW = c.flag(0, "transW");
  const int64_t count = c.length(1);
  const int32_t* Ms = c.i32(1, "Ms", 0);
  int64_t N = c.count(2, "N"), K = c.count(3, "K");
  int64_t blockSize = c.count(7, "blockSize");
  if (c.ok() && blockSize < 1) c.fail("blockSize must be >= 1, got %lld", (long long)blockSize);
  const int64_t numel = mul(N, K), blocks = blockSize > 0 ? (numel + blockSize - 1) / blockSize : 0;
  const float* code = c.f32(6, "code", 16);
  const bool single = !c.is_null(8), nested = !c.is_null(9);
  if (c.ok() && single == nested)
    c.fail("exactly one of absmax (Float32Array[]) and qabsmax (Uint8Array[], double quantisation) must be given");
  int64_t nestedBlockSize = 1;
  const float* nestedCode = nullptr;
  const float* offsets = nullptr;
  if (nested) {
    nestedBlockSize = c.count(12, "nestedBlockSize");
    if (c.ok() && nestedBlockSize < 1) c.fail("nestedBlockSize must be >= 1");
    nestedCode = c.f32(11, "nestedCode", 256);
    offsets = c.f32(13, "offsets", count);
  }
  double beta = c.number(14, "beta");
  const uint32_t na = c.array_length(4, "As"), nw = c.array_length(5, "codes"), nc = c.array_length(15, "Cs");
  if (c.ok() && (na != count || nw != count || nc != count))
    c.fail("As, codes and Cs must hold Ms.length = %lld arrays each, got %u, %u and %u", (long long)count, na, nw, nc);
  static thread_local std::vector<int64_t> M64;
  static thread_local std::vector<const float*> A;
  static thread_local std::vector<float*> C;
  static thread_local std::vector<mt::Nf4Weight> W;
  const size_t n = c.ok() ? (size_t)count : 0;
  M64.assign(n, 0), A.assign(n, nullptr), C.assign(n, nullptr), W.assign(n, mt::Nf4Weight{});
  for (int64_t i = 0; c.ok() && i < count; i++) {
    if (Ms[i] < 0) {
      c.fail("Ms[%lld] must be >= 0, got %d", (long long)i, Ms[i]);
      break;
    }
    M64[i] = Ms[i];
    A[i] = c.f32_in(4, (uint32_t)i, "As", transW ? mul(Ms[i], K) : mul(Ms[i], N));
    C[i] = c.f32_in(15, (uint32_t)i, "Cs", transW ? mul(Ms[i], N) : mul(Ms[i], K));
    mt::Nf4Weight& w = W[i];
    w = mt::Nf4Weight{N, K, c.u8_in(5, (uint32_t)i, "codes", (numel + 1) / 2), code, blockSize, nullptr, nullptr, nullptr, nullptr, 1, 0.0f};
    if (single) {
      w.absmax = c.f32_in(8, (uint32_t)i, "absmax", blocks);
    } else {
      w.qabsmax = c.u8_in(9, (uint32_t)i, "qabsmax", blocks);
      w.nestedAbsmax = c.f32_in(10, (uint32_t)i, "nestedAbsmax", (blocks + nestedBlockSize - 1) / nestedBlockSize);
      w.nestedCode = nestedCode;
      w.nestedBlockSize = nestedBlockSize;
      w.offset = offsets ? offsets[i] : 0.0f;
    }
  }
  if (!c.ok()) return nullptr;
  mt::nf4_gemm_grouped(transW, count, M64.data(), A.data(), W.data(), (float)beta, C.data());
  return undefined(env);
}

// ------------------------------------------------------------------ elementwise

napi_value Binary(napi_env env, napi_callback_info info) {
  Call c(env, info, "binary", 7);
  char opName[16];
  c.str(0, "op", opName, sizeof opName);
  mt::BinaryOp op = mt::BinaryOp::Add;
  if (c.ok() && !parse_binary_op(opName, op)) c.fail("unknown op '%s' (expected add, sub, mul, div, max, min)", opName);
  int64_t aShape[mt::kMaxRank], bShape[mt::kMaxRank], outShape[mt::kMaxRank];
  int aRank = c.shape(2, "aShape", aShape, mt::kMaxRank);
  int bRank = c.shape(4, "bShape", bShape, mt::kMaxRank);
  int outRank = c.shape(6, "outShape", outShape, mt::kMaxRank);
  if (c.ok() && (aRank > outRank || bRank > outRank))
    c.fail("aShape (rank %d) and bShape (rank %d) must not have more dims than outShape (rank %d)", aRank, bRank,
           outRank);
  int64_t aSize = 1, bSize = 1, outSize = 1;
  for (int d = 0; c.ok() && d < outRank; d++) {
    int da = d - (outRank - aRank), db = d - (outRank - bRank);
    if (da >= 0 && aShape[da] != 1 && aShape[da] != outShape[d])
      c.fail("aShape[%d] = %lld does not broadcast to outShape[%d] = %lld", da, (long long)aShape[da], d,
             (long long)outShape[d]);
    if (db >= 0 && bShape[db] != 1 && bShape[db] != outShape[d])
      c.fail("bShape[%d] = %lld does not broadcast to outShape[%d] = %lld", db, (long long)bShape[db], d,
             (long long)outShape[d]);
    outSize = mul(outSize, outShape[d]);
  }
  for (int d = 0; d < aRank; d++) aSize = mul(aSize, aShape[d]);
  for (int d = 0; d < bRank; d++) bSize = mul(bSize, bShape[d]);
  const float* a = c.f32(1, "a", aSize);
  const float* b = c.f32(3, "b", bSize);
  float* out = c.f32(5, "out", outSize);
  if (!c.ok()) return nullptr;
  mt::binary(op, a, aShape, aRank, b, bShape, bRank, out, outShape, outRank);
  return undefined(env);
}

napi_value Unary(napi_env env, napi_callback_info info) {
  Call c(env, info, "unary", 4);
  char opName[16];
  c.str(0, "op", opName, sizeof opName);
  mt::UnaryOp op = mt::UnaryOp::Neg;
  if (c.ok() && !parse_unary_op(opName, op)) c.fail("unknown op '%s'", opName);
  int64_t n = c.count(3, "n");
  const float* x = c.f32(1, "x", n);
  float* out = c.f32(2, "out", n);
  if (!c.ok()) return nullptr;
  mt::unary(op, x, out, n);
  return undefined(env);
}

napi_value UnaryBackward(napi_env env, napi_callback_info info) {
  Call c(env, info, "unaryBackward", 6);
  char opName[16];
  c.str(0, "op", opName, sizeof opName);
  mt::UnaryOp op = mt::UnaryOp::Neg;
  if (c.ok() && !parse_unary_op(opName, op)) c.fail("unknown op '%s'", opName);
  int64_t n = c.count(5, "n");
  const float* x = c.f32(1, "x", n);
  const float* y = c.f32(2, "y", n);
  const float* dy = c.f32(3, "dy", n);
  float* dx = c.f32(4, "dx", n);
  if (!c.ok()) return nullptr;
  mt::unary_backward(op, x, y, dy, dx, n);
  return undefined(env);
}

napi_value Axpby(napi_env env, napi_callback_info info) {
  Call c(env, info, "axpby", 5);
  double alpha = c.number(0, "alpha");
  double beta = c.number(2, "beta");
  int64_t n = c.count(4, "n");
  const float* x = c.f32(1, "x", n);
  float* out = c.f32(3, "out", n);
  if (!c.ok()) return nullptr;
  mt::axpby(alpha, x, beta, out, n);
  return undefined(env);
}

napi_value Fill(napi_env env, napi_callback_info info) {
  Call c(env, info, "fill", 3);
  double value = c.number(1, "value");
  int64_t n = c.count(2, "n");
  float* out = c.f32(0, "out", n);
  if (!c.ok()) return nullptr;
  mt::fill(out, (float)value, n);
  return undefined(env);
}

napi_value Reduce(napi_env env, napi_callback_info info) {
  Call c(env, info, "reduce", 6);
  char opName[16];
  c.str(0, "op", opName, sizeof opName);
  mt::ReduceOp op = mt::ReduceOp::Sum;
  if (c.ok() && !parse_reduce_op(opName, op)) c.fail("unknown op '%s' (expected sum, max, min)", opName);
  int64_t outer = c.count(2, "outer"), axisLen = c.count(3, "axisLen"), inner = c.count(4, "inner");
  const float* x = c.f32(1, "x", mul(mul(outer, axisLen), inner));
  float* out = c.f32(5, "out", mul(outer, inner));
  if (!c.ok()) return nullptr;
  mt::reduce(op, x, outer, axisLen, inner, out);
  return undefined(env);
}

napi_value SumSquares(napi_env env, napi_callback_info info) {
  Call c(env, info, "sumSquares", 2);
  int64_t n = c.count(1, "n");
  const float* x = c.f32(0, "x", n);
  if (!c.ok()) return nullptr;
  return make_number(env, mt::sum_squares(x, n));
}

// ------------------------------------------------------------------ transformer kernels

napi_value RmsnormForward(napi_env env, napi_callback_info info) {
  Call c(env, info, "rmsnormForward", 7);
  double eps = c.number(2, "eps");
  int64_t rows = c.count(3, "rows"), dim = c.count(4, "dim");
  const float* x = c.f32(0, "x", mul(rows, dim));
  const float* w = c.f32(1, "w", dim);
  float* out = c.f32(5, "out", mul(rows, dim));
  float* rstd = c.f32(6, "rstd", rows);
  if (!c.ok()) return nullptr;
  mt::rmsnorm_forward(x, w, (float)eps, rows, dim, out, rstd);
  return undefined(env);
}

napi_value RmsnormBackward(napi_env env, napi_callback_info info) {
  Call c(env, info, "rmsnormBackward", 8);
  int64_t rows = c.count(4, "rows"), dim = c.count(5, "dim");
  const float* dy = c.f32(0, "dy", mul(rows, dim));
  const float* x = c.f32(1, "x", mul(rows, dim));
  const float* w = c.f32(2, "w", dim);
  const float* rstd = c.f32(3, "rstd", rows);
  float* dx = c.f32(6, "dx", mul(rows, dim));
  float* dw = c.f32(7, "dw", dim);
  if (!c.ok()) return nullptr;
  mt::rmsnorm_backward(dy, x, w, rstd, rows, dim, dx, dw);
  return undefined(env);
}

napi_value Rope(napi_env env, napi_callback_info info) {
  Call c(env, info, "rope", 9);
  int64_t B = c.count(3, "B"), T = c.count(4, "T"), H = c.count(5, "H"), Dh = c.count(6, "Dh");
  bool inverse = c.flag(7, "inverse");
  if (c.ok() && Dh % 2 != 0) c.fail("Dh must be even, got %lld", (long long)Dh);
  int64_t n = mul(mul(B, T), mul(H, Dh));
  const float* x = c.f32(0, "x", n);
  const float* cs = c.f32(1, "cos", mul(T, Dh / 2));
  const float* sn = c.f32(2, "sin", mul(T, Dh / 2));
  float* out = c.f32(8, "out", n);
  if (!c.ok()) return nullptr;
  mt::rope(x, cs, sn, B, T, H, Dh, inverse, out);
  return undefined(env);
}

// Shared checks of the attention shapes; returns false after throwing.
bool attention_dims(Call& c, size_t at, int64_t& B, int64_t& T, int64_t& S, int64_t& H, int64_t& Hkv, int64_t& Dh) {
  B = c.count(at, "B");
  T = c.count(at + 1, "T");
  S = c.count(at + 2, "S");
  H = c.count(at + 3, "H");
  Hkv = c.count(at + 4, "Hkv");
  Dh = c.count(at + 5, "Dh");
  if (c.ok() && (Hkv < 1 || H % Hkv != 0))
    c.fail("H (%lld) must be a positive multiple of Hkv (%lld)", (long long)H, (long long)Hkv);
  return c.ok();
}

napi_value AttentionForward(napi_env env, napi_callback_info info) {
  Call c(env, info, "attentionForward", 13);
  int64_t B, T, S, H, Hkv, Dh;
  attention_dims(c, 3, B, T, S, H, Hkv, Dh);
  double scale = c.number(9, "scale");
  bool causal = c.flag(10, "causal");
  int64_t nq = mul(mul(B, T), mul(H, Dh)), nkv = mul(mul(B, S), mul(Hkv, Dh));
  const float* q = c.f32(0, "q", nq);
  const float* k = c.f32(1, "k", nkv);
  const float* v = c.f32(2, "v", nkv);
  float* out = c.f32(11, "out", nq);
  float* lse = c.f32(12, "lse", mul(mul(B, H), T));
  if (!c.ok()) return nullptr;
  mt::attention_forward(q, k, v, B, T, S, H, Hkv, Dh, (float)scale, causal, out, lse);
  return undefined(env);
}

napi_value AttentionBackward(napi_env env, napi_callback_info info) {
  Call c(env, info, "attentionBackward", 17);
  int64_t B, T, S, H, Hkv, Dh;
  attention_dims(c, 6, B, T, S, H, Hkv, Dh);
  double scale = c.number(12, "scale");
  bool causal = c.flag(13, "causal");
  int64_t nq = mul(mul(B, T), mul(H, Dh)), nkv = mul(mul(B, S), mul(Hkv, Dh));
  const float* q = c.f32(0, "q", nq);
  const float* k = c.f32(1, "k", nkv);
  const float* v = c.f32(2, "v", nkv);
  const float* out = c.f32(3, "out", nq);
  const float* lse = c.f32(4, "lse", mul(mul(B, H), T));
  const float* dout = c.f32(5, "dout", nq);
  float* dq = c.f32(14, "dq", nq);
  float* dk = c.f32(15, "dk", nkv);
  float* dv = c.f32(16, "dv", nkv);
  if (!c.ok()) return nullptr;
  mt::attention_backward(q, k, v, out, lse, dout, B, T, S, H, Hkv, Dh, (float)scale, causal, dq, dk, dv);
  return undefined(env);
}

napi_value SwigluForward(napi_env env, napi_callback_info info) {
  Call c(env, info, "swigluForward", 4);
  int64_t n = c.count(3, "n");
  const float* g = c.f32(0, "g", n);
  const float* u = c.f32(1, "u", n);
  float* out = c.f32(2, "out", n);
  if (!c.ok()) return nullptr;
  mt::swiglu_forward(g, u, out, n);
  return undefined(env);
}

napi_value SwigluBackward(napi_env env, napi_callback_info info) {
  Call c(env, info, "swigluBackward", 6);
  int64_t n = c.count(5, "n");
  const float* g = c.f32(0, "g", n);
  const float* u = c.f32(1, "u", n);
  const float* dout = c.f32(2, "dout", n);
  float* dg = c.f32(3, "dg", n);
  float* du = c.f32(4, "du", n);
  if (!c.ok()) return nullptr;
  mt::swiglu_backward(g, u, dout, dg, du, n);
  return undefined(env);
}

// Shared shape of the four row-softmax kernels: (a, [b,] rows, cols, out).
template <void (*Fwd)(const float*, int64_t, int64_t, float*)>
napi_value RowForward(napi_env env, napi_callback_info info, const char* name) {
  Call c(env, info, name, 4);
  int64_t rows = c.count(1, "rows"), cols = c.count(2, "cols");
  const float* x = c.f32(0, "x", mul(rows, cols));
  float* out = c.f32(3, "out", mul(rows, cols));
  if (!c.ok()) return nullptr;
  Fwd(x, rows, cols, out);
  return undefined(env);
}

template <void (*Bwd)(const float*, const float*, int64_t, int64_t, float*)>
napi_value RowBackward(napi_env env, napi_callback_info info, const char* name) {
  Call c(env, info, name, 5);
  int64_t rows = c.count(2, "rows"), cols = c.count(3, "cols");
  const float* y = c.f32(0, "y", mul(rows, cols));
  const float* dy = c.f32(1, "dy", mul(rows, cols));
  float* dx = c.f32(4, "dx", mul(rows, cols));
  if (!c.ok()) return nullptr;
  Bwd(y, dy, rows, cols, dx);
  return undefined(env);
}

napi_value SoftmaxForward(napi_env env, napi_callback_info info) {
  return RowForward<mt::softmax_forward>(env, info, "softmaxForward");
}
napi_value SoftmaxBackward(napi_env env, napi_callback_info info) {
  return RowBackward<mt::softmax_backward>(env, info, "softmaxBackward");
}
napi_value LogSoftmaxForward(napi_env env, napi_callback_info info) {
  return RowForward<mt::log_softmax_forward>(env, info, "logSoftmaxForward");
}
napi_value LogSoftmaxBackward(napi_env env, napi_callback_info info) {
  return RowBackward<mt::log_softmax_backward>(env, info, "logSoftmaxBackward");
}

// Targets must be in [0, V) or equal ignoreIndex.
void check_targets(Call& c, const int32_t* targets, int64_t rows, int64_t V, int32_t ignoreIndex) {
  if (!c.ok()) return;
  for (int64_t r = 0; r < rows; r++) {
    int32_t t = targets[r];
    if (t != ignoreIndex && (t < 0 || t >= V)) {
      c.fail("targets[%lld] = %d is out of range [0, V = %lld) and is not ignoreIndex (%d)", (long long)r, t,
             (long long)V, ignoreIndex);
      return;
    }
  }
}

napi_value CrossEntropyForward(napi_env env, napi_callback_info info) {
  Call c(env, info, "crossEntropyForward", 7);
  int64_t rows = c.count(2, "rows"), V = c.count(3, "V");
  int32_t ignoreIndex = c.int32(4, "ignoreIndex");
  const float* logits = c.f32(0, "logits", mul(rows, V));
  const int32_t* targets = c.i32(1, "targets", rows);
  float* losses = c.f32(5, "losses", rows);
  float* lse = c.f32(6, "lse", rows);
  check_targets(c, targets, rows, V, ignoreIndex);
  if (!c.ok()) return nullptr;
  mt::cross_entropy_forward(logits, targets, rows, V, ignoreIndex, losses, lse);
  return undefined(env);
}

napi_value CrossEntropyBackward(napi_env env, napi_callback_info info) {
  Call c(env, info, "crossEntropyBackward", 8);
  int64_t rows = c.count(4, "rows"), V = c.count(5, "V");
  int32_t ignoreIndex = c.int32(6, "ignoreIndex");
  const float* logits = c.f32(0, "logits", mul(rows, V));
  const int32_t* targets = c.i32(1, "targets", rows);
  const float* lse = c.f32(2, "lse", rows);
  const float* dlosses = c.f32(3, "dlosses", rows);
  float* dlogits = c.f32(7, "dlogits", mul(rows, V));
  check_targets(c, targets, rows, V, ignoreIndex);
  if (!c.ok()) return nullptr;
  mt::cross_entropy_backward(logits, targets, lse, dlosses, rows, V, ignoreIndex, dlogits);
  return undefined(env);
}

// ------------------------------------------------------------------ indexing

// Rows of length dim held by the typed array at i (for index range checks).
int64_t rows_of(Call& c, size_t i, int64_t dim) { return dim > 0 ? c.length(i) / dim : 0; }

napi_value GatherRows(napi_env env, napi_callback_info info) {
  Call c(env, info, "gatherRows", 5);
  int64_t n = c.count(2, "n"), dim = c.count(3, "dim");
  const float* src = c.f32(0, "src", 0);
  const int32_t* idx = c.i32(1, "idx", n);
  float* out = c.f32(4, "out", mul(n, dim));
  if (dim > 0) c.check_indices(idx, n, rows_of(c, 0, dim), "idx", "rows of src");
  if (!c.ok()) return nullptr;
  mt::gather_rows(src, idx, n, dim, out);
  return undefined(env);
}

napi_value ScatterAddRows(napi_env env, napi_callback_info info) {
  Call c(env, info, "scatterAddRows", 6);
  int64_t n = c.count(3, "n"), dim = c.count(4, "dim");
  const float* src = c.f32(0, "src", mul(n, dim));
  const int32_t* idx = c.i32(1, "idx", n);
  const float* w = c.is_null(2) ? nullptr : c.f32(2, "w", n);
  float* out = c.f32(5, "out", 0);
  if (dim > 0) c.check_indices(idx, n, rows_of(c, 5, dim), "idx", "rows of out");
  if (!c.ok()) return nullptr;
  mt::scatter_add_rows(src, idx, w, n, dim, out);
  return undefined(env);
}

// (src, idx, w | null, n, dim, rows, out)
napi_value ScatterRows(napi_env env, napi_callback_info info) {
  Call c(env, info, "scatterRows", 7);
  int64_t n = c.count(3, "n"), dim = c.count(4, "dim"), rows = c.count(5, "rows");
  const float* src = c.f32(0, "src", mul(n, dim));
  const int32_t* idx = c.i32(1, "idx", n);
  const float* w = c.is_null(2) ? nullptr : c.f32(2, "w", n);
  float* out = c.f32(6, "out", mul(rows, dim));
  c.check_indices(idx, n, rows, "idx", "rows");
  if (!c.ok()) return nullptr;
  mt::scatter_rows(src, idx, w, n, dim, rows, out);
  return undefined(env);
}

napi_value GatherRowDot(napi_env env, napi_callback_info info) {
  Call c(env, info, "gatherRowDot", 6);
  int64_t n = c.count(3, "n"), dim = c.count(4, "dim");
  const float* a = c.f32(0, "a", 0);
  const int32_t* idx = c.i32(1, "idx", n);
  const float* b = c.f32(2, "b", mul(n, dim));
  float* out = c.f32(5, "out", n);
  if (dim > 0) c.check_indices(idx, n, rows_of(c, 0, dim), "idx", "rows of a");
  if (!c.ok()) return nullptr;
  mt::gather_row_dot(a, idx, b, n, dim, out);
  return undefined(env);
}

// (dy, idx, w, src, n, dim, rows, dsrc | null, dw | null)
napi_value ScatterRowsBackward(napi_env env, napi_callback_info info) {
  Call c(env, info, "scatterRowsBackward", 9);
  int64_t n = c.count(4, "n"), dim = c.count(5, "dim"), rows = c.count(6, "rows");
  const float* dy = c.f32(0, "dy", mul(rows, dim));
  const int32_t* idx = c.i32(1, "idx", n);
  const float* w = c.f32(2, "w", n);
  const float* src = c.f32(3, "src", mul(n, dim));
  float* dsrc = c.is_null(7) ? nullptr : c.f32(7, "dsrc", mul(n, dim));
  float* dw = c.is_null(8) ? nullptr : c.f32(8, "dw", n);
  c.check_indices(idx, n, rows, "idx", "rows");
  if (!c.ok()) return nullptr;
  mt::scatter_rows_backward(dy, idx, w, src, n, dim, dsrc, dw);
  return undefined(env);
}

napi_value TakeAlongRows(napi_env env, napi_callback_info info) {
  Call c(env, info, "takeAlongRows", 6);
  int64_t rows = c.count(2, "rows"), cols = c.count(3, "cols"), k = c.count(4, "k");
  const float* x = c.f32(0, "x", mul(rows, cols));
  const int32_t* idx = c.i32(1, "idx", mul(rows, k));
  float* out = c.f32(5, "out", mul(rows, k));
  c.check_indices(idx, mul(rows, k), cols, "idx", "cols");
  if (!c.ok()) return nullptr;
  mt::take_along_rows(x, idx, rows, cols, k, out);
  return undefined(env);
}

napi_value TakeAlongRowsBackward(napi_env env, napi_callback_info info) {
  Call c(env, info, "takeAlongRowsBackward", 6);
  int64_t rows = c.count(2, "rows"), cols = c.count(3, "cols"), k = c.count(4, "k");
  const float* dy = c.f32(0, "dy", mul(rows, k));
  const int32_t* idx = c.i32(1, "idx", mul(rows, k));
  float* dx = c.f32(5, "dx", mul(rows, cols));
  c.check_indices(idx, mul(rows, k), cols, "idx", "cols");
  if (!c.ok()) return nullptr;
  mt::take_along_rows_backward(dy, idx, rows, cols, k, dx);
  return undefined(env);
}

// ------------------------------------------------------------------ routing

// Router rows R, true experts N <= R and 1 <= k <= R (both directions of routeTopK).
void check_route_dims(Call& c, int64_t R, int64_t N, int64_t k) {
  if (c.ok() && (N > R || k < 1 || k > R)) c.fail("expected N <= R and 1 <= k <= R, got N = %lld, R = %lld, k = %lld", (long long)N, (long long)R, (long long)k);
}

// (logits, T, R, N, k, normalize, probs, slotRows, slotPair, top1, selected, offsets, tokens, gates,
// nullSums | null) -> P
napi_value RouteTopK(napi_env env, napi_callback_info info) {
  Call c(env, info, "routeTopK", 15);
  int64_t T = c.count(1, "T"), R = c.count(2, "R"), N = c.count(3, "N"), k = c.count(4, "k");
  bool normalize = c.flag(5, "normalize");
  check_route_dims(c, R, N, k);
  const float* logits = c.f32(0, "logits", mul(T, R));
  float* probs = c.f32(6, "probs", mul(T, R));
  int32_t* slotRows = const_cast<int32_t*>(c.i32(7, "slotRows", mul(T, k)));
  int32_t* slotPair = const_cast<int32_t*>(c.i32(8, "slotPair", mul(T, k)));
  int32_t* top1 = const_cast<int32_t*>(c.i32(9, "top1", T));
  uint8_t* selected = const_cast<uint8_t*>(c.u8(10, "selected", mul(T, R)));
  int32_t* offsets = const_cast<int32_t*>(c.i32(11, "offsets", N + 1));
  int32_t* tokens = const_cast<int32_t*>(c.i32(12, "tokens", mul(T, k)));
  float* gates = c.f32(13, "gates", mul(T, k));
  float* nullSums = c.is_null(14) ? nullptr : c.f32(14, "nullSums", T);
  if (!c.ok()) return nullptr;
  int64_t P = mt::route_top_k(logits, T, R, N, k, normalize, probs, slotRows, slotPair, top1, selected, offsets, tokens,
                              gates, nullSums);
  return make_number(env, (double)P);
}

// (probs, slotRows, slotPair, gates, T, R, N, k, normalize, dprobs | null, dgates | null, dnull | null, dlogits)
napi_value RouteTopKBackward(napi_env env, napi_callback_info info) {
  Call c(env, info, "routeTopKBackward", 13);
  int64_t T = c.count(4, "T"), R = c.count(5, "R"), N = c.count(6, "N"), k = c.count(7, "k");
  bool normalize = c.flag(8, "normalize");
  check_route_dims(c, R, N, k);
  const float* probs = c.f32(0, "probs", mul(T, R));
  const int32_t* slotRows = c.i32(1, "slotRows", mul(T, k));
  const int32_t* slotPair = c.i32(2, "slotPair", mul(T, k));
  const float* gates = c.f32(3, "gates", 0);
  const int64_t P = c.length(3);
  const float* dprobs = c.is_null(9) ? nullptr : c.f32(9, "dprobs", mul(T, R));
  const float* dgates = c.is_null(10) ? nullptr : c.f32(10, "dgates", P);
  const float* dnull = c.is_null(11) ? nullptr : c.f32(11, "dnull", T);
  float* dlogits = c.f32(12, "dlogits", mul(T, R));
  c.check_indices(slotRows, mul(T, k), R, "slotRows", "R");
  if (c.ok()) {
    for (int64_t s = 0; s < T * k; s++) {
      if (slotPair[s] < -1 || slotPair[s] >= P || (slotPair[s] >= 0) != (slotRows[s] < N)) {
        c.fail("slotPair[%lld] = %d does not match slot row %d (N = %lld, P = %lld)", (long long)s, slotPair[s],
               slotRows[s], (long long)N, (long long)P);
        break;
      }
    }
  }
  if (!c.ok()) return nullptr;
  mt::route_top_k_backward(probs, slotRows, slotPair, gates, T, R, N, k, normalize, dprobs, dgates, dnull, dlogits);
  return undefined(env);
}

// ------------------------------------------------------------------ optimizer

napi_value Adamw(napi_env env, napi_callback_info info) {
  Call c(env, info, "adamw", 13);
  int64_t n = c.count(4, "n");
  float* p = c.f32(0, "p", n);
  const float* g = c.f32(1, "g", n);
  float* m = c.f32(2, "m", n);
  float* v = c.f32(3, "v", n);
  double lr = c.number(5, "lr"), b1 = c.number(6, "b1"), b2 = c.number(7, "b2"), eps = c.number(8, "eps");
  double wd = c.number(9, "wd"), bc1 = c.number(10, "bc1"), bc2 = c.number(11, "bc2");
  double gradScale = c.number(12, "gradScale");
  if (!c.ok()) return nullptr;
  mt::adamw(p, g, m, v, n, lr, b1, b2, eps, wd, bc1, bc2, gradScale);
  return undefined(env);
}

// ------------------------------------------------------------------ loading (weight_load.h)

// The stored-bytes source of a loading kernel: arguments dtype (0 F32, 1 BF16, 2 F16), bytes
// (Uint8Array or null), fd, byteOffset (used when bytes is null).
bool stored_source(Call& c, size_t first, int64_t numel, mt::StoredSource& src) {
  int64_t dtype = c.count(first, "dtype");
  if (c.ok() && dtype > 2) c.fail("dtype must be 0 (F32), 1 (BF16) or 2 (F16), got %lld", (long long)dtype);
  src.dtype = (mt::StoredFloat)dtype;
  src.bytes = nullptr;
  src.fd = -1;
  src.byteOffset = 0;
  const int64_t size = dtype == 0 ? 4 : 2;
  if (!c.is_null(first + 1)) {
    src.bytes = c.u8(first + 1, "bytes", mul(numel, size));
  } else {
    src.fd = c.int32(first + 2, "fd");
    src.byteOffset = c.count(first + 3, "byteOffset");
    if (c.ok() && src.fd < 0) c.fail("fd must be a file descriptor, got %d", src.fd);
  }
  return c.ok();
}

// decodeStored(dtype, bytes, fd, byteOffset, numel, out): 0, or -errno / 1 (file ended early).
napi_value DecodeStored(napi_env env, napi_callback_info info) {
  Call c(env, info, "decodeStored", 6);
  int64_t numel = c.count(4, "numel");
  mt::StoredSource src;
  stored_source(c, 0, numel, src);
  float* out = c.f32(5, "out", numel);
  if (!c.ok()) return nullptr;
  return make_number(env, mt::decode_stored_floats(src, numel, out));
}

// nf4QuantizeStored(dtype, bytes, fd, byteOffset, numel, blockSize, thresholds, codes, absmax):
// -1, the first block holding a non-finite value, or <= -2 on a read failure.
napi_value Nf4QuantizeStored(napi_env env, napi_callback_info info) {
  Call c(env, info, "nf4QuantizeStored", 9);
  int64_t numel = c.count(4, "numel");
  int64_t blockSize = c.count(5, "blockSize");
  if (c.ok() && (blockSize < 2 || blockSize % 2 != 0 || blockSize > mt::kMaxNf4Block))
    c.fail("blockSize must be even, between 2 and %lld, got %lld", (long long)mt::kMaxNf4Block, (long long)blockSize);
  mt::StoredSource src;
  stored_source(c, 0, numel, src);
  const float* thresholds = c.f32(6, "thresholds", 15);
  uint8_t* codes = const_cast<uint8_t*>(c.u8(7, "codes", (numel + 1) / 2));
  float* absmax = c.f32(8, "absmax", blockSize > 0 ? (numel + blockSize - 1) / blockSize : 0);
  if (!c.ok()) return nullptr;
  return make_number(env, (double)mt::nf4_quantize_stored(src, numel, blockSize, thresholds, codes, absmax));
}

// nf4QuantizeScales(absmax, n, nestedBlockSize, dynamicCode, qabsmax, nestedAbsmax): the offset.
napi_value Nf4QuantizeScales(napi_env env, napi_callback_info info) {
  Call c(env, info, "nf4QuantizeScales", 6);
  int64_t n = c.count(1, "n"), nb = c.count(2, "nestedBlockSize");
  if (c.ok() && nb < 1) c.fail("nestedBlockSize must be >= 1");
  const float* absmax = c.f32(0, "absmax", n);
  const float* dyn = c.f32(3, "dynamicCode", 256);
  uint8_t* q = const_cast<uint8_t*>(c.u8(4, "qabsmax", n));
  float* nested = c.f32(5, "nestedAbsmax", nb > 0 ? (n + nb - 1) / nb : 0);
  if (!c.ok()) return nullptr;
  return make_number(env, (double)mt::nf4_quantize_scales(absmax, n, nb, dyn, q, nested));
}

// nf4QuantizeIsa(name | null): selects the NF4 block kernel ("avx512", "avx2", "portable") when a
// name is given; returns "active;available,..." (the kernels this build has, best first).
napi_value Nf4QuantizeIsa(napi_env env, napi_callback_info info) {
  Call c(env, info, "nf4QuantizeIsa", 1);
  if (!c.is_null(0)) {
    char name[16];
    c.str(0, "name", name, sizeof name);
    mt::Nf4Isa want = mt::Nf4Isa::Portable;
    if (c.ok()) {
      if (!strcmp(name, "avx512")) want = mt::Nf4Isa::Avx512;
      else if (!strcmp(name, "avx2")) want = mt::Nf4Isa::Avx2;
      else if (strcmp(name, "portable")) c.fail("unknown kernel '%s' (expected avx512, avx2 or portable)", name);
    }
    if (c.ok() && !mt::nf4_set_isa(want)) c.fail("this build has no %s kernel", name);
  }
  if (!c.ok()) return nullptr;
  std::string text = mt::nf4_isa_name(mt::nf4_isa());
  mt::Nf4Isa avail[3];
  const int n = mt::nf4_isa_available(avail);
  for (int i = 0; i < n; i++) text += (i == 0 ? ";" : ","), text += mt::nf4_isa_name(avail[i]);
  napi_value s;
  napi_create_string_utf8(env, text.c_str(), NAPI_AUTO_LENGTH, &s);
  return s;
}

}  // namespace

NAPI_MODULE_INIT() {
  static const struct {
    const char* name;
    napi_callback fn;
  } fns[] = {
      {"threads", Threads},
      {"configure", Configure},
      {"kernelName", KernelName},
      {"buildIsa", BuildIsa},
      {"gemm", Gemm},
      {"nf4Gemm", Nf4Gemm},
      {"nf4GemmGrouped", Nf4GemmGrouped},
      {"gemmGrouped", GemmGrouped},
      {"binary", Binary},
      {"unary", Unary},
      {"unaryBackward", UnaryBackward},
      {"axpby", Axpby},
      {"fill", Fill},
      {"reduce", Reduce},
      {"sumSquares", SumSquares},
      {"rmsnormForward", RmsnormForward},
      {"rmsnormBackward", RmsnormBackward},
      {"rope", Rope},
      {"attentionForward", AttentionForward},
      {"attentionBackward", AttentionBackward},
      {"swigluForward", SwigluForward},
      {"swigluBackward", SwigluBackward},
      {"softmaxForward", SoftmaxForward},
      {"softmaxBackward", SoftmaxBackward},
      {"logSoftmaxForward", LogSoftmaxForward},
      {"logSoftmaxBackward", LogSoftmaxBackward},
      {"crossEntropyForward", CrossEntropyForward},
      {"crossEntropyBackward", CrossEntropyBackward},
      {"gatherRows", GatherRows},
      {"scatterAddRows", ScatterAddRows},
      {"scatterRows", ScatterRows},
      {"scatterRowsBackward", ScatterRowsBackward},
      {"gatherRowDot", GatherRowDot},
      {"takeAlongRows", TakeAlongRows},
      {"takeAlongRowsBackward", TakeAlongRowsBackward},
      {"routeTopK", RouteTopK},
      {"routeTopKBackward", RouteTopKBackward},
      {"adamw", Adamw},
      {"decodeStored", DecodeStored},
      {"nf4QuantizeStored", Nf4QuantizeStored},
      {"nf4QuantizeScales", Nf4QuantizeScales},
      {"nf4QuantizeIsa", Nf4QuantizeIsa},
  };
  for (auto& f : fns) {
    napi_value fn;
    if (napi_create_function(env, f.name, NAPI_AUTO_LENGTH, f.fn, nullptr, &fn) != napi_ok) return nullptr;
    if (napi_set_named_property(env, exports, f.name, fn) != napi_ok) return nullptr;
  }
  return exports;
}
