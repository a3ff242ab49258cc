// The x86 intrinsics for kernels that use them directly, and the GCC warnings they need silenced.
// GCC 12 flags the deliberately undefined lanes and pass-through operands inside its own AVX-512
// wrappers (_mm512_cvtepu8_epi32, _mm512_permutexvar_ps, the cast / extract intrinsics): false
// positives, so -Wuninitialized / -Wmaybe-uninitialized are off in the files that include this.
#pragma once

#if defined(__AVX512F__) || defined(__AVX__)
#include <immintrin.h>
#endif

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
