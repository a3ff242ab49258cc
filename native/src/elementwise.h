// Elementwise kernels: broadcasting binary ops, unary ops and their fused backward, axpby, fill.
// Semantics follow src/tensor/backend.ts and the js backend: max / min propagate NaN from either
// operand, relu(NaN) is 0.
#pragma once

#include <cstdint>

namespace mt {

enum class BinaryOp { Add, Sub, Mul, Div, Max, Min };
enum class UnaryOp { Neg, Exp, Log, Sqrt, Rsqrt, Square, Abs, Silu, Sigmoid, Relu, Tanh };

/** Largest rank `binary` accepts. */
constexpr int kMaxRank = 16;

/**
 * out = a (op) b with numpy broadcasting; aShape / bShape are right-aligned against outShape and
 * have already been checked to broadcast (each dim equal to out's or 1).
 */
void binary(BinaryOp op, const float* a, const int64_t* aShape, int aRank, const float* b, const int64_t* bShape,
            int bRank, float* out, const int64_t* outShape, int outRank);

void unary(UnaryOp op, const float* x, float* out, int64_t n);

/** dx[i] = dy[i] * op'(x[i]), using y = op(x) where that is cheaper. */
void unary_backward(UnaryOp op, const float* x, const float* y, const float* dy, float* dx, int64_t n);

/** out = alpha * x + beta * out (in double, one rounding); beta == 0 does not read out. */
void axpby(double alpha, const float* x, double beta, float* out, int64_t n);

void fill(float* out, float value, int64_t n);

}  // namespace mt
